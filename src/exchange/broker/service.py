"""The exchange pipeline: authenticate → check the grant → route → forward → filter →
count → audit (durably) → answer.

The hot path opens no database session: keys come from the Authenticator's cache, grants
from the in-memory GrantCache, routes from :class:`RouteCache`, and the audit entry goes to
the group-committing writer. Every outcome, denials included, is audited.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urljoin

import aiohttp
import msgspec
import orjson
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope

from exchange.audit.entry import Entry, escape_text
from exchange.audit.writer import AuditUnavailable, AuditWriter
from exchange.authn import Authenticator
from exchange.authz.policy import Decision
from exchange.broker.batching import LookupBatcher
from exchange.broker.errors import (
    DENIAL_STATUS,
    ProviderBadResponse,
    ProviderUnavailable,
    broker_error,
    client_error,
)
from exchange.broker.metrics import BrokerMetrics
from exchange.broker.schemas import MAX_KEYS
from exchange.broker.upstream import Upstream, UpstreamConfig
from exchange.catalog.models import Topic
from exchange.clock import Clock
from exchange.context import AppContext
from exchange.db.engine import Database
from exchange.errors import ExchangeError, NotAuthenticated, sane_correlation_id
from exchange.members.models import Department
from exchange.provider_auth import derive_provider_secret

log = logging.getLogger(__name__)

#: unit kinds that are the peer platform (their mounted topics are asked of the peer)
FEDERATED_KINDS = frozenset({"city_platform", "provincial"})
CASE_HEADER = "x-exchange-case"
CASE_HEADER_RAW = CASE_HEADER.encode()
MAX_CASE = 200
MAX_EXPORT = 1_000_000
DEFAULT_EXPORT = 10_000


class GrantChecker(Protocol):
    """What the broker needs of the authorization service (``ctx.grants``)."""

    def check(
        self, consumer: str, resource_code: str, items: Iterable[str] | None, *, records: int = 1
    ) -> Decision: ...

    def check_verification(
        self, consumer: str, resource_code: str, items: Iterable[str], *, records: int = 1
    ) -> Decision: ...

    def consume(self, grant_id: int, records: int) -> None: ...

    @property
    def fresh(self) -> bool:
        """True when :meth:`check` will not read the database."""
        ...


@dataclass(frozen=True, slots=True)
class Route:
    """Where a topic's data lives, as the catalog and the department registry say."""

    resource_code: str
    provider: str
    base_url: str | None
    api_path: str
    resource_type: str
    status: str
    #: base URL and API path joined once (urljoin per call was ~30 µs of a lookup's CPU)
    endpoint: str = ""
    #: the topic's one ``is_key`` item (None with none or several): what lets concurrent
    #: lookups share a provider call (:class:`LookupBatcher`)
    key_item: str | None = None
    #: provided by the peer platform (a mounted topic): asked through the federation
    federated: bool = False
    #: item → data type, the topic's items as the catalog lists them (for verification)
    item_types: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: items the provider lets any member verify without a grant (``verifiable``)
    verifiable: frozenset[str] = frozenset()

    def url(self, action: str) -> str:
        assert self.base_url is not None
        return self.endpoint + action


#: "not in the route cache" (None there means "no such topic")
_UNKNOWN: Any = object()

#: Routes a :class:`RouteCache` holds: past it, the cache starts again empty (the catalog
#: has ~3,722 topics; only codes that do not exist could fill it).
ROUTE_CACHE = 50_000


