"""``/api/v1/libraries``: lookups, gathering progress and control, conflicts."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from exchange.broker.service import MAX_QUERY_BODY, Broker, Inbound
from exchange.context import AppContext, Caller, Ctx, Operator, present
from exchange.errors import (
    CORRELATION_ID_HEADER,
    REQUEST_ID_HEADER,
    Conflict,
    ExchangeError,
    ValidationFailed,
    error_body,
)
from exchange.libraries.gather import Gatherer, PassReport
from exchange.libraries.metrics import LibraryCollector
from exchange.libraries.schemas import (
    ConflictOut,
    ConflictPage,
    GatherRequest,
    GatherStatus,
    LibraryCode,
    LibraryOut,
    LookupAnswer,
    LookupRequest,
    PassOut,
    ResolveRequest,
)
from exchange.libraries.service import MAX_KEYS, LibraryService
from exchange.limits import ClientGone, RequestLimits
from exchange.serving import LeanAnswer

router = APIRouter(prefix="/api/v1/libraries", tags=["libraries"])

_JSON = "application/json"
_LOOKUP_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {_JSON: {"schema": LookupRequest.model_json_schema()}},
    }
}


_ABSENT = "the libraries do not run in this part"


def _service(ctx: AppContext) -> LibraryService:
    return present(ctx.library_service, _ABSENT)


async def get_library_service(ctx: Ctx) -> LibraryService:
    # async: it only reads memory, so FastAPI runs it on the loop, not the threadpool.
    return _service(ctx)


async def get_gatherer(ctx: Ctx) -> Gatherer:
    return present(ctx.libraries, _ABSENT)


#: The libraries' lookups and conflicts, or 503 ``unavailable`` where they do not run.
TheLibraries = Annotated[LibraryService, Depends(get_library_service)]
#: The libraries' gathering, likewise.
TheGatherer = Annotated[Gatherer, Depends(get_gatherer)]


_KEY = re.compile(r"[0-9A-Za-z]{1,64}")


def _keys_of(body: bytes) -> list[str]:
    """The keys of a ``{"keys": [...]}`` body. The common, well-formed body is checked
    here (orjson and a regular expression: a fifth of pydantic's cost per call); anything
    else goes to :class:`LookupRequest`, whose errors the answer details."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and len(data) == 1:
        keys = data.get("keys")
        if (
            isinstance(keys, list)
            and 1 <= len(keys) <= MAX_KEYS
            and all(isinstance(k, str) and _KEY.fullmatch(k) for k in keys)
        ):
            return keys
    try:
        return LookupRequest.model_validate_json(body).keys
    except ValidationError as exc:
        raise ValidationFailed(
            'the body is {"keys": [...]}: 1 to 100 ID numbers or credit codes',
            field="keys",
            code="bad_input",
            errors=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()],
        ) from None


async def lookup(ctx: AppContext, inbound: Inbound, library: str, keys: list[str] | None) -> bytes:
    """Authenticate, assemble, audit; the JSON answer (errors raised, audited too)."""
    # Served ahead of FastAPI (LibraryDispatch): no dependencies here.
    svc = _service(ctx)
    started = time.perf_counter()
    consumer = "anonymous"
    answer: dict[str, Any] | None = None
    try:
        principal = ctx.auth.authenticate(inbound.authorization)
        consumer = principal.code
        if keys is None:
            keys = _keys_of(inbound.body)
        answer = svc.lookup(principal, library, keys)
    except ExchangeError as exc:
        await svc.audit(
            svc.audit_entry(
                inbound.request_id, consumer, library, None, exc.code, exc.status_code, started
            )
        )
        raise
    answer = {"request_id": inbound.request_id, **answer}
    await svc.audit(
        svc.audit_entry(inbound.request_id, consumer, library, answer, "ok", 200, started)
    )
    return orjson.dumps(answer)


@router.get("", response_model=list[LibraryOut])
def libraries(_caller: Caller, svc: TheLibraries) -> list[dict[str, Any]]:
    """Both libraries (人口基础信息库, 法人基础信息库): their sources with each one's
    gathering state, watermark and records gathered, the totals, and conflicts by kind."""
    return svc.overview()


@router.post(
    "/{library}/query",
    response_model=LookupAnswer,
    openapi_extra=_LOOKUP_BODY,
    responses={401: {}, 403: {}, 404: {}, 422: {}},
)
async def query(request: Request, library: LibraryCode) -> Response:
    """Assembled records of up to 100 people (ID numbers) or enterprises (credit codes).

    Each element comes with its source department and topic (一数一源) and when that
    source's record was last gathered. Unconditional elements are served to every
    department; a conditional one only with a current grant on its source topic for that
    item (quota counted there). ``withheld`` names the elements left out. Every call is
    audited (kind ``library``). Keys the library does not hold are in ``not_found``,
    malformed ones in ``invalid``. Department keys only (403 ``not_a_department``).
    """
    inbound = Inbound.of_scope(request.scope)
    await inbound.read_body(request.receive)
    payload = await lookup(request.app.state.ctx, inbound, library.value, None)
    return Response(payload, media_type=_JSON)


