"""``ExchangeClient`` (sync) and ``AsyncExchangeClient`` over httpx.

Both share one description of each call (:class:`_Call`: method, path, parameters, body
and the model of the answer), so the two surfaces cannot drift apart; only sending
differs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar
from urllib.parse import quote

import httpx
import orjson
from pydantic import BaseModel, Field

from exchange.audit.schemas import AuditPage, StatsOut, VerifyReport
from exchange.authz.schemas import (
    ApplicationOut,
    ApplicationPage,
    DisputeOut,
    GrantOut,
    GrantPage,
)
from exchange.broker.schemas import QueryAnswer, VerifyAnswer, VerifyBatchAnswer
from exchange.catalog.schemas import TopicChange, TopicCreate, TopicOut, TopicPage
from exchange.client._errors import ExportInterrupted, TransportError, error_from
from exchange.credit.schemas import (
    ListAnswer,
    ListBatch,
    NoticeAnswer,
    NoticeIn,
    PenaltyIn,
    PermitIn,
    PublicPage,
    SubmitAnswer,
)
from exchange.credit.schemas import StatsOut as CreditStats
from exchange.libraries.schemas import ConflictOut, ConflictPage, LookupAnswer
from exchange.licences.schemas import HolderLicences, LicenceOut, LicenceStats

__all__ = ["DEFAULT_URL", "AsyncExchangeClient", "ExchangeClient", "PlatformClock"]

DEFAULT_URL = "http://127.0.0.1:8000"
CASE_HEADER = "X-Exchange-Case"

M = TypeVar("M", bound=BaseModel)


class PlatformClock(BaseModel):
    """The platform's simulated time (deadlines and expiries follow it)."""

    now: dt.datetime
    offset_seconds: float
    today: dt.date = Field(description="The platform's day (Beijing time).")


Params = dict[str, str | int | bool]


@dataclass(frozen=True)
class _Call(Generic[M]):
    """One API call: what to send and which model the answer is."""

    method: str
    path: str
    model: type[M]
    params: Params = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    expect: int = 200


def _params(**values: Any) -> Params:
    """Query parameters without the ones left out (None)."""
    return {k: v for k, v in values.items() if v is not None}


def _case(case: str | None) -> dict[str, str]:
    # Headers are ASCII; the broker percent-decodes (UTF-8) the case name.
    return {CASE_HEADER: quote(case, safe="")} if case else {}


def _body(value: BaseModel | Mapping[str, Any]) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    return dict(value)


#: One check of :meth:`ExchangeClient.verify_many`: ``(key, claims)`` or
#: ``{"key": …, "claims": {…}}``.
Check = tuple[str, Mapping[str, Any]] | Mapping[str, Any]


def _check_body(check: Check) -> dict[str, Any]:
    if isinstance(check, tuple):
        key, claims = check
        return {"key": key, "claims": dict(claims)}
    return {"key": check["key"], "claims": dict(check["claims"])}


def _iso(day: dt.date | str | None) -> str | None:
    return day.isoformat() if isinstance(day, dt.date) else day