class RouteCache:
    """resource code → :class:`Route`, held until the catalog or a department changes.

    It follows the ``catalog`` and ``departments`` announcements
    (:mod:`exchange.db.freshness`): a retired topic or a department's new base URL is seen
    by the next call in every process once the change has answered. Concurrent misses of
    one code share one background load (a blocking load per waiting call used to start a
    thundering herd of thread-pool queries); a load that began before an announcement is
    neither stored nor handed to calls that start after it.
    """

    def __init__(self, db: Database, *, self_url: str | None = None) -> None:
        """``self_url``: this process's own address, for the relative base URLs of the
        mock departments it serves itself (None when it serves none)."""
        self._db = db
        self._self_url = self_url
        self._routes: dict[str, Route | None] = {}
        self._loading: dict[str, asyncio.Future[Route | None]] = {}
        self._generation = 0
        for topic in ("catalog", "departments"):
            db.freshness.subscribe(topic, self.invalidate)

    def invalidate(self) -> None:
        """Forget every route (and every load in flight): called after a change commits."""
        self._generation += 1
        self._routes = {}
        self._loading = {}

    def __len__(self) -> int:
        return len(self._routes)

    def cached(self, code: str, default: Any) -> Any:
        """The route held for ``code`` (None: no such topic), or ``default`` when none is
        held: then :meth:`get` loads it."""
        return self._routes.get(code, default)

    async def get(self, front: str, seq: str) -> Route | None:
        code = f"{front}/{seq}"
        routes = self._routes
        if code in routes:
            return routes[code]
        loading = self._loading.get(code) or self._start_load(code, front, seq)
        return await asyncio.shield(loading)

    def _start_load(self, code: str, front: str, seq: str) -> asyncio.Future[Route | None]:
        future = asyncio.ensure_future(self._reload(code, front, seq, self._generation))
        self._loading[code] = future
        return future

    async def _reload(self, code: str, front: str, seq: str, generation: int) -> Route | None:
        me = asyncio.current_task()
        try:
            route = await run_in_threadpool(self._load, front, seq)
        finally:
            if self._loading.get(code) is me:
                del self._loading[code]
        if generation == self._generation:
            if len(self._routes) >= ROUTE_CACHE:
                self._routes = {}
            self._routes[code] = route
        return route

    def _load(self, front: str, seq: str) -> Route | None:
        with self._db.sessions() as session:
            row = session.execute(
                select(Topic, Department.base_url, Department.kind)
                .join(Department, Department.code == Topic.provider)
                .where(Topic.category == front, Topic.sequence == seq)
            ).first()
        if row is None:
            return None
        topic, base_url, kind = row
        if base_url and base_url.startswith("/"):
            # A built-in mock department: it lives in this process, on the port it runs on
            # now (a stored absolute URL kept the port of the first start).
            base_url = None if self._self_url is None else self._self_url + base_url
        api_path = topic.data.get("api_path") or (f"/topics/{topic.slug}" if topic.slug else "")
        keys = [i.get("field") for i in topic.data.get("items", []) if i.get("is_key")]
        return Route(
            resource_code=topic.resource_code,
            provider=topic.provider,
            base_url=base_url,
            api_path=api_path,
            resource_type=topic.resource_type,
            status=topic.status,
            endpoint=(
                urljoin(base_url.rstrip("/") + "/", api_path.lstrip("/")) if base_url else ""
            ),
            key_item=keys[0] if len(keys) == 1 and isinstance(keys[0], str) else None,
            federated=kind in FEDERATED_KINDS and api_path.startswith("/topics/"),
            item_types={
                i["field"]: str(i.get("data_type") or "string")
                for i in topic.data.get("items", [])
                if isinstance(i.get("field"), str)
            },
            verifiable=frozenset(
                i["field"]
                for i in topic.data.get("items", [])
                if i.get("verifiable") and isinstance(i.get("field"), str)
            ),
        )


@dataclass(slots=True)
class _Call:
    """What is known about one call so far, for its audit entry."""

    request_id: str
    kind: str
    started: float
    #: the caller's own X-Request-Id, kept on its audit entry
    correlation_id: str | None = None
    consumer: str = "anonymous"
    provider: str | None = None
    resource_code: str | None = None
    items: list[str] | None = None
    case: str | None = None
    records: int = 0
    #: quota records reserved for this call while it is in flight
    held: int = 0
    #: a verification's outcomes by item (audited; never the values)
    verdicts: dict[str, dict[str, int]] | None = None


#: Largest lookup body read (1,000 keys of 64 characters take ~70 KB).
MAX_QUERY_BODY = 1024 * 1024