@router.get(
    "/{library}/records/{key}",
    response_model=LookupAnswer,
    responses={401: {}, 403: {}, 404: {}},
)
async def record(
    request: Request,
    library: LibraryCode,
    key: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")],
) -> Response:
    """One person or enterprise: the same answer as ``query`` with one key."""
    inbound = Inbound.of_scope(request.scope)
    payload = await lookup(request.app.state.ctx, inbound, library.value, [key])
    return Response(payload, media_type=_JSON)


def _pass_out(report: PassReport | None) -> PassOut | None:
    if report is None:
        return None
    # Read by attribute (``total`` is the report's property); validation copies the dicts,
    # so the answer does not change under a pass still running.
    return PassOut.model_validate(report, from_attributes=True)


def _status(gatherer: Gatherer, svc: LibraryService) -> GatherStatus:
    return GatherStatus(
        running=gatherer.running,
        current=_pass_out(gatherer.current),
        last=_pass_out(gatherer.last),
        libraries=[LibraryOut.model_validate(lib) for lib in svc.overview()],
    )


@router.get("/gather", response_model=GatherStatus)
def gather_status(_op: Operator, gatherer: TheGatherer, svc: TheLibraries) -> GatherStatus:
    """Gathering progress (operator): the pass under way, the last one, every source."""
    return _status(gatherer, svc)


@router.post("/gather", response_model=GatherStatus, status_code=status.HTTP_202_ACCEPTED)
async def gather(
    body: GatherRequest, _op: Operator, gatherer: TheGatherer, svc: TheLibraries
) -> GatherStatus:
    """Start a gathering pass (operator): incremental from each source's watermark, or
    ``full`` from the start. It runs in the background; poll ``GET .../gather``. A source
    the library unit holds no grant for is applied for and skipped until granted.
    409 ``gathering_running`` while a pass is under way."""
    if gatherer.running:
        raise Conflict("a gathering pass is already running", code="gathering_running")
    started = asyncio.Event()

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        started.set()
        try:
            await gatherer.gather(
                None if body.library is None else body.library.value, full=body.full
            )
        finally:
            svc.invalidate()

    task = asyncio.get_running_loop().create_task(run())
    gatherer.tasks.add(task)
    task.add_done_callback(gatherer.tasks.discard)
    await started.wait()
    await asyncio.sleep(0)  # let the pass take its lock before answering
    return _status(gatherer, svc)


