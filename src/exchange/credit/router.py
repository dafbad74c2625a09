"""``/api/v1/credit``: double-publicity submissions, the public search, statistics, the
red and black list queries, and the feed the provincial platform reads upward.

Every write and every list query is audited (hash-chained, like the broker's calls): the
submitting unit as the caller, and for list queries the list topic and the number of codes
asked, denials included.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from exchange.audit.deps import audit_writer
from exchange.audit.entry import Entry
from exchange.authn import Principal
from exchange.authz.router import Calendar
from exchange.catalog.models import Topic
from exchange.context import AppContext, Caller, Ctx, DbSession
from exchange.credit import ingest, lists, service
from exchange.credit.schemas import (
    CREDIT_CODE,
    IngestAnswer,
    ListAnswer,
    ListBatch,
    ListQuery,
    NoticeAnswer,
    NoticeBatch,
    PublicPage,
    RecordKind,
    StatsOut,
    SubmitAnswer,
    SubmitBatch,
    SubmittedPage,
    SubmittedRecord,
)
from exchange.departments.city import City
from exchange.errors import (
    ExchangeError,
    NotPermitted,
    Unavailable,
    ValidationFailed,
    request_id_of,
)
from exchange.members.models import Department

router = APIRouter(prefix="/api/v1/credit", tags=["credit"])

#: The catalog topic a list query needs a grant on (``catalog/topics/zsj.yaml``).
LISTS_SLUG = "credit-lists"
PROVIDER = "zsj"
#: The unit kind that reads the feed upward (the provincial platform).
PROVINCIAL = "provincial"

Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]
CodePath = Annotated[
    str, Path(pattern=CREDIT_CODE, description="统一社会信用代码", examples=["91110108551385082Q"])
]
T = TypeVar("T")


def install(ctx: AppContext, *, preload: bool = True) -> lists.Ratings:
    """The tax ratings behind the red list (``ctx.credit_ratings``), from the configured
    synthetic city, rated in a background thread from start-up (a code not rated yet is
    rated when asked)."""
    if ctx.credit_ratings is not None:
        return ctx.credit_ratings
    settings = ctx.settings
    ratings = ctx.credit_ratings = lists.Ratings(
        City(seed=settings.seed, population=settings.population, enterprises=settings.enterprises)
    )
    if preload:
        threading.Thread(target=ratings.preload, name="credit-ratings", daemon=True).start()
    return ratings


async def get_ratings(ctx: Ctx) -> lists.Ratings:
    return install(ctx, preload=False)


async def get_deadlines(calendar: Calendar) -> service.Deadlines:
    return service.Deadlines(calendar)


TaxRatings = Annotated[lists.Ratings, Depends(get_ratings)]
Deadlines = Annotated[service.Deadlines, Depends(get_deadlines)]


async def _audit(
    request: Request,
    ctx: AppContext,
    caller: Principal,
    *,
    kind: str,
    started: float,
    records: int,
    outcome: str = "ok",
    status_code: int = 200,
    resource_code: str | None = None,
    items: list[str] | None = None,
) -> None:
    await audit_writer(ctx).record(
        Entry(
            request_id=request_id_of(request),
            at=ctx.clock.now(),
            kind=kind,
            consumer=caller.code,
            provider=PROVIDER if resource_code else None,
            resource_code=resource_code,
            items=items or [],
            case=None,
            records=records,
            outcome=outcome[:48],
            status=status_code,
            latency_us=min(int((time.perf_counter() - started) * 1e6), 2**31 - 1),
            correlation_id=getattr(request.state, "correlation_id", None),
        )
    )


async def _audited(
    request: Request,
    ctx: AppContext,
    caller: Principal,
    kind: str,
    work: Callable[[], T],
    count: Callable[[T], int],
) -> T:
    """Run ``work`` off the loop and audit its outcome, a refusal included."""
    started = time.perf_counter()
    try:
        result = await run_in_threadpool(work)
    except ExchangeError as exc:
        await _audit(
            request,
            ctx,
            caller,
            kind=kind,
            started=started,
            records=0,
            outcome=exc.code,
            status_code=exc.status_code,
        )
        raise
    await _audit(request, ctx, caller, kind=kind, started=started, records=count(result))
    return result


def _department(caller: Principal) -> str:
    if caller.is_operator:
        raise NotPermitted(
            "the operator takes no administrative decisions: call with a department's key",
            code="not_a_department",
        )
    return caller.code


@router.post("/records", response_model=SubmitAnswer)
async def submit_records(
    body: SubmitBatch, request: Request, caller: Caller, ctx: Ctx, deadlines: Deadlines
) -> SubmitAnswer:
    """Publish administrative permit and penalty decisions of the calling unit (双公示报送),
    up to 1,000 at once.

    Each is due by the end (Beijing) of the 7th working day after its decision date; one
    published later is counted ``late`` against the unit. A decision number the unit
    already published answers ``duplicate`` (a retried batch is safe).

    Errors: 403 ``not_a_department``, ``not_an_authority`` (a bank, utility or the
    provincial platform); 422 ``invalid_record`` (check characters of a credit code or ID
    number, a decision date after today, a decision listed twice; ``detail.errors`` names
    each); 503 ``calendar_not_covered`` (a year no holiday schedule covers).
    """
    unit = _department(caller)
    now = ctx.clock.now()

    def work() -> SubmitAnswer:
        with ctx.db.session() as session:
            service.require_authority(session, unit)
            return service.submit(session, unit, body, now=now, deadlines=deadlines)

    return await _audited(request, ctx, caller, "credit_submit", work, lambda a: a.published)


@router.post("/notices", response_model=NoticeAnswer)
async def announce_decisions(
    body: NoticeBatch, request: Request, caller: Caller, ctx: Ctx, deadlines: Deadlines
) -> NoticeAnswer:
    """Announce decisions the unit made (its business system's list of what must be
    published, 应公示清单). An announced decision not published by its deadline counts as
    ``missing`` in the statistics; publishing it later still counts it late."""
    unit = _department(caller)
    now = ctx.clock.now()

    def work() -> NoticeAnswer:
        with ctx.db.session() as session:
            service.require_authority(session, unit)
            return service.announce(session, unit, body, now=now, deadlines=deadlines)

    return await _audited(request, ctx, caller, "credit_notice", work, lambda a: a.recorded)


@router.get("/records", response_model=PublicPage)
def search_records(
    session: DbSession,
    _caller: Caller,
    ctx: Ctx,
    credit_code: Annotated[str | None, Query(pattern=CREDIT_CODE)] = None,
    name: Annotated[
        str | None, Query(min_length=2, max_length=100, pattern=r"^[^\x00%_]*$")
    ] = None,
    kind: RecordKind | None = None,
    offset: Offset = 0,
    limit: Limit = 20,
) -> PublicPage:
    """Search published decisions by credit code or party name (part of it), as the public
    portal shows them: ID numbers masked, penalties past their publicity period left out.
    One of ``credit_code`` and ``name`` is required (422 ``query_required``)."""
    if credit_code is None and name is None:
        raise ValidationFailed(
            "give credit_code or name", field="credit_code", code="query_required"
        )
    return service.search_public(
        session,
        today=ctx.clock.today(),
        credit_code=credit_code,
        name=name,
        kind=kind,
        offset=offset,
        limit=limit,
    )


@router.get("/submissions", response_model=SubmittedPage)
def list_submissions(
    session: DbSession,
    caller: Caller,
    unit: Annotated[
        str | None, Query(pattern=r"^[a-z][a-z0-9_-]{1,31}$", description="operator: one unit")
    ] = None,
    late: bool | None = None,
    kind: RecordKind | None = None,
    offset: Offset = 0,
    limit: Limit = 20,
) -> SubmittedPage:
    """The calling unit's own submissions, unmasked, with deadline and lateness (the
    operator: every unit's, or ``unit``'s). Another unit's: 403 ``not_your_department``."""
    if caller.is_operator:
        scope = unit
    else:
        if unit is not None:
            caller.require(unit)
        scope = caller.code
    return service.list_submitted(
        session, unit=scope, late=late, kind=kind, offset=offset, limit=limit
    )