def _check(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    raise error_from(response.status_code, body)


class _Calls:
    """Every call the SDK makes, as :class:`_Call` descriptions (no I/O here)."""

    # -- catalog (目录检索、注册、变更、废置) -----------------------------------------------

    @staticmethod
    def search_topics(
        q: str | None = None,
        *,
        provider: str | None = None,
        category: str | None = None,
        group: str | None = None,
        sharing_type: str | None = None,
        status: str | None = None,
        resource_type: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> _Call[TopicPage]:
        params = _params(
            q=q,
            provider=provider,
            category=category,
            group=group,
            sharing_type=sharing_type,
            status=status,
            resource_type=resource_type,
            offset=offset,
            limit=limit,
        )
        return _Call("GET", "/api/v1/catalog/topics", TopicPage, params)

    @staticmethod
    def get_topic(code: str) -> _Call[TopicOut]:
        return _Call("GET", f"/api/v1/catalog/topics/{code}", TopicOut)

    @staticmethod
    def register_topic(topic: TopicCreate | Mapping[str, Any]) -> _Call[TopicOut]:
        return _Call("POST", "/api/v1/catalog/topics", TopicOut, body=_body(topic), expect=201)

    @staticmethod
    def change_topic(code: str, change: TopicChange | Mapping[str, Any]) -> _Call[TopicOut]:
        return _Call("PATCH", f"/api/v1/catalog/topics/{code}", TopicOut, body=_body(change))

    @staticmethod
    def retire_topic(code: str, reason: str) -> _Call[TopicOut]:
        return _Call(
            "POST", f"/api/v1/catalog/topics/{code}/retire", TopicOut, body={"reason": reason}
        )

    # -- applications, reviews, disputes ---------------------------------------------------

    @staticmethod
    def apply(
        topic: str,
        items: Sequence[str],
        *,
        purpose: str,
        legal_function: str,
        valid_until: dt.date | str,
        scope: str = "data_verification",
        valid_from: dt.date | str | None = None,
        daily_quota: int | None = None,
        delivery: str | None = None,
        consumer: str | None = None,
    ) -> _Call[ApplicationOut]:
        body: dict[str, Any] = {
            "topic": topic,
            "items": list(items),
            "purpose": {"scope": scope, "text": purpose},
            "legal_function": legal_function,
            "valid_until": _iso(valid_until),
        }
        body.update(
            _params(
                valid_from=_iso(valid_from),
                daily_quota=daily_quota,
                delivery=delivery,
                consumer=consumer,
            )
        )
        return _Call("POST", "/api/v1/applications", ApplicationOut, body=body, expect=201)

    @staticmethod
    def list_applications(
        *,
        role: str | None = None,
        status: str | None = None,
        overdue: bool | None = None,
        topic: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> _Call[ApplicationPage]:
        params = _params(
            role=role, status=status, overdue=overdue, topic=topic, offset=offset, limit=limit
        )
        return _Call("GET", "/api/v1/applications", ApplicationPage, params)

    @staticmethod
    def get_application(app_id: int) -> _Call[ApplicationOut]:
        return _Call("GET", f"/api/v1/applications/{app_id}", ApplicationOut)

    @staticmethod
    def approve(
        app_id: int,
        *,
        items: Sequence[str] | None = None,
        valid_until: dt.date | str | None = None,
        daily_quota: int | None = None,
        reason: str = "",
    ) -> _Call[ApplicationOut]:
        body: dict[str, Any] = {"reason": reason}
        body.update(
            _params(
                items=list(items) if items is not None else None,
                valid_until=_iso(valid_until),
                daily_quota=daily_quota,
            )
        )
        return _Call("POST", f"/api/v1/applications/{app_id}/approve", ApplicationOut, body=body)

    @staticmethod
    def reject(app_id: int, reason: str) -> _Call[ApplicationOut]:
        return _Call(
            "POST", f"/api/v1/applications/{app_id}/reject", ApplicationOut, body={"reason": reason}
        )

    @staticmethod
    def dispute(
        app_id: int, reason: str, *, items: Sequence[str] | None = None
    ) -> _Call[DisputeOut]:
        body: dict[str, Any] = {"reason": reason}
        if items is not None:
            body["items"] = list(items)
        return _Call(
            "POST", f"/api/v1/applications/{app_id}/dispute", DisputeOut, body=body, expect=201
        )

    @staticmethod
    def get_dispute(dispute_id: int) -> _Call[DisputeOut]:
        return _Call("GET", f"/api/v1/disputes/{dispute_id}", DisputeOut)

    @staticmethod
    def post_message(dispute_id: int, body: str) -> _Call[DisputeOut]:
        return _Call(
            "POST", f"/api/v1/disputes/{dispute_id}/messages", DisputeOut, body={"body": body}
        )

    @staticmethod
    def decide(
        dispute_id: int, decision: str, reason: str, *, items: Sequence[str] | None = None
    ) -> _Call[DisputeOut]:
        body: dict[str, Any] = {"decision": decision, "reason": reason}
        if items is not None:
            body["items"] = list(items)
        return _Call("POST", f"/api/v1/disputes/{dispute_id}/decide", DisputeOut, body=body)

    # -- grants ------------------------------------------------------------------------------

    @staticmethod
    def list_grants(
        *,
        consumer: str | None = None,
        provider: str | None = None,
        topic: str | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> _Call[GrantPage]:
        params = _params(
            consumer=consumer,
            provider=provider,
            topic=topic,
            status=status,
            offset=offset,
            limit=limit,
        )
        return _Call("GET", "/api/v1/grants", GrantPage, params)

    @staticmethod
    def get_grant(grant_id: int) -> _Call[GrantOut]:
        return _Call("GET", f"/api/v1/grants/{grant_id}", GrantOut)

    @staticmethod
    def revoke_grant(grant_id: int, reason: str) -> _Call[GrantOut]:
        return _Call("POST", f"/api/v1/grants/{grant_id}/revoke", GrantOut, body={"reason": reason})

    # -- exchange --------------------------------------------------------------------------

    @staticmethod
    def query(
        topic: str,
        keys: Sequence[str],
        *,
        items: Sequence[str] | None = None,
        case: str | None = None,
    ) -> _Call[QueryAnswer]:
        body: dict[str, Any] = {"keys": list(keys)}
        if items is not None:
            body["items"] = list(items)
        return _Call(
            "POST", f"/api/v1/exchange/{topic}/query", QueryAnswer, body=body, headers=_case(case)
        )

    @staticmethod
    def verify(
        topic: str, key: str, claims: Mapping[str, Any], *, case: str | None = None
    ) -> _Call[VerifyAnswer]:
        body = {"key": key, "claims": dict(claims)}
        return _Call(
            "POST", f"/api/v1/exchange/{topic}/verify", VerifyAnswer, body=body, headers=_case(case)
        )

    @staticmethod
    def verify_many(
        topic: str, checks: Iterable[Check], *, case: str | None = None
    ) -> _Call[VerifyBatchAnswer]:
        body = {"checks": [_check_body(c) for c in checks]}
        return _Call(
            "POST",
            f"/api/v1/exchange/{topic}/verify",
            VerifyBatchAnswer,
            body=body,
            headers=_case(case),
        )

    @staticmethod
    def export_params(offset: int, limit: int, items: Sequence[str] | None) -> Params:
        return _params(offset=offset, limit=limit, items=",".join(items) if items else None)

    # -- audit -----------------------------------------------------------------------------

    @staticmethod
    def audit_entries(
        *,
        consumer: str | None = None,
        provider: str | None = None,
        resource_code: str | None = None,
        request_id: str | None = None,
        outcome: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> _Call[AuditPage]:
        params = _params(
            consumer=consumer,
            provider=provider,
            resource_code=resource_code,
            request_id=request_id,
            outcome=outcome,
            after=after,
            limit=limit,
        )
        return _Call("GET", "/api/v1/audit/entries", AuditPage, params)

    @staticmethod
    def audit_stats() -> _Call[StatsOut]:
        return _Call("GET", "/api/v1/audit/stats", StatsOut)

    @staticmethod
    def verify_audit() -> _Call[VerifyReport]:
        return _Call("GET", "/api/v1/audit/verify", VerifyReport)

    @staticmethod
    def clock() -> _Call[PlatformClock]:
        return _Call("GET", "/api/v1/clock", PlatformClock)

    # -- credit (双公示) ---------------------------------------------------------------------

    @staticmethod
    def submit_credit_records(
        records: Sequence[PermitIn | PenaltyIn | Mapping[str, Any]],
    ) -> _Call[SubmitAnswer]:
        # Whole records: the ``kind`` default is what tells a permit from a penalty.
        body = {
            "records": [
                r.model_dump(mode="json") if isinstance(r, BaseModel) else dict(r) for r in records
            ]
        }
        return _Call("POST", "/api/v1/credit/records", SubmitAnswer, body=body)

    @staticmethod
    def announce_credit_decisions(
        notices: Sequence[NoticeIn | Mapping[str, Any]],
    ) -> _Call[NoticeAnswer]:
        body = {"notices": [_body(n) for n in notices]}
        return _Call("POST", "/api/v1/credit/notices", NoticeAnswer, body=body)

    @staticmethod
    def search_credit_records(
        *,
        credit_code: str | None = None,
        name: str | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> _Call[PublicPage]:
        params = _params(credit_code=credit_code, name=name, kind=kind, offset=offset, limit=limit)
        return _Call("GET", "/api/v1/credit/records", PublicPage, params)

    @staticmethod
    def credit_lists(credit_codes: Sequence[str]) -> _Call[ListBatch]:
        body = {"credit_codes": list(credit_codes)}
        return _Call("POST", "/api/v1/credit/lists/query", ListBatch, body=body)

    @staticmethod
    def credit_list(credit_code: str) -> _Call[ListAnswer]:
        return _Call("GET", f"/api/v1/credit/lists/{quote(credit_code, safe='')}", ListAnswer)

    @staticmethod
    def credit_stats() -> _Call[CreditStats]:
        return _Call("GET", "/api/v1/credit/stats", CreditStats)

    # -- electronic licences (电子证照) -------------------------------------------------------

    @staticmethod
    def issue_licence(
        type_code: str,
        holder_id: str,
        holder_name: str,
        content: Mapping[str, str | int],
        *,
        issued_on: dt.date | str | None = None,
        external_ref: str | None = None,
    ) -> _Call[LicenceOut]:
        body: dict[str, Any] = {
            "type_code": type_code,
            "holder_id": holder_id,
            "holder_name": holder_name,
            "content": dict(content),
        }
        body.update(_params(issued_on=_iso(issued_on), external_ref=external_ref))
        return _Call("POST", "/api/v1/licences", LicenceOut, body=body, expect=201)

    @staticmethod
    def revoke_licence(number: str, reason: str) -> _Call[LicenceOut]:
        path = f"/api/v1/licences/{quote(number, safe='')}/revoke"
        return _Call("POST", path, LicenceOut, body={"reason": reason})

    @staticmethod
    def holder_licences(
        holder_id: str, *, type_code: str | None = None, case: str | None = None
    ) -> _Call[HolderLicences]:
        path = f"/api/v1/licences/holders/{quote(holder_id, safe='')}"
        return _Call("GET", path, HolderLicences, _params(type_code=type_code), headers=_case(case))

    @staticmethod
    def use_licence(number: str, purpose: str) -> _Call[LicenceOut]:
        path = f"/api/v1/licences/{quote(number, safe='')}/use"
        return _Call("POST", path, LicenceOut, body={"purpose": purpose})

    @staticmethod
    def licence_stats() -> _Call[LicenceStats]:
        return _Call("GET", "/api/v1/licences/stats", LicenceStats)

    # -- base information libraries (基础信息库) ------------------------------------------

    @staticmethod
    def library_query(library: str, keys: Sequence[str]) -> _Call[LookupAnswer]:
        path = f"/api/v1/libraries/{quote(library, safe='')}/query"
        return _Call("POST", path, LookupAnswer, body={"keys": list(keys)})

    @staticmethod
    def library_conflicts(
        library: str,
        *,
        status: str | None = None,
        kind: str | None = None,
        subject: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> _Call[ConflictPage]:
        params = _params(status=status, kind=kind, subject=subject, offset=offset, limit=limit)
        path = f"/api/v1/libraries/{quote(library, safe='')}/conflicts"
        return _Call("GET", path, ConflictPage, params)

    @staticmethod
    def resolve_library_conflict(
        conflict_id: int, resolution: str, note: str | None = None
    ) -> _Call[ConflictOut]:
        body: dict[str, Any] = {"resolution": resolution}
        if note is not None:
            body["note"] = note
        path = f"/api/v1/libraries/conflicts/{conflict_id}/resolve"
        return _Call("POST", path, ConflictOut, body=body)


_CALLS = _Calls()


def _client_args(base_url: str, key: str | None, timeout: float, transport: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    args: dict[str, Any] = {"base_url": base_url, "headers": headers, "timeout": timeout}
    if transport is not None:
        args["transport"] = transport
    return args


class ExchangeClient:
    """The exchange's API for one department (or the operator), blocking.

    ``key`` is the caller's API key (``Authorization: Bearer``). Pass ``transport`` (an
    ``httpx.BaseTransport``, e.g. ``httpx.MockTransport``) to test without a server.
    Every method raises :class:`~exchange.client.ExchangeAPIError` (a subclass per kind)
    when the exchange refuses, and :class:`~exchange.client.TransportError` when it cannot
    be reached. Use it as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(**_client_args(base_url, key, timeout, transport))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _send(self, call: _Call[M]) -> M:
        try:
            response = self.http.request(
                call.method,
                call.path,
                params=call.params or None,
                content=None if call.body is None else orjson.dumps(call.body),
                headers={"Content-Type": "application/json", **call.headers}
                if call.body is not None
                else call.headers,
            )
        except httpx.TransportError as exc:
            raise TransportError(f"{call.method} {call.path}: {exc}") from exc
        _check(response)
        return call.model.model_validate_json(response.content)

    # -- catalog ----------------------------------------------------------------------------

    def search_topics(self, q: str | None = None, **filters: Any) -> TopicPage:
        """Search the catalog (目录检索): ``q`` full text, filters ``provider``,
        ``category``, ``group``, ``sharing_type``, ``status``, ``resource_type``,
        ``offset``, ``limit``."""
        return self._send(_CALLS.search_topics(q, **filters))

    def get_topic(self, code: str) -> TopicOut:
        """One topic by resource code (e.g. ``101001001/000001``), with its history."""
        return self._send(_CALLS.get_topic(code))

    def register_topic(self, topic: TopicCreate | Mapping[str, Any]) -> TopicOut:
        """Register a topic (注册) as its provider."""
        return self._send(_CALLS.register_topic(topic))

    def change_topic(self, code: str, change: TopicChange | Mapping[str, Any]) -> TopicOut:
        """Change a topic (变更); unset fields stay as they are."""
        return self._send(_CALLS.change_topic(code, change))

    def retire_topic(self, code: str, reason: str) -> TopicOut:
        """Retire a topic (废置); its grants stop working."""
        return self._send(_CALLS.retire_topic(code, reason))

    # -- applications -----------------------------------------------------------------------

    def apply(self, topic: str, items: Sequence[str], **terms: Any) -> ApplicationOut:
        """Apply for ``items`` of ``topic``: ``purpose``, ``legal_function`` and
        ``valid_until`` are required; ``scope``, ``valid_from``, ``daily_quota``,
        ``delivery`` and (operator only) ``consumer`` optional."""
        return self._send(_CALLS.apply(topic, items, **terms))

    def list_applications(self, **filters: Any) -> ApplicationPage:
        """Applications the caller made (``role="consumer"``) or must review
        (``role="provider"``), filtered by ``status``, ``overdue``, ``topic``."""
        return self._send(_CALLS.list_applications(**filters))

    def get_application(self, app_id: int) -> ApplicationOut:
        return self._send(_CALLS.get_application(app_id))

    def approve(self, app_id: int, **narrowing: Any) -> ApplicationOut:
        """Approve as the provider; ``items``, ``valid_until``, ``daily_quota`` narrow the
        request (a ``reason`` is then required)."""
        return self._send(_CALLS.approve(app_id, **narrowing))

    def reject(self, app_id: int, reason: str) -> ApplicationOut:
        """Refuse as the provider; the reason is mandatory."""
        return self._send(_CALLS.reject(app_id, reason))

    def dispute(
        self, app_id: int, reason: str, *, items: Sequence[str] | None = None
    ) -> DisputeOut:
        """Dispute refused items as the consumer (the operator coordinates)."""
        return self._send(_CALLS.dispute(app_id, reason, items=items))

    def get_dispute(self, dispute_id: int) -> DisputeOut:
        return self._send(_CALLS.get_dispute(dispute_id))

    def post_message(self, dispute_id: int, body: str) -> DisputeOut:
        """Add to a dispute's negotiation thread."""
        return self._send(_CALLS.post_message(dispute_id, body))

    def decide(
        self, dispute_id: int, decision: str, reason: str, *, items: Sequence[str] | None = None
    ) -> DisputeOut:
        """Settle a dispute as the operator: ``grant``, ``partial`` (with ``items``) or
        ``uphold``."""
        return self._send(_CALLS.decide(dispute_id, decision, reason, items=items))

    # -- grants -----------------------------------------------------------------------------

    def list_grants(self, **filters: Any) -> GrantPage:
        """Grants by ``consumer``, ``provider``, ``topic``, ``status``."""
        return self._send(_CALLS.list_grants(**filters))

    def get_grant(self, grant_id: int) -> GrantOut:
        return self._send(_CALLS.get_grant(grant_id))

    def revoke_grant(self, grant_id: int, reason: str) -> GrantOut:
        return self._send(_CALLS.revoke_grant(grant_id, reason))

    # -- exchange ---------------------------------------------------------------------------

    def query(
        self,
        topic: str,
        keys: Sequence[str],
        *,
        items: Sequence[str] | None = None,
        case: str | None = None,
    ) -> QueryAnswer:
        """Look up to 1,000 records by key through the broker; ``case`` names the business
        case in the audit log."""
        return self._send(_CALLS.query(topic, keys, items=items, case=case))

    def verify(
        self, topic: str, key: str, claims: Mapping[str, Any], *, case: str | None = None
    ) -> VerifyAnswer:
        """Verification without disclosure (核验): does the source hold these values for
        ``key``? ``claims`` maps items to claimed values (or ``{"min": …, "max": …}``
        ranges); the answer says ``match`` / ``mismatch`` / ``unknown`` per item, never
        the value. Allowed for items of a ``data_verification`` grant and items the
        provider marks ``verifiable``; anything else raises
        :class:`~exchange.client.PermissionDenied`."""
        return self._send(_CALLS.verify(topic, key, claims, case=case))

    def verify_many(
        self, topic: str, checks: Iterable[Check], *, case: str | None = None
    ) -> VerifyBatchAnswer:
        """Up to 1,000 verifications in one call: ``checks`` are ``(key, claims)`` pairs
        (or ``{"key", "claims"}`` dicts); results come back in the same order."""
        return self._send(_CALLS.verify_many(topic, checks, case=case))

    def export(
        self,
        topic: str,
        *,
        offset: int = 0,
        limit: int = 10_000,
        items: Sequence[str] | None = None,
        case: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Stream a table topic's records (granted items only), one dict at a time.

        Raises :class:`~exchange.client.ExportInterrupted` if the stream ends early.
        """
        params = _CALLS.export_params(offset, limit, items)
        count = 0
        try:
            with self.http.stream(
                "GET", f"/api/v1/exchange/{topic}/export", params=params, headers=_case(case)
            ) as response:
                if not response.is_success:
                    response.read()
                    _check(response)
                carry = b""
                for chunk in response.iter_bytes():
                    data = carry + chunk
                    lines = data.split(b"\n")
                    carry = lines.pop()
                    for line in lines:
                        if line:
                            count += 1
                            yield orjson.loads(line)
                if carry.strip():
                    raise ExportInterrupted("the export ended inside a record", count)
        except httpx.TransportError as exc:
            raise ExportInterrupted(f"the export stream broke off: {exc}", count) from exc

    # -- audit ------------------------------------------------------------------------------

    def audit_entries(self, **filters: Any) -> AuditPage:
        """Audit entries in chain order (the operator sees all; a department its own)."""
        return self._send(_CALLS.audit_entries(**filters))

    def audit_stats(self) -> StatsOut:
        """Records exchanged today and in total, by department and topic."""
        return self._send(_CALLS.audit_stats())

    def verify_audit(self) -> VerifyReport:
        """Walk the audit hash chain (operator only)."""
        return self._send(_CALLS.verify_audit())

    def clock(self) -> PlatformClock:
        """The platform's simulated time and day (validity dates count from it)."""
        return self._send(_CALLS.clock())

    # -- credit (双公示) ----------------------------------------------------------------------

    def submit_credit_records(
        self, records: Sequence[PermitIn | PenaltyIn | Mapping[str, Any]]
    ) -> SubmitAnswer:
        """Publish up to 1,000 permit or penalty decisions of the calling unit (双公示);
        a decision number already published answers ``duplicate``."""
        return self._send(_CALLS.submit_credit_records(records))

    def announce_credit_decisions(
        self, notices: Sequence[NoticeIn | Mapping[str, Any]]
    ) -> NoticeAnswer:
        """Announce decisions made (what must be published, 应公示清单)."""
        return self._send(_CALLS.announce_credit_decisions(notices))

    def search_credit_records(self, **filters: Any) -> PublicPage:
        """The public view of published decisions: ``credit_code`` or ``name``, and
        ``kind``, ``offset``, ``limit``."""
        return self._send(_CALLS.search_credit_records(**filters))

    def credit_lists(self, credit_codes: Sequence[str]) -> ListBatch:
        """Red and black list membership of up to 1,000 credit codes, with the reasons
        and source records (needs a grant on the credit lists topic)."""
        return self._send(_CALLS.credit_lists(credit_codes))

    def credit_list(self, credit_code: str) -> ListAnswer:
        """List membership of one credit code (e.g. the customs before clearance)."""
        return self._send(_CALLS.credit_list(credit_code))

    def credit_stats(self) -> CreditStats:
        """Publication rate per unit (your own; the operator every unit's) and overall."""
        return self._send(_CALLS.credit_stats())

    # -- electronic licences (电子证照) -------------------------------------------------------

    def issue_licence(
        self,
        type_code: str,
        holder_id: str,
        holder_name: str,
        content: Mapping[str, str | int],
        **options: Any,
    ) -> LicenceOut:
        """Issue a licence as its issuing department (``issued_on``, ``external_ref``: a
        reference already used returns the licence issued then)."""
        return self._send(
            _CALLS.issue_licence(type_code, holder_id, holder_name, content, **options)
        )

    def revoke_licence(self, number: str, reason: str) -> LicenceOut:
        """Revoke a licence the calling department issued."""
        return self._send(_CALLS.revoke_licence(number, reason))

    def holder_licences(
        self, holder_id: str, *, type_code: str | None = None, case: str | None = None
    ) -> HolderLicences:
        """A holder's licences with the e-licence topic's granted items (needs a grant)."""
        return self._send(_CALLS.holder_licences(holder_id, type_code=type_code, case=case))

    def use_licence(self, number: str, purpose: str) -> LicenceOut:
        """Use a licence (用证): the whole licence and its code (needs every item granted)."""
        return self._send(_CALLS.use_licence(number, purpose))

    def licence_stats(self) -> LicenceStats:
        """Licences per type: the profile's starting state plus those issued since."""
        return self._send(_CALLS.licence_stats())

    # -- base information libraries (基础信息库) ------------------------------------------

    def library_query(self, library: str, keys: Sequence[str]) -> LookupAnswer:
        """Assembled records of up to 100 people (``library="person"``, ID numbers) or
        enterprises (``"enterprise"``, credit codes): each element with its source and
        refresh time; elements you hold no grant for are in ``withheld`` (why each, in
        ``withheld_reasons``: ``conditional``, or ``not_government`` for a unit that is not
        a government department)."""
        return self._send(_CALLS.library_query(library, keys))

    def enterprise(self, credit_code: str) -> LookupAnswer:
        """One enterprise from the legal-person library (法人基础信息库)."""
        return self._send(_CALLS.library_query("enterprise", [credit_code]))

    def person(self, id_number: str) -> LookupAnswer:
        """One person from the population library (人口基础信息库)."""
        return self._send(_CALLS.library_query("person", [id_number]))

    def library_conflicts(self, library: str, **filters: Any) -> ConflictPage:
        """Conflicts between sources (the operator's all, a department's its own):
        ``status``, ``kind``, ``subject``, ``offset``, ``limit``."""
        return self._send(_CALLS.library_conflicts(library, **filters))

    def resolve_library_conflict(
        self, conflict_id: int, resolution: str, note: str | None = None
    ) -> ConflictOut:
        """Close a conflict: ``corrected``, ``source_confirmed`` or ``dismissed``."""
        return self._send(_CALLS.resolve_library_conflict(conflict_id, resolution, note))


class AsyncExchangeClient:
    """:class:`ExchangeClient` for asyncio: the same methods, awaited (``export`` is an
    async iterator)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(**_client_args(base_url, key, timeout, transport))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _send(self, call: _Call[M]) -> M:
        try:
            response = await self.http.request(
                call.method,
                call.path,
                params=call.params or None,
                content=None if call.body is None else orjson.dumps(call.body),
                headers={"Content-Type": "application/json", **call.headers}
                if call.body is not None
                else call.headers,
            )
        except httpx.TransportError as exc:
            raise TransportError(f"{call.method} {call.path}: {exc}") from exc
        _check(response)
        return call.model.model_validate_json(response.content)

    async def search_topics(self, q: str | None = None, **filters: Any) -> TopicPage:
        """See :meth:`ExchangeClient.search_topics`."""
        return await self._send(_CALLS.search_topics(q, **filters))

    async def get_topic(self, code: str) -> TopicOut:
        return await self._send(_CALLS.get_topic(code))

    async def register_topic(self, topic: TopicCreate | Mapping[str, Any]) -> TopicOut:
        return await self._send(_CALLS.register_topic(topic))

    async def change_topic(self, code: str, change: TopicChange | Mapping[str, Any]) -> TopicOut:
        return await self._send(_CALLS.change_topic(code, change))

    async def retire_topic(self, code: str, reason: str) -> TopicOut:
        return await self._send(_CALLS.retire_topic(code, reason))

    async def apply(self, topic: str, items: Sequence[str], **terms: Any) -> ApplicationOut:
        """See :meth:`ExchangeClient.apply`."""
        return await self._send(_CALLS.apply(topic, items, **terms))

    async def list_applications(self, **filters: Any) -> ApplicationPage:
        return await self._send(_CALLS.list_applications(**filters))

    async def get_application(self, app_id: int) -> ApplicationOut:
        return await self._send(_CALLS.get_application(app_id))

    async def approve(self, app_id: int, **narrowing: Any) -> ApplicationOut:
        return await self._send(_CALLS.approve(app_id, **narrowing))

    async def reject(self, app_id: int, reason: str) -> ApplicationOut:
        return await self._send(_CALLS.reject(app_id, reason))

    async def dispute(
        self, app_id: int, reason: str, *, items: Sequence[str] | None = None
    ) -> DisputeOut:
        return await self._send(_CALLS.dispute(app_id, reason, items=items))

    async def get_dispute(self, dispute_id: int) -> DisputeOut:
        return await self._send(_CALLS.get_dispute(dispute_id))

    async def post_message(self, dispute_id: int, body: str) -> DisputeOut:
        return await self._send(_CALLS.post_message(dispute_id, body))

    async def decide(
        self, dispute_id: int, decision: str, reason: str, *, items: Sequence[str] | None = None
    ) -> DisputeOut:
        return await self._send(_CALLS.decide(dispute_id, decision, reason, items=items))

    async def list_grants(self, **filters: Any) -> GrantPage:
        return await self._send(_CALLS.list_grants(**filters))

    async def get_grant(self, grant_id: int) -> GrantOut:
        return await self._send(_CALLS.get_grant(grant_id))

    async def revoke_grant(self, grant_id: int, reason: str) -> GrantOut:
        return await self._send(_CALLS.revoke_grant(grant_id, reason))

    async def query(
        self,
        topic: str,
        keys: Sequence[str],
        *,
        items: Sequence[str] | None = None,
        case: str | None = None,
    ) -> QueryAnswer:
        """See :meth:`ExchangeClient.query`."""
        return await self._send(_CALLS.query(topic, keys, items=items, case=case))

    async def verify(
        self, topic: str, key: str, claims: Mapping[str, Any], *, case: str | None = None
    ) -> VerifyAnswer:
        """See :meth:`ExchangeClient.verify`."""
        return await self._send(_CALLS.verify(topic, key, claims, case=case))

    async def verify_many(
        self, topic: str, checks: Iterable[Check], *, case: str | None = None
    ) -> VerifyBatchAnswer:
        """See :meth:`ExchangeClient.verify_many`."""
        return await self._send(_CALLS.verify_many(topic, checks, case=case))

    async def export(
        self,
        topic: str,
        *,
        offset: int = 0,
        limit: int = 10_000,
        items: Sequence[str] | None = None,
        case: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """See :meth:`ExchangeClient.export`."""
        params = _CALLS.export_params(offset, limit, items)
        count = 0
        try:
            async with self.http.stream(
                "GET", f"/api/v1/exchange/{topic}/export", params=params, headers=_case(case)
            ) as response:
                if not response.is_success:
                    await response.aread()
                    _check(response)
                carry = b""
                async for chunk in response.aiter_bytes():
                    data = carry + chunk
                    lines = data.split(b"\n")
                    carry = lines.pop()
                    for line in lines:
                        if line:
                            count += 1
                            yield orjson.loads(line)
                if carry.strip():
                    raise ExportInterrupted("the export ended inside a record", count)
        except httpx.TransportError as exc:
            raise ExportInterrupted(f"the export stream broke off: {exc}", count) from exc

    async def audit_entries(self, **filters: Any) -> AuditPage:
        return await self._send(_CALLS.audit_entries(**filters))

    async def audit_stats(self) -> StatsOut:
        return await self._send(_CALLS.audit_stats())

    async def verify_audit(self) -> VerifyReport:
        return await self._send(_CALLS.verify_audit())

    async def clock(self) -> PlatformClock:
        return await self._send(_CALLS.clock())

    async def submit_credit_records(
        self, records: Sequence[PermitIn | PenaltyIn | Mapping[str, Any]]
    ) -> SubmitAnswer:
        return await self._send(_CALLS.submit_credit_records(records))

    async def announce_credit_decisions(
        self, notices: Sequence[NoticeIn | Mapping[str, Any]]
    ) -> NoticeAnswer:
        return await self._send(_CALLS.announce_credit_decisions(notices))

    async def search_credit_records(self, **filters: Any) -> PublicPage:
        return await self._send(_CALLS.search_credit_records(**filters))

    async def credit_lists(self, credit_codes: Sequence[str]) -> ListBatch:
        return await self._send(_CALLS.credit_lists(credit_codes))

    async def credit_list(self, credit_code: str) -> ListAnswer:
        return await self._send(_CALLS.credit_list(credit_code))

    async def credit_stats(self) -> CreditStats:
        return await self._send(_CALLS.credit_stats())

    # -- electronic licences (电子证照) -------------------------------------------------------

    async def issue_licence(
        self,
        type_code: str,
        holder_id: str,
        holder_name: str,
        content: Mapping[str, str | int],
        **options: Any,
    ) -> LicenceOut:
        """Issue a licence as its issuing department (``issued_on``, ``external_ref``: a
        reference already used returns the licence issued then)."""
        return await self._send(
            _CALLS.issue_licence(type_code, holder_id, holder_name, content, **options)
        )

    async def revoke_licence(self, number: str, reason: str) -> LicenceOut:
        """Revoke a licence the calling department issued."""
        return await self._send(_CALLS.revoke_licence(number, reason))

    async def holder_licences(
        self, holder_id: str, *, type_code: str | None = None, case: str | None = None
    ) -> HolderLicences:
        """A holder's licences with the e-licence topic's granted items (needs a grant)."""
        return await self._send(_CALLS.holder_licences(holder_id, type_code=type_code, case=case))

    async def use_licence(self, number: str, purpose: str) -> LicenceOut:
        """Use a licence (用证): the whole licence and its code (needs every item granted)."""
        return await self._send(_CALLS.use_licence(number, purpose))

    async def licence_stats(self) -> LicenceStats:
        """Licences per type: the profile's starting state plus those issued since."""
        return await self._send(_CALLS.licence_stats())

    async def library_query(self, library: str, keys: Sequence[str]) -> LookupAnswer:
        """See :meth:`ExchangeClient.library_query`."""
        return await self._send(_CALLS.library_query(library, keys))

    async def enterprise(self, credit_code: str) -> LookupAnswer:
        return await self._send(_CALLS.library_query("enterprise", [credit_code]))

    async def person(self, id_number: str) -> LookupAnswer:
        return await self._send(_CALLS.library_query("person", [id_number]))

    async def library_conflicts(self, library: str, **filters: Any) -> ConflictPage:
        return await self._send(_CALLS.library_conflicts(library, **filters))

    async def resolve_library_conflict(
        self, conflict_id: int, resolution: str, note: str | None = None
    ) -> ConflictOut:
        return await self._send(_CALLS.resolve_library_conflict(conflict_id, resolution, note))