@dataclass(slots=True)
class Inbound:
    """What the broker reads of a call: its request id, three headers and the body.

    Built from the ASGI scope in one pass over the headers, so the lookup path needs no
    Starlette ``Request`` (whose header view is rebuilt and scanned per ``get``).
    """

    request_id: str
    authorization: str | None = None
    case: str | None = None
    body: bytes = b""
    correlation_id: str | None = None

    @classmethod
    def of_scope(cls, scope: Scope) -> Inbound:
        """Both ways in (the broker's dispatch and FastAPI's routes, behind the request-id
        middleware) have set the request id in the scope's state."""
        state = scope.get("state", {})
        inbound = cls(str(state.get("request_id", "")), correlation_id=state.get("correlation_id"))
        for name, value in scope["headers"]:
            if name == b"authorization":
                inbound.authorization = value.decode("latin-1")
            elif name == CASE_HEADER_RAW:
                inbound.case = value.decode("latin-1")
        return inbound

    @classmethod
    def of_headers(cls, headers: Iterable[tuple[bytes, bytes]], request_id: str) -> Inbound:
        """The broker's fast path: its own request id and one pass over the headers for the
        key, the case and the caller's ``X-Request-Id`` (kept as the correlation id, as
        :func:`exchange.errors.caller_correlation_id` reads it: the first one, if sane)."""
        inbound = cls(request_id)
        correlation: str | None = None
        for name, value in headers:
            if name == b"authorization":
                inbound.authorization = value.decode("latin-1")
            elif name == CASE_HEADER_RAW:
                inbound.case = value.decode("latin-1")
            elif name == b"x-request-id" and correlation is None:
                correlation = sane_correlation_id(value.decode("latin-1"))
        inbound.correlation_id = correlation or None
        return inbound

    async def read_body(self, receive: Receive) -> None:
        """The whole request body, refused past :data:`MAX_QUERY_BODY`."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise client_error("bad_input", "the client went away before its body arrived")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_QUERY_BODY:
                raise client_error(
                    "bad_input",
                    f"the body is larger than {MAX_QUERY_BODY:,} bytes: send at most "
                    f"{MAX_KEYS:,} keys per call",
                    413,
                    {"limit_bytes": MAX_QUERY_BODY},
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _filter(records: list[Any], granted: frozenset[str]) -> list[dict[str, Any]]:
    """Keep granted items only: an item outside the grant never leaves the broker."""
    out: list[dict[str, Any]] = []
    for rec in records:
        if not isinstance(rec, dict):
            raise TypeError("record is not an object")
        out.append(rec if rec.keys() <= granted else {k: v for k, v in rec.items() if k in granted})
    return out


EXPORT_BATCH = 1024 * 1024
#: outcome and status audited for an export the consumer abandoned (nginx's 499)
ABANDONED = "client.abandoned"
ABANDONED_STATUS = 499


def _filter_lines(
    provider: str, body: bytes | memoryview, wanted: tuple[str, ...]
) -> tuple[bytes, int]:
    """NDJSON lines → (the ``wanted`` items of each record as NDJSON, the record count).

    Raises :class:`ProviderBadResponse` unless every non-blank line holds JSON objects.
    Records are decoded into a struct that has only the wanted items as fields: the other
    items are skipped by the parser, never built, so nothing else can slip through
    whatever the provider sends, and an export costs ~1 µs a record instead of the ~7 µs
    of parsing whole records into dicts and rebuilding them (measured).
    """
    decoder, encoder = _codec(wanted)
    try:
        records = decoder.decode_lines(body)
    except msgspec.DecodeError as exc:
        raise ProviderBadResponse(
            provider, f"the provider's export is not NDJSON of objects: {exc}"
        ) from None
    return encoder.encode_lines(records), len(records)


def _checked_lines(
    provider: str, data: bytes, cut: int, wanted: tuple[str, ...]
) -> tuple[bytes, int]:
    """The NDJSON lines ``data[:cut]`` (``data[cut]`` is their last newline) → (the same
    lines, the record count) when every record holds only ``wanted`` items; otherwise (a
    provider that ignored the ``fields`` it was asked for, or overshared) what
    :func:`_filter_lines` makes of them.

    The check is a decode into a struct that forbids any other item, so a line passes
    only if no item outside the grant is in it; the bytes that passed are forwarded as
    they came (re-encoding them was half of the filter's cost).
    """
    body = memoryview(data)[:cut]
    try:
        count = len(_checker(wanted).decode_lines(body))
    except msgspec.DecodeError:  # ValidationError too: an item outside the grant
        return _filter_lines(provider, body, wanted)
    return data if cut + 1 == len(data) else data[: cut + 1], count


@functools.lru_cache(maxsize=256)
def _checker(wanted: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
    # Fields typed Raw: their values are checked as JSON and not built.
    struct = msgspec.defstruct(
        "GrantedOnly",
        [(f"f{i}", msgspec.Raw, msgspec.UNSET) for i in range(len(wanted))],
        rename={f"f{i}": name for i, name in enumerate(wanted)},
        forbid_unknown_fields=True,
    )
    return msgspec.json.Decoder(struct)


@functools.lru_cache(maxsize=256)
def _codec(wanted: tuple[str, ...]) -> tuple[msgspec.json.Decoder[Any], msgspec.json.Encoder]:
    # Fields are named f0, f1 … and renamed to the items: an item's name need not be a
    # Python identifier. UNSET fields (items a record lacks) are left out on encoding.
    struct = msgspec.defstruct(
        "GrantedRecord",
        [(f"f{i}", Any, msgspec.UNSET) for i in range(len(wanted))],
        rename={f"f{i}": name for i, name in enumerate(wanted)},
        omit_defaults=True,
    )
    return msgspec.json.Decoder(struct), msgspec.json.Encoder()


def _str_list(value: Any, field: str, *, limit: int) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise client_error(
            "bad_input", f"{field}: a list of non-empty strings", 422, {"field": field}
        )
    if not 1 <= len(value) <= limit:
        raise client_error(
            "bad_input",
            f"{field}: between 1 and {limit} values ({len(value)} given)",
            422,
            {"field": field, "count": len(value)},
        )
    return value


class Broker:
    """The exchange: one per app, held in ``ctx.broker``."""

    def __init__(
        self,
        *,
        db: Database,
        auth: Authenticator,
        clock: Clock,
        ctx: AppContext,
        upstream: Upstream,
        audit: AuditWriter,
        metrics: BrokerMetrics,
        self_url: str | None = None,
    ) -> None:
        self.auth = auth
        self.clock = clock
        self._ctx = ctx
        #: the authorization service (always running: built with the context)
        self.grants: GrantChecker = ctx.grants
        self.upstream = upstream
        self.lookups = LookupBatcher(upstream)
        self.audit = audit
        self.metrics = metrics
        self.routes = RouteCache(db, self_url=self_url)
        #: grant id → quota records reserved by calls in flight (see :meth:`_hold`)
        self._held: dict[int, int] = {}

    # -- shared steps -------------------------------------------------------------------

    def _begin(self, inbound: Inbound, kind: str) -> _Call:
        call = _Call(
            request_id=inbound.request_id,
            kind=kind,
            started=time.perf_counter(),
            correlation_id=inbound.correlation_id,
        )
        if inbound.case:
            # Headers are ASCII: a case named in Chinese arrives percent-encoded (UTF-8).
            # Decoded, it may hold a NUL (abc%00def), which PostgreSQL text cannot store:
            # escaped here, so the entry commits like any other.
            call.case = escape_text(unquote(inbound.case))[:MAX_CASE]
        try:
            principal = self.auth.authenticate(inbound.authorization)
        except NotAuthenticated as exc:
            raise client_error(exc.code, exc.message, 401) from None
        if principal.is_operator:
            raise client_error(
                "not_a_department",
                "the operator key cannot exchange data: call with a department's key",
            )
        call.consumer = principal.code
        return call

    async def _route(self, call: _Call, front: str, seq: str) -> Route:
        code = call.resource_code = f"{front}/{seq}"
        routes = self.routes
        # A cached route without a coroutine of its own (the common case).
        route: Route | None = routes.cached(code, _UNKNOWN)
        if route is _UNKNOWN:
            route = await routes.get(front, seq)
        if route is None:
            raise client_error("topic_not_found", f"no topic with resource code {front}/{seq}", 404)
        call.provider = route.provider
        if route.status == "retired":
            raise client_error(
                "topic_retired", f"topic {route.resource_code} is retired (废置)", 410
            )
        return route

    async def _check(self, call: _Call, items: list[str] | None, records: int) -> Decision:
        assert call.resource_code is not None
        grants = self.grants
        if grants.fresh:
            decision = grants.check(call.consumer, call.resource_code, items, records=records)
        else:
            # A poll or reload is due: it reads the database, which must not block the loop.
            decision = await run_in_threadpool(
                grants.check, call.consumer, call.resource_code, items, records=records
            )
        if not decision.allowed:
            raise client_error(
                decision.reason,
                f"{call.consumer} may not receive {call.resource_code}: {decision.reason}",
                DENIAL_STATUS.get(decision.reason, 403),
                {"reason": decision.reason, "grant_id": decision.grant_id},
            )
        return decision

    def _hold(self, call: _Call, decision: Decision, records: int) -> None:
        """Reserve ``records`` of a grant's daily quota for the call until it ends.

        The grant check counts records already delivered; calls still in flight are
        counted here, so concurrent calls cannot together exceed the quota (the check and
        the count after the provider answers used to let them).
        """
        gid = decision.grant_id
        if decision.remaining_quota is None or gid is None or records <= 0:
            return
        held = self._held.get(gid, 0)
        if held > decision.remaining_quota:
            raise client_error(
                "quota_exceeded",
                f"{call.consumer} may not receive {call.resource_code}: quota_exceeded "
                f"({held} records of today's quota are being fetched by calls in flight)",
                DENIAL_STATUS["quota_exceeded"],
                {"reason": "quota_exceeded", "grant_id": gid},
            )
        self._held[gid] = held + records
        call.held = records

    def _release(self, call: _Call, decision: Decision) -> None:
        gid = decision.grant_id
        if not call.held or gid is None:
            return
        left = self._held.get(gid, 0) - call.held
        call.held = 0
        if left > 0:
            self._held[gid] = left
        else:
            self._held.pop(gid, None)

    @staticmethod
    def _endpoint(route: Route) -> None:
        if not route.base_url:
            raise ProviderUnavailable(
                route.provider,
                f"provider {route.provider!r} has registered no API base URL",
                status_code=503,
            )

    async def _finish(self, call: _Call, outcome: str, status: int) -> None:
        """Commit the call's audit entry; returns only once it is durable."""
        try:
            entry = self._entry(call, outcome, status)
            if not self.audit.record_now(entry):
                await self.audit.record(entry)
        finally:
            self.metrics.observe(
                call.kind, outcome, time.perf_counter() - call.started, call.provider
            )

    def _abandoned(self, call: _Call) -> None:
        """Audit an export the consumer walked away from mid-stream.

        Runs while the stream's task is being torn down, where awaiting is no longer
        possible: the entry is handed to the writer (journaled at once in journal mode)
        without waiting; nobody is left to answer anyway.
        """
        try:
            self.audit.submit(self._entry(call, ABANDONED, ABANDONED_STATUS))
        except AuditUnavailable:
            log.error("abandoned export %s could not be audited", call.request_id)
        self.metrics.observe(
            call.kind, ABANDONED, time.perf_counter() - call.started, call.provider
        )

    def _entry(self, call: _Call, outcome: str, status: int) -> Entry:
        elapsed = time.perf_counter() - call.started
        return Entry(
            request_id=call.request_id,
            at=self.clock.now(),
            kind=call.kind,
            consumer=call.consumer,
            provider=call.provider,
            resource_code=call.resource_code,
            items=call.items or [],
            case=call.case,
            records=call.records,
            outcome=outcome,
            status=status,
            latency_us=int(elapsed * 1_000_000),
            correlation_id=call.correlation_id,
            verdicts=call.verdicts,
        )

    async def _fail(self, call: _Call, exc: Exception) -> ExchangeError:
        """Audit a failed call and return the error to raise."""
        error = exc if isinstance(exc, ExchangeError) else None
        if error is None:
            log.exception("broker failure on %s", call.request_id, exc_info=exc)
            error = broker_error("internal", f"internal broker error: {type(exc).__name__}")
        try:
            await self._finish(call, error.code, error.status_code)
        except AuditUnavailable:
            log.error("denial %s could not be audited", call.request_id)
        return error

    # -- query ----------------------------------------------------------------------------

    async def query(self, inbound: Inbound, front: str, seq: str) -> bytes:
        """Single or batch lookup; see the router for the contract. Returns the JSON
        answer; failures raise :class:`ExchangeError` (audited)."""
        call: _Call | None = None
        try:
            call = self._begin(inbound, "query")
            try:
                body = orjson.loads(inbound.body)
            except orjson.JSONDecodeError:
                raise client_error("bad_input", "the body is not valid JSON", 400) from None
            if not isinstance(body, dict) or set(body) - {"keys", "items"}:
                raise client_error(
                    "bad_input", 'the body is {"keys": [...], "items": [...] (optional)}', 422
                )
            keys = _str_list(body.get("keys"), "keys", limit=MAX_KEYS)
            wanted = body.get("items")
            items = None if wanted is None else _str_list(wanted, "items", limit=500)
            call.items = items
            route = await self._route(call, front, seq)
            decision = await self._check(call, items, len(keys))
            call.items = sorted(decision.items)
            self._endpoint(route)
            self._hold(call, decision, len(keys))
            try:
                federation = self._ctx.federation
                if route.federated and federation is not None:
                    # The peer platform is the provider: it is told who asks, under which
                    # grant and for which items, and checks its own side of the chain.
                    answer = await federation.forward(
                        request_id=call.request_id,
                        consumer=call.consumer,
                        grant_id=decision.grant_id,
                        items=call.items,
                        case=call.case,
                        provider=route.provider,
                        api_path=route.api_path,
                        keys=keys,
                    )
                else:
                    answer = await self.lookups.lookup(
                        route.provider, route.url("/query"), keys, call.request_id, route.key_item
                    )
            finally:
                self._release(call, decision)
            try:
                records = _filter(answer.records, decision.items)
            except TypeError as exc:
                raise ProviderBadResponse(
                    route.provider,
                    f"provider {route.provider!r} sent a malformed answer: {exc}",
                ) from None
            not_found, invalid = answer.not_found, answer.invalid
            call.records = len(records)
            if records and decision.grant_id is not None:
                self.grants.consume(decision.grant_id, len(records))
            out: dict[str, Any] = {
                "request_id": call.request_id,
                "records": records,
                "not_found": not_found,
            }
            if invalid:
                out["invalid"] = invalid
            payload = orjson.dumps(out)
            await self._finish(call, "ok", 200)
            self.metrics.delivered(route.provider, len(records))
            return payload
        except Exception as exc:
            if call is None:
                call = _Call(
                    inbound.request_id, "query", time.perf_counter(), inbound.correlation_id
                )
            raise await self._fail(call, exc) from None

    # -- verify (核验) ----------------------------------------------------------------------

    async def verify(self, inbound: Inbound, front: str, seq: str) -> bytes:
        """Verification without disclosure; see :mod:`exchange.broker.verification`."""
        from exchange.broker.verification import verify

        return await verify(self, inbound, front, seq)

    # -- export ---------------------------------------------------------------------------

    async def export(self, request: Request, front: str, seq: str) -> Response:
        """Bulk export of a table-type topic, streamed as NDJSON."""
        call: _Call | None = None
        decision: Decision | None = None
        inbound = Inbound.of_scope(request.scope)
        try:
            call = self._begin(inbound, "export")
            params = request.query_params
            try:
                offset = int(params.get("offset", "0"))
                limit = int(params.get("limit", str(DEFAULT_EXPORT)))
            except ValueError:
                raise client_error("bad_input", "offset and limit are integers", 422) from None
            if offset < 0 or not 1 <= limit <= MAX_EXPORT:
                raise client_error("bad_input", f"offset ≥ 0 and 1 ≤ limit ≤ {MAX_EXPORT}", 422)
            items = None
            if params.get("items"):
                items = [i for i in params["items"].split(",") if i]
            call.items = items
            route = await self._route(call, front, seq)
            if route.resource_type != "table":
                raise client_error(
                    "not_exportable",
                    f"{route.resource_code} is an {route.resource_type} topic; "
                    "only table topics are exported in bulk",
                    409,
                )
            decision = await self._check(call, items, 1)
            call.items = sorted(decision.items)
            if decision.remaining_quota is not None and decision.grant_id is not None:
                # The check reserved one record; the rest of today's quota, less what
                # exports and lookups in flight hold, caps the export.
                limit = min(
                    limit, decision.remaining_quota + 1 - self._held.get(decision.grant_id, 0)
                )
                self._hold(call, decision, max(limit, 1))
            federation = self._ctx.federation
            if route.federated and federation is not None:
                # The peer platform's topic: exported from what it provided in bulk and
                # this platform stored (回流), filtered and audited like any export.
                upstream = federation.stored_export(
                    route.resource_code, route.key_item, offset, limit
                )
            else:
                self._endpoint(route)
                # The granted items go to the department (in the signed path): it sends
                # only those, and the relay checks each record instead of rebuilding it.
                upstream = self.upstream.stream(
                    route.provider,
                    route.url("/export"),
                    {
                        "offset": str(offset),
                        "limit": str(limit),
                        "fields": ",".join(call.items),
                    },
                    call.request_id,
                )
            resp = await upstream.__aenter__()
        except Exception as exc:
            if call is None:
                call = _Call(
                    inbound.request_id, "export", time.perf_counter(), inbound.correlation_id
                )
            elif decision is not None:
                self._release(call, decision)
            raise await self._fail(call, exc) from None
        headers = {
            k: resp.headers[k] for k in ("X-Total-Rows", "X-Next-Offset") if k in resp.headers
        }
        return StreamingResponse(
            self._relay(call, route, decision, resp, upstream),
            media_type="application/x-ndjson",
            headers=headers,
        )

    async def _relay(
        self,
        call: _Call,
        route: Route,
        decision: Decision,
        resp: aiohttp.ClientResponse,
        upstream: Any,
    ) -> AsyncGenerator[bytes, None]:
        """Filter the provider's NDJSON; end the body only after the audit commit.

        A stream cannot change its status once started: a provider failure mid-stream (or
        an audit failure at the end) aborts the response, so the consumer sees a truncated
        transfer, never a complete-looking partial export.
        """
        wanted = tuple(sorted(decision.items))
        carry = b""
        outcome, status = "ok", 200
        error: BaseException | None = None
        try:
            pending: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_any():
                pending.append(chunk)
                size += len(chunk)
                if size < EXPORT_BATCH:
                    continue  # filter in large batches: the per-batch cost is fixed
                # One copy per batch: join once, hand the parser a view, keep only the
                # unfinished line (copies of ~1 MB batches were a third of export time).
                data = b"".join([carry, *pending])
                pending, size = [], 0
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1 :]
                out, count = _checked_lines(route.provider, data, cut, wanted)
                call.records += count
                yield out
            if pending:
                data = b"".join([carry, *pending])
                cut = data.rfind(b"\n")
                carry = data[cut + 1 :]
                if cut >= 0:
                    out, count = _checked_lines(route.provider, data, cut, wanted)
                    call.records += count
                    yield out
            if carry.strip():
                raise ProviderBadResponse(
                    route.provider, "the provider's export ended in the middle of a record"
                )
        except ProviderBadResponse as exc:
            outcome, status, error = exc.code, exc.status_code, exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            outcome, status = "provider.unavailable", 502
            if isinstance(exc, TimeoutError):
                outcome, status = "provider.timeout", 504
            error = exc
        except (GeneratorExit, asyncio.CancelledError) as exc:
            # The consumer disconnected (the server closes or cancels the body iterator):
            # count what was sent against the quota and audit it, then let teardown go on.
            error = exc
            if call.records and decision.grant_id is not None:
                self.grants.consume(decision.grant_id, call.records)
            self.metrics.delivered(route.provider, call.records)
            self._release(call, decision)
            self._abandoned(call)
            raise
        finally:
            await upstream.__aexit__(
                type(error) if error else None, error, error.__traceback__ if error else None
            )
        if call.records and decision.grant_id is not None:
            self.grants.consume(decision.grant_id, call.records)
        self._release(call, decision)
        self.metrics.delivered(route.provider, call.records)
        await self._finish(call, outcome, status)
        if error is not None:
            raise error