@router.get("/stats", response_model=StatsOut)
def publication_stats(session: DbSession, caller: Caller, ctx: Ctx) -> StatsOut:
    """Publication rate per unit and overall: published, late, missing (announced, past
    due, unpublished), pending; the profile's starting counts included. A department sees
    its own row and the overall total; the operator every unit's."""
    rows, total, submitting = service.stats(
        session, now=ctx.clock.now(), unit=None if caller.is_operator else caller.code
    )
    return StatsOut(units=rows, total=total, submitting_units=submitting)


def _lists_topic(session: DbSession) -> str:
    code = session.scalar(select(Topic.resource_code).where(Topic.slug == LISTS_SLUG))
    if code is None:
        raise Unavailable(
            f"the catalog has no topic {LISTS_SLUG!r} to grant list queries on",
            code="credit_lists_unavailable",
        )
    return code


async def _lists(
    request: Request, ctx: AppContext, caller: Principal, codes: list[str]
) -> dict[str, Any]:
    """The list answer for ``codes`` as JSON-ready dicts (see :mod:`exchange.credit.lists`
    for why not models), after the grant check; audited either way."""
    started = time.perf_counter()
    unit = _department(caller)

    def topic() -> str:
        with ctx.db.sessions() as session:
            return _lists_topic(session)

    resource_code = ctx.credit_lists_topic
    if resource_code is None:
        resource_code = ctx.credit_lists_topic = await run_in_threadpool(topic)
    grants = ctx.grants
    decision = grants.check(unit, resource_code, None, records=len(codes))
    if not decision.allowed:
        await _audit(
            request, ctx, caller, kind="credit_lists", started=started, records=0,
            outcome=decision.reason, status_code=403, resource_code=resource_code,
        )  # fmt: skip
        raise NotPermitted(
            f"no current grant on the credit lists topic {resource_code}: {decision.reason}",
            code=decision.reason,
            detail={"topic": resource_code},
        )
    today = ctx.clock.today()
    ratings = install(ctx, preload=False)

    def work() -> list[dict[str, Any]]:
        with ctx.db.sessions() as session:
            return lists.query(session, codes, today=today, ratings=ratings)

    results = await run_in_threadpool(work)
    if decision.grant_id is not None:
        grants.consume(decision.grant_id, len(codes))
    await _audit(
        request, ctx, caller, kind="credit_lists", started=started, records=len(codes),
        resource_code=resource_code, items=sorted(decision.items),
    )  # fmt: skip
    return {"as_of": today.isoformat(), "results": results}


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/lists/{credit_code}", response_model=ListAnswer)
async def list_membership(
    credit_code: CodePath, request: Request, caller: Caller, ctx: Ctx
) -> Response:
    """Red and black list membership of one credit code, with each rule's reason and the
    records it rests on (联合奖惩 query). Needs a current grant on the credit lists topic
    (the customs and the commerce bureau hold one from the start): 403 otherwise."""
    batch = await _lists(request, ctx, caller, [credit_code])
    return _json(batch["results"][0])