@router.get("/{library}/conflicts", response_model=ConflictPage)
def conflicts(
    caller: Caller,
    svc: TheLibraries,
    library: LibraryCode,
    status_: Annotated[str | None, Query(alias="status", pattern="^(open|resolved)$")] = None,
    kind: Annotated[str | None, Query(pattern="^(mismatch|deceased_insured)$")] = None,
    subject: Annotated[str | None, Query(max_length=64, pattern=r"^[0-9A-Za-z]+$")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ConflictPage:
    """Conflicts the quality check found (校核纠错): the operator sees all, a department
    those where it is one of the two sources."""
    items, total = svc.conflicts(
        caller,
        library.value,
        status=status_,
        kind=kind,
        subject=subject,
        offset=offset,
        limit=limit,
    )
    return ConflictPage(
        items=[ConflictOut.model_validate(c) for c in items],
        total=total,
        offset=offset,
        limit=limit,
    )


@router.post("/conflicts/{conflict_id}/resolve", response_model=ConflictOut)
async def resolve(
    request: Request,
    conflict_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ResolveRequest,
    caller: Caller,
    svc: TheLibraries,
) -> ConflictOut:
    """Close a conflict (the operator, or either of its two source departments), saying
    how: ``corrected``, ``source_confirmed`` or ``dismissed``. 404 for a conflict that is
    not the caller's; 409 ``conflict_closed`` when already resolved. Audited."""
    started = time.perf_counter()
    row = svc.resolve(caller, conflict_id, body.resolution.value, body.note)
    rid = str(request.scope.get("state", {}).get("request_id", ""))
    entry = svc.audit_entry(rid, caller.code, row.library, None, "resolved", 200, started)
    entry.kind = "library.resolve"
    entry.items = [row.element]
    entry.records = 1
    await svc.audit(entry)
    return ConflictOut.model_validate(row)


_PATH = re.compile(r"^/api/v1/libraries/(person|enterprise)/(query|records/([0-9A-Za-z]{1,64}))$")
_RID = REQUEST_ID_HEADER.lower().encode()
_CID = CORRELATION_ID_HEADER.lower().encode()
_JSON_HEADER = (b"content-type", _JSON.encode())


def _too_many_keys() -> ExchangeError:
    return ValidationFailed(
        f"the body is larger than {MAX_QUERY_BODY:,} bytes: send at most {MAX_KEYS} keys",
        field="keys",
        code="bad_input",
    )


class LibraryDispatch:
    """Serve the two lookup endpoints straight from the ASGI scope, ahead of FastAPI (as
    :class:`exchange.broker.router.ExchangeDispatch` does for the broker): routing and
    dependency solving would cost more than the lookup. The app's front
    (:class:`exchange.front.Front`) asks :meth:`match` and hands matching calls to
    :meth:`serve` after the request limits and the freshness check; the body is read under
    the limits in the request's own task (no wrapped ``receive``). Anything else,
    including a malformed path or method, goes on to FastAPI, which documents both
    routes."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._prefix = uuid.uuid4().hex[:20]
        self._counter = itertools.count(1)
        #: lookups answered on the lean path (the tests tell the two paths apart by it)
        self.lean_served = 0

    @staticmethod
    def match(scope: Scope) -> tuple[str, str | None] | None:
        """(library, key or None for a query) when this serves the request."""
        path: str = scope["path"]
        if not path.startswith("/api/v1/libraries/"):
            return None
        match = _PATH.match(path)
        if match is None:
            return None
        library, action, key = match.groups()
        if scope["method"] != ("POST" if action == "query" else "GET"):
            return None
        return library, key

    def request_id(self) -> str:
        return f"{self._prefix}{next(self._counter):012x}"

    async def serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        target: tuple[str, str | None],
        limits: RequestLimits,
    ) -> None:
        library, key = target
        rid = self.request_id()
        inbound = Inbound.of_headers(scope["headers"], rid)
        if key is None:
            try:
                inbound.body = await limits.read_body(receive, MAX_QUERY_BODY, _too_many_keys)
            except ClientGone:
                error = ValidationFailed(
                    "the client went away before its body arrived", code="bad_input"
                )
                status_code, headers, payload = _error(rid, inbound.correlation_id, error)
            except ExchangeError as exc:
                status_code, headers, payload = _error(rid, inbound.correlation_id, exc)
            else:
                status_code, headers, payload = await self._answer(inbound, library, key)
        else:
            status_code, headers, payload = await self._answer(inbound, library, key)
        await send({"type": "http.response.start", "status": status_code, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def lean(
        self,
        target: tuple[str, str | None],
        admits: Callable[[Scope, int], bool],
        scope: Scope,
        body: bytes,
    ) -> LeanAnswer | None:
        """A lookup whose body has arrived whole, answered as bytes on the HTTP protocol's
        lean path (:class:`exchange.serving.CoalescingProtocol`, as the broker's lookups
        are): the same answers, request ids, errors and audit as :meth:`serve`, without
        the ASGI messages, which cost about as much as the lookup itself. None when the
        front's rules (``admits``) refuse the request: the ordinary path words that."""
        if not admits(scope, len(body)):
            return None
        rid = self.request_id()
        inbound = Inbound.of_headers(scope["headers"], rid)
        library, key = target
        if key is None:
            if len(body) > MAX_QUERY_BODY:
                return _error(rid, inbound.correlation_id, _too_many_keys())
            inbound.body = body
        self.lean_served += 1
        return await self._answer(inbound, library, key)

    async def _answer(self, inbound: Inbound, library: str, key: str | None) -> LeanAnswer:
        """A lookup's answer with its body read: status, headers, body."""
        rid = inbound.request_id
        try:
            payload = await lookup(self.ctx, inbound, library, None if key is None else [key])
        except ExchangeError as exc:
            return _error(rid, inbound.correlation_id, exc)
        headers = [_JSON_HEADER, (b"content-length", b"%d" % len(payload)), (_RID, rid.encode())]
        if inbound.correlation_id:
            headers.append((_CID, inbound.correlation_id.encode()))
        return 200, headers, payload


def _error(rid: str, correlation: str | None, exc: ExchangeError) -> LeanAnswer:
    """An error answer in the one model, as status, headers and body."""
    body = orjson.dumps(error_body(exc.code, exc.message, rid, exc.detail))
    headers = [_JSON_HEADER, (b"content-length", b"%d" % len(body)), (_RID, rid.encode())]
    if correlation:
        headers.append((_CID, correlation.encode()))
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    return exc.status_code, headers, body


def install(ctx: AppContext, broker: Broker) -> tuple[Gatherer, LibraryService]:
    """The libraries' runtime parts for an app that runs the broker: the gatherer
    (``ctx.libraries``) and the lookup service (``ctx.library_service``)."""
    gatherer = Gatherer(ctx, broker)
    svc = LibraryService(ctx)
    broker.metrics.registry.register(LibraryCollector(svc, gatherer))
    return gatherer, svc


__all__ = ["LibraryDispatch", "install", "router"]
