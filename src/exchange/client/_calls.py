"""Every call the SDK makes, described once (no I/O here).

A builder of :class:`Calls` takes the call's typed arguments and returns a :class:`ApiCall`:
method, path, parameters, body and the model of the answer. Both clients derive their
methods from these builders (signature and docstring included), so the two surfaces cannot
drift apart and neither repeats a signature; only sending differs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
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
from exchange.client._errors import error_from
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

CASE_HEADER = "X-Exchange-Case"

M = TypeVar("M", bound=BaseModel)


class PlatformClock(BaseModel):
    """The platform's simulated time (deadlines and expiries follow it)."""

    now: dt.datetime
    offset_seconds: float
    today: dt.date = Field(description="The platform's day (Beijing time).")


Params = dict[str, str | int | bool]


@dataclass(frozen=True)
class ApiCall(Generic[M]):
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


def case_headers(case: str | None) -> dict[str, str]:
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


def check_response(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    raise error_from(response.status_code, body)


class Calls:
    """Every call the SDK makes, as :class:`ApiCall` descriptions; each builder's docstring
    is the client method's."""

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
    ) -> ApiCall[TopicPage]:
        """Search the catalog (目录检索): ``q`` full text, filters ``provider``,
        ``category``, ``group``, ``sharing_type``, ``status``, ``resource_type``,
        ``offset``, ``limit``."""
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
        return ApiCall("GET", "/api/v1/catalog/topics", TopicPage, params)

    @staticmethod
    def get_topic(code: str) -> ApiCall[TopicOut]:
        """One topic by resource code (e.g. ``101001001/000001``), with its history."""
        return ApiCall("GET", f"/api/v1/catalog/topics/{code}", TopicOut)

    @staticmethod
    def register_topic(topic: TopicCreate | Mapping[str, Any]) -> ApiCall[TopicOut]:
        """Register a topic (注册) as its provider."""
        return ApiCall("POST", "/api/v1/catalog/topics", TopicOut, body=_body(topic), expect=201)

    @staticmethod
    def change_topic(code: str, change: TopicChange | Mapping[str, Any]) -> ApiCall[TopicOut]:
        """Change a topic (变更); unset fields stay as they are."""
        return ApiCall("PATCH", f"/api/v1/catalog/topics/{code}", TopicOut, body=_body(change))

    @staticmethod
    def retire_topic(code: str, reason: str) -> ApiCall[TopicOut]:
        """Retire a topic (废置); its grants stop working."""
        return ApiCall(
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
    ) -> ApiCall[ApplicationOut]:
        """Apply for ``items`` of ``topic``: ``purpose``, ``legal_function`` and
        ``valid_until`` are required; ``scope``, ``valid_from``, ``daily_quota``,
        ``delivery`` and (operator only) ``consumer`` optional."""
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
        return ApiCall("POST", "/api/v1/applications", ApplicationOut, body=body, expect=201)

    @staticmethod
    def list_applications(
        *,
        role: str | None = None,
        status: str | None = None,
        overdue: bool | None = None,
        topic: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> ApiCall[ApplicationPage]:
        """Applications the caller made (``role="consumer"``) or must review
        (``role="provider"``), filtered by ``status``, ``overdue``, ``topic``."""
        params = _params(
            role=role, status=status, overdue=overdue, topic=topic, offset=offset, limit=limit
        )
        return ApiCall("GET", "/api/v1/applications", ApplicationPage, params)

    @staticmethod
    def get_application(app_id: int) -> ApiCall[ApplicationOut]:
        """One application with its per-item outcomes and its timeline."""
        return ApiCall("GET", f"/api/v1/applications/{app_id}", ApplicationOut)

    @staticmethod
    def approve(
        app_id: int,
        *,
        items: Sequence[str] | None = None,
        valid_until: dt.date | str | None = None,
        daily_quota: int | None = None,
        reason: str = "",
    ) -> ApiCall[ApplicationOut]:
        """Approve as the provider; ``items``, ``valid_until``, ``daily_quota`` narrow the
        request (a ``reason`` is then required)."""
        body: dict[str, Any] = {"reason": reason}
        body.update(
            _params(
                items=list(items) if items is not None else None,
                valid_until=_iso(valid_until),
                daily_quota=daily_quota,
            )
        )
        return ApiCall("POST", f"/api/v1/applications/{app_id}/approve", ApplicationOut, body=body)

    @staticmethod
    def reject(app_id: int, reason: str) -> ApiCall[ApplicationOut]:
        """Refuse as the provider; the reason is mandatory."""
        return ApiCall(
            "POST", f"/api/v1/applications/{app_id}/reject", ApplicationOut, body={"reason": reason}
        )

    @staticmethod
    def dispute(
        app_id: int, reason: str, *, items: Sequence[str] | None = None
    ) -> ApiCall[DisputeOut]:
        """Dispute refused items as the consumer (the operator coordinates)."""
        body: dict[str, Any] = {"reason": reason}
        if items is not None:
            body["items"] = list(items)
        return ApiCall(
            "POST", f"/api/v1/applications/{app_id}/dispute", DisputeOut, body=body, expect=201
        )

    @staticmethod
    def get_dispute(dispute_id: int) -> ApiCall[DisputeOut]:
        """One dispute with its negotiation thread."""
        return ApiCall("GET", f"/api/v1/disputes/{dispute_id}", DisputeOut)

    @staticmethod
    def post_message(dispute_id: int, body: str) -> ApiCall[DisputeOut]:
        """Add to a dispute's negotiation thread."""
        return ApiCall(
            "POST", f"/api/v1/disputes/{dispute_id}/messages", DisputeOut, body={"body": body}
        )

    @staticmethod
    def decide(
        dispute_id: int, decision: str, reason: str, *, items: Sequence[str] | None = None
    ) -> ApiCall[DisputeOut]:
        """Settle a dispute as the operator: ``grant``, ``partial`` (with ``items``) or
        ``uphold``."""
        body: dict[str, Any] = {"decision": decision, "reason": reason}
        if items is not None:
            body["items"] = list(items)
        return ApiCall("POST", f"/api/v1/disputes/{dispute_id}/decide", DisputeOut, body=body)

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
    ) -> ApiCall[GrantPage]:
        """Grants by ``consumer``, ``provider``, ``topic``, ``status``."""
        params = _params(
            consumer=consumer,
            provider=provider,
            topic=topic,
            status=status,
            offset=offset,
            limit=limit,
        )
        return ApiCall("GET", "/api/v1/grants", GrantPage, params)

    @staticmethod
    def get_grant(grant_id: int) -> ApiCall[GrantOut]:
        """One grant (its consumer, its provider or the operator may read it)."""
        return ApiCall("GET", f"/api/v1/grants/{grant_id}", GrantOut)

    @staticmethod
    def revoke_grant(grant_id: int, reason: str) -> ApiCall[GrantOut]:
        """Revoke a grant as its provider (or the operator); the reason is mandatory."""
        return ApiCall(
            "POST", f"/api/v1/grants/{grant_id}/revoke", GrantOut, body={"reason": reason}
        )

    # -- exchange --------------------------------------------------------------------------

    @staticmethod
    def query(
        topic: str,
        keys: Sequence[str],
        *,
        items: Sequence[str] | None = None,
        case: str | None = None,
    ) -> ApiCall[QueryAnswer]:
        """Look up to 1,000 records by key through the broker; ``case`` names the business
        case in the audit log."""
        body: dict[str, Any] = {"keys": list(keys)}
        if items is not None:
            body["items"] = list(items)
        return ApiCall(
            "POST",
            f"/api/v1/exchange/{topic}/query",
            QueryAnswer,
            body=body,
            headers=case_headers(case),
        )

    @staticmethod
    def verify(
        topic: str, key: str, claims: Mapping[str, Any], *, case: str | None = None
    ) -> ApiCall[VerifyAnswer]:
        """Verification without disclosure (核验): does the source hold these values for
        ``key``? ``claims`` maps items to claimed values (or ``{"min": …, "max": …}``
        ranges); the answer says ``match`` / ``mismatch`` / ``unknown`` per item, never
        the value. Allowed for items of a ``data_verification`` grant and items the
        provider marks ``verifiable``; anything else raises
        :class:`~exchange.client.PermissionDenied`."""
        body = {"key": key, "claims": dict(claims)}
        return ApiCall(
            "POST",
            f"/api/v1/exchange/{topic}/verify",
            VerifyAnswer,
            body=body,
            headers=case_headers(case),
        )

    @staticmethod
    def verify_many(
        topic: str, checks: Iterable[Check], *, case: str | None = None
    ) -> ApiCall[VerifyBatchAnswer]:
        """Up to 1,000 verifications in one call: ``checks`` are ``(key, claims)`` pairs
        (or ``{"key", "claims"}`` dicts); results come back in the same order."""
        body = {"checks": [_check_body(c) for c in checks]}
        return ApiCall(
            "POST",
            f"/api/v1/exchange/{topic}/verify",
            VerifyBatchAnswer,
            body=body,
            headers=case_headers(case),
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
    ) -> ApiCall[AuditPage]:
        """Audit entries in chain order (the operator sees all; a department its own)."""
        params = _params(
            consumer=consumer,
            provider=provider,
            resource_code=resource_code,
            request_id=request_id,
            outcome=outcome,
            after=after,
            limit=limit,
        )
        return ApiCall("GET", "/api/v1/audit/entries", AuditPage, params)

    @staticmethod
    def audit_stats() -> ApiCall[StatsOut]:
        """Records exchanged today and in total, by department and topic."""
        return ApiCall("GET", "/api/v1/audit/stats", StatsOut)

    @staticmethod
    def verify_audit() -> ApiCall[VerifyReport]:
        """Walk the audit hash chain (operator only)."""
        return ApiCall("GET", "/api/v1/audit/verify", VerifyReport)

    @staticmethod
    def clock() -> ApiCall[PlatformClock]:
        """The platform's simulated time and day (validity dates count from it)."""
        return ApiCall("GET", "/api/v1/clock", PlatformClock)

    # -- credit (双公示) ---------------------------------------------------------------------

    @staticmethod
    def submit_credit_records(
        records: Sequence[PermitIn | PenaltyIn | Mapping[str, Any]],
    ) -> ApiCall[SubmitAnswer]:
        # Whole records: the ``kind`` default is what tells a permit from a penalty.
        """Publish up to 1,000 permit or penalty decisions of the calling unit (双公示);
        a decision number already published answers ``duplicate``."""
        body = {
            "records": [
                r.model_dump(mode="json") if isinstance(r, BaseModel) else dict(r) for r in records
            ]
        }
        return ApiCall("POST", "/api/v1/credit/records", SubmitAnswer, body=body)

    @staticmethod
    def announce_credit_decisions(
        notices: Sequence[NoticeIn | Mapping[str, Any]],
    ) -> ApiCall[NoticeAnswer]:
        """Announce decisions made (what must be published, 应公示清单)."""
        body = {"notices": [_body(n) for n in notices]}
        return ApiCall("POST", "/api/v1/credit/notices", NoticeAnswer, body=body)

    @staticmethod
    def search_credit_records(
        *,
        credit_code: str | None = None,
        name: str | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> ApiCall[PublicPage]:
        """The public view of published decisions: ``credit_code`` or ``name``, and
        ``kind``, ``offset``, ``limit``."""
        params = _params(credit_code=credit_code, name=name, kind=kind, offset=offset, limit=limit)
        return ApiCall("GET", "/api/v1/credit/records", PublicPage, params)

    @staticmethod
    def credit_lists(credit_codes: Sequence[str]) -> ApiCall[ListBatch]:
        """Red and black list membership of up to 1,000 credit codes, with the reasons
        and source records (needs a grant on the credit lists topic)."""
        body = {"credit_codes": list(credit_codes)}
        return ApiCall("POST", "/api/v1/credit/lists/query", ListBatch, body=body)

    @staticmethod
    def credit_list(credit_code: str) -> ApiCall[ListAnswer]:
        """List membership of one credit code (e.g. the customs before clearance)."""
        return ApiCall("GET", f"/api/v1/credit/lists/{quote(credit_code, safe='')}", ListAnswer)

    @staticmethod
    def credit_stats() -> ApiCall[CreditStats]:
        """Publication rate per unit (your own; the operator every unit's) and overall."""
        return ApiCall("GET", "/api/v1/credit/stats", CreditStats)

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
    ) -> ApiCall[LicenceOut]:
        """Issue a licence as its issuing department (``issued_on``, ``external_ref``: a
        reference already used returns the licence issued then)."""
        body: dict[str, Any] = {
            "type_code": type_code,
            "holder_id": holder_id,
            "holder_name": holder_name,
            "content": dict(content),
        }
        body.update(_params(issued_on=_iso(issued_on), external_ref=external_ref))
        return ApiCall("POST", "/api/v1/licences", LicenceOut, body=body, expect=201)

    @staticmethod
    def revoke_licence(number: str, reason: str) -> ApiCall[LicenceOut]:
        """Revoke a licence the calling department issued."""
        path = f"/api/v1/licences/{quote(number, safe='')}/revoke"
        return ApiCall("POST", path, LicenceOut, body={"reason": reason})

    @staticmethod
    def holder_licences(
        holder_id: str, *, type_code: str | None = None, case: str | None = None
    ) -> ApiCall[HolderLicences]:
        """A holder's licences with the e-licence topic's granted items (needs a grant)."""
        path = f"/api/v1/licences/holders/{quote(holder_id, safe='')}"
        return ApiCall(
            "GET", path, HolderLicences, _params(type_code=type_code), headers=case_headers(case)
        )

    @staticmethod
    def use_licence(number: str, purpose: str) -> ApiCall[LicenceOut]:
        """Use a licence (用证): the whole licence and its code (needs every item granted)."""
        path = f"/api/v1/licences/{quote(number, safe='')}/use"
        return ApiCall("POST", path, LicenceOut, body={"purpose": purpose})

    @staticmethod
    def licence_stats() -> ApiCall[LicenceStats]:
        """Licences per type: the profile's starting state plus those issued since."""
        return ApiCall("GET", "/api/v1/licences/stats", LicenceStats)

    # -- base information libraries (基础信息库) ------------------------------------------

    @staticmethod
    def library_query(library: str, keys: Sequence[str]) -> ApiCall[LookupAnswer]:
        """Assembled records of up to 100 people (``library="person"``, ID numbers) or
        enterprises (``"enterprise"``, credit codes): each element with its source and
        refresh time; elements you hold no grant for are in ``withheld`` (why each, in
        ``withheld_reasons``: ``conditional``, or ``not_government`` for a unit that is not
        a government department)."""
        path = f"/api/v1/libraries/{quote(library, safe='')}/query"
        return ApiCall("POST", path, LookupAnswer, body={"keys": list(keys)})

    @staticmethod
    def library_conflicts(
        library: str,
        *,
        status: str | None = None,
        kind: str | None = None,
        subject: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> ApiCall[ConflictPage]:
        """Conflicts between sources (the operator's all, a department's its own):
        ``status``, ``kind``, ``subject``, ``offset``, ``limit``."""
        params = _params(status=status, kind=kind, subject=subject, offset=offset, limit=limit)
        path = f"/api/v1/libraries/{quote(library, safe='')}/conflicts"
        return ApiCall("GET", path, ConflictPage, params)

    @staticmethod
    def resolve_library_conflict(
        conflict_id: int, resolution: str, note: str | None = None
    ) -> ApiCall[ConflictOut]:
        """Close a conflict: ``corrected``, ``source_confirmed`` or ``dismissed``."""
        body: dict[str, Any] = {"resolution": resolution}
        if note is not None:
            body["note"] = note
        path = f"/api/v1/libraries/conflicts/{conflict_id}/resolve"
        return ApiCall("POST", path, ConflictOut, body=body)