@router.post("/lists/query", response_model=ListBatch)
async def list_query(body: ListQuery, request: Request, caller: Caller, ctx: Ctx) -> Response:
    """The same for up to 1,000 credit codes at once, answered in the order asked."""
    return _json(await _lists(request, ctx, caller, body.credit_codes))


@router.get("/feed", response_model=list[SubmittedRecord])
def upward_feed(
    session: DbSession,
    caller: Caller,
    after: Annotated[int, Query(ge=0, le=2**62, description="last id read")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[SubmittedRecord]:
    """Published records in publication order after the cursor ``after``: what the
    provincial platform (信用广东) reads upward, resuming from its last id. The
    provincial platform's unit and the operator only (403 ``not_provincial``)."""
    if not caller.is_operator:
        dept = session.get(Department, caller.code)
        if dept is None or dept.kind != PROVINCIAL:
            raise NotPermitted(
                "only the provincial platform reads the upward feed", code="not_provincial"
            )
    return [service.submitted_out(r) for r in service.published_after(session, after, limit)]


@router.post("/ingest", response_model=IngestAnswer)
async def ingest_city_events(
    request: Request,
    caller: Caller,
    ctx: Ctx,
    deadlines: Deadlines,
    ratings: TaxRatings,
    after: Annotated[int, Query(ge=0, le=2**62, description="last event id read")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 5_000,
) -> IngestAnswer:
    """Gather (归集) the living city's permit and penalty events from the distribution
    outbox as the market regulator's decisions (operator only; see
    :mod:`exchange.credit.ingest`). Idempotent; continue from the returned ``cursor``."""
    caller.require_operator()
    now = ctx.clock.now()
    city = ratings.city

    def work() -> IngestAnswer:
        with ctx.db.session() as session:
            done = ingest.ingest(
                session, city=city, after=after, limit=limit, now=now, deadlines=deadlines
            )
        return IngestAnswer(**vars(done))

    return await _audited(request, ctx, caller, "credit_ingest", work, lambda a: a.published)
