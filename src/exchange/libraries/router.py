"""``/api/v1/libraries``: lookups (as documented; :mod:`exchange.libraries.dispatch` serves
them ahead of FastAPI), gathering progress and control, conflicts."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from starlette.responses import Response

from exchange.broker.service import Broker, Inbound
from exchange.context import AppContext, Caller, Ctx, Operator, present
from exchange.errors import Conflict
from exchange.libraries.dispatch import ABSENT, library_service, lookup
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
from exchange.libraries.service import LibraryService

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/libraries", tags=["libraries"])

_JSON = "application/json"
_LOOKUP_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {_JSON: {"schema": LookupRequest.model_json_schema()}},
    }
}


async def get_library_service(ctx: Ctx) -> LibraryService:
    # async: it only reads memory, so FastAPI runs it on the loop, not the threadpool.
    return library_service(ctx)


async def get_gatherer(ctx: Ctx) -> Gatherer:
    return present(ctx.libraries, ABSENT)


#: The libraries' lookups and conflicts, or 503 ``unavailable`` where they do not run.
TheLibraries = Annotated[LibraryService, Depends(get_library_service)]
#: The libraries' gathering, likewise.
TheGatherer = Annotated[Gatherer, Depends(get_gatherer)]


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
        except Exception:
            # A source's own failure ends that source in state "error"; anything else (the
            # database refusing a write) ends the pass with every source at its last
            # written watermark, where the next pass resumes. Logged here: a background
            # task's exception is otherwise reported only when the task is collected.
            log.exception(
                "libraries: the gathering pass failed; the next pass resumes each source "
                "from its watermark"
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


def install(ctx: AppContext, broker: Broker) -> tuple[Gatherer, LibraryService]:
    """The libraries' runtime parts for an app that runs the broker: the gatherer
    (``ctx.libraries``) and the lookup service (``ctx.library_service``)."""
    gatherer = Gatherer(ctx, broker)
    svc = LibraryService(ctx)
    broker.metrics.registry.register(LibraryCollector(svc, gatherer))
    return gatherer, svc


__all__ = ["install", "router"]