def _path_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)


def build_broker(ctx: AppContext, audit: AuditWriter) -> Broker:
    """The broker of one app, with its upstream client, metrics and route cache, its
    lookups audited by ``audit``.

    ``ctx.broker_config`` overrides timeouts, retries and breaker settings, e.g. in tests.
    Provider calls are signed with credentials derived from ``ctx.provider_secret``; the
    settings' ``upstream_*`` add mTLS.
    """
    config = ctx.broker_config or UpstreamConfig()
    settings = ctx.settings
    if settings.upstream_client_cert or settings.upstream_ca:
        config = dataclasses.replace(
            config,
            client_cert=_path_or_none(settings.upstream_client_cert),
            client_key=_path_or_none(settings.upstream_client_key),
            ca_file=_path_or_none(settings.upstream_ca),
        )
    upstream = Upstream(
        config, credentials=functools.partial(derive_provider_secret, ctx.provider_secret)
    )
    metrics = BrokerMetrics()
    broker = Broker(
        db=ctx.db,
        auth=ctx.auth,
        clock=ctx.clock,
        ctx=ctx,
        upstream=upstream,
        audit=audit,
        metrics=metrics,
        self_url=(settings.builtin_departments_url or settings.self_url)
        if settings.mock_departments
        else None,
    )
    metrics.watch(audit, upstream, broker.lookups)
    return broker
