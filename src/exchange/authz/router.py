"""``/api/v1/applications``, ``/disputes``, ``/grants`` and ``/authz/check``."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, status
from starlette.concurrency import run_in_threadpool

from exchange.authz import service
from exchange.authz.cache import GrantCache
from exchange.authz.calendar import WorkingCalendar
from exchange.authz.policy import REASONS
from exchange.authz.schemas import (
    ApplicationCreate,
    ApplicationOut,
    ApplicationPage,
    ApplicationStatus,
    Approve,
    CheckRequest,
    CheckResult,
    DisputeCreate,
    DisputeDecide,
    DisputeOut,
    GrantOut,
    GrantPage,
    GrantStatus,
    MessageCreate,
    Reject,
    Revoke,
)
from exchange.catalog.service import CatalogEvent
from exchange.config import Settings
from exchange.context import AppContext, Caller, Ctx, DbSession, ctx_of
from exchange.errors import NotPermitted

router = APIRouter(tags=["authorization"])

AppId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Application id")]
DisputeId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Dispute id")]
GrantId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Grant id")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]
TopicFilter = Annotated[
    str | None, Query(pattern=r"^[123]\d{8}/\d{6}$", description="Resource code")
]


def working_calendar(settings: Settings) -> WorkingCalendar:
    """The working-day calendar of the settings, built at start-up so that a malformed
    ``EXCHANGE_HOLIDAYS`` or ``EXCHANGE_WORKDAYS`` fails there."""
    return WorkingCalendar.from_settings(
        settings.holidays, settings.workdays, uncovered=settings.calendar_uncovered
    )


def install(ctx: AppContext) -> None:
    """Wire authorization into one app: the reaction to catalog events (in their
    transaction, wherever the catalog is written)."""
    ctx.db.reactions.on(CatalogEvent, service.on_catalog_event)


async def get_grants(ctx: Ctx) -> GrantCache:
    return ctx.grants


async def get_calendar(ctx: Ctx) -> WorkingCalendar:
    return ctx.calendar


Grants = Annotated[GrantCache, Depends(get_grants)]
Calendar = Annotated[WorkingCalendar, Depends(get_calendar)]


def _detail(session: DbSession, app_id: int, ctx: AppContext, caller: Caller) -> ApplicationOut:
    app = service.get_application(session, app_id, caller)
    return service.application_out(
        app,
        ctx.clock.now(),
        dispute_id=service.dispute_ids(session, [app.id]).get(app.id),
        events=service.events_of(session, app),
    )


# --- applications ---------------------------------------------------------------------------


@router.post(
    "/api/v1/applications", status_code=status.HTTP_201_CREATED, response_model=ApplicationOut
)
def submit_application(
    body: ApplicationCreate, session: DbSession, caller: Caller, ctx: Ctx, calendar: Calendar
) -> ApplicationOut:
    """Apply for items of a topic (共享申请), deciding each item by its sharing type.

    * unconditional items are granted at once (automatic distribution);
    * conditional items go to the provider's review inbox, due in ``review_days`` working
      days (``review_deadline``);
    * not-shared items are refused at once, citing the catalog's legal basis.

    Errors: 404 ``topic_not_found``, 409 ``topic_retired``, 422 ``unknown_item``,
    ``invalid_validity``, ``validity_too_long``, ``own_topic``, ``purpose_not_offered``
    (the purpose scope is not among the uses the topic's catalog entry offers, 使用范围);
    the operator must name the ``consumer`` it applies for (422 ``consumer_required``).
    """
    now = ctx.clock.now()
    app = service.submit(
        session,
        body,
        caller,
        now=now,
        today=ctx.clock.today(),
        calendar=calendar,
        review_days=ctx.settings.review_days,
    )
    return service.application_out(app, now, events=service.events_of(session, app))


@router.get("/api/v1/applications", response_model=ApplicationPage)
def list_applications(
    session: DbSession,
    caller: Caller,
    ctx: Ctx,
    role: Annotated[
        Literal["consumer", "provider"],
        Query(description="consumer: those you filed; provider: your review inbox"),
    ] = "consumer",
    status: Annotated[ApplicationStatus | None, Query()] = None,
    overdue: Annotated[
        bool | None, Query(description="true: pending past the review deadline")
    ] = None,
    topic: TopicFilter = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> ApplicationPage:
    """Applications a department filed (``role=consumer``) or must review
    (``role=provider``); the operator sees all, and ``overdue=true`` shows late reviews."""
    now = ctx.clock.now()
    total, rows = service.list_applications(
        session,
        caller,
        role=role,
        status=status.value if status else None,
        overdue=overdue,
        topic=topic,
        now=now,
        offset=offset,
        limit=limit,
    )
    disputes = service.dispute_ids(session, [a.id for a in rows])
    return ApplicationPage(
        total=total,
        items=[service.application_out(a, now, dispute_id=disputes.get(a.id)) for a in rows],
    )


@router.get("/api/v1/applications/{app_id}", response_model=ApplicationOut)
def get_application(app_id: AppId, session: DbSession, caller: Caller, ctx: Ctx) -> ApplicationOut:
    """One application with its per-item decisions and full history (who, when, why).
    Only its consumer, its provider and the operator may read it (403 otherwise)."""
    return _detail(session, app_id, ctx, caller)


@router.post("/api/v1/applications/{app_id}/approve", response_model=ApplicationOut)
def approve_application(
    app_id: AppId, body: Approve, session: DbSession, caller: Caller, ctx: Ctx
) -> ApplicationOut:
    """The provider approves pending items: all, or fewer (``items``), for a validity no
    longer than requested and a quota no higher. Leaving items out needs a ``reason``.

    The approval sets the terms of the consumer's grant for the topic. Errors: 409
    ``not_pending``; 422 ``item_not_pending``, ``validity_exceeds_request``,
    ``quota_exceeds_request``, ``reason_required``.
    """
    app = service.get_application(session, app_id, caller, for_update=True)
    service.approve(session, app, body, caller, now=ctx.clock.now(), today=ctx.clock.today())
    session.flush()
    return _detail(session, app_id, ctx, caller)


@router.post("/api/v1/applications/{app_id}/reject", response_model=ApplicationOut)
def reject_application(
    app_id: AppId, body: Reject, session: DbSession, caller: Caller, ctx: Ctx
) -> ApplicationOut:
    """The provider rejects every pending item (退回). A refusal must give its reason:
    422 ``reason_required`` without one."""
    app = service.get_application(session, app_id, caller, for_update=True)
    service.reject(session, app, body.reason, caller, now=ctx.clock.now())
    return _detail(session, app_id, ctx, caller)


@router.post(
    "/api/v1/applications/{app_id}/dispute",
    status_code=status.HTTP_201_CREATED,
    response_model=DisputeOut,
)
def open_dispute(
    app_id: AppId, body: DisputeCreate, session: DbSession, caller: Caller, ctx: Ctx
) -> DisputeOut:
    """The consumer disputes refused or rejected items (争议协调), with a reason; the two
    sides negotiate in the dispute's thread, then the operator decides.

    Errors: 409 ``nothing_refused`` (nothing refused, or still pending), ``dispute_exists``;
    422 ``reason_required``, ``item_not_refused``.
    """
    app = service.get_application(session, app_id, caller, for_update=True)
    dispute = service.open_dispute(session, app, body, caller, now=ctx.clock.now())
    return service.dispute_out(session, dispute)


# --- disputes -------------------------------------------------------------------------------


@router.get("/api/v1/disputes/{dispute_id}", response_model=DisputeOut)
def get_dispute(dispute_id: DisputeId, session: DbSession, caller: Caller) -> DisputeOut:
    """A dispute and its negotiation thread (both sides and the operator)."""
    return service.dispute_out(session, service.get_dispute(session, dispute_id, caller))


@router.post(
    "/api/v1/disputes/{dispute_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=DisputeOut,
)
def post_message(
    dispute_id: DisputeId, body: MessageCreate, session: DbSession, caller: Caller, ctx: Ctx
) -> DisputeOut:
    """Add a message to the negotiation (either side, or the operator); 409
    ``dispute_closed`` once decided."""
    dispute = service.get_dispute(session, dispute_id, caller)
    service.post_message(session, dispute, body.body, caller, now=ctx.clock.now())
    return service.dispute_out(session, dispute)


@router.post("/api/v1/disputes/{dispute_id}/decide", response_model=DisputeOut)
def decide_dispute(
    dispute_id: DisputeId, body: DisputeDecide, session: DbSession, caller: Caller, ctx: Ctx
) -> DisputeOut:
    """The operator decides (协调决定): ``grant`` every disputed item, ``partial`` (the
    ``items`` named) or ``uphold`` the refusal, always with a ``reason``.

    Errors: 403 ``operator_only``; 409 ``dispute_closed``; 422 ``reason_required``,
    ``items_required``, ``item_not_disputed``.
    """
    dispute = service.get_dispute(session, dispute_id, caller, for_update=True)
    service.decide_dispute(
        session, dispute, body, caller, now=ctx.clock.now(), today=ctx.clock.today()
    )
    return service.dispute_out(session, dispute)


# --- grants ---------------------------------------------------------------------------------


@router.get("/api/v1/grants", response_model=GrantPage)
def list_grants(
    session: DbSession,
    caller: Caller,
    ctx: Ctx,
    consumer: Annotated[str | None, Query(max_length=32)] = None,
    provider: Annotated[str | None, Query(max_length=32)] = None,
    topic: TopicFilter = None,
    status: Annotated[GrantStatus | None, Query()] = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> GrantPage:
    """Grants the caller holds or gives (the operator: all). ``expired`` is an active grant
    whose last valid day has passed by the platform clock."""
    today = ctx.clock.today()
    total, rows = service.list_grants(
        session,
        caller,
        consumer=consumer,
        provider=provider,
        topic=topic,
        status=status,
        today=today,
        offset=offset,
        limit=limit,
    )
    return GrantPage(total=total, items=[service.grant_out(g, today) for g in rows])


@router.get("/api/v1/grants/{grant_id}", response_model=GrantOut)
def get_grant(grant_id: GrantId, session: DbSession, caller: Caller, ctx: Ctx) -> GrantOut:
    """One grant (its consumer, its provider or the operator)."""
    return service.grant_out(service.get_grant(session, grant_id, caller), ctx.clock.today())


@router.post("/api/v1/grants/{grant_id}/revoke", response_model=GrantOut)
def revoke_grant(
    grant_id: GrantId, body: Revoke, session: DbSession, caller: Caller, ctx: Ctx
) -> GrantOut:
    """The provider or the operator revokes a grant, with a ``reason`` (422
    ``reason_required``); checks answer ``grant_revoked`` from then on."""
    grant = service.get_grant(session, grant_id, caller, for_update=True)
    service.revoke(session, grant, body.reason, caller, now=ctx.clock.now())
    return service.grant_out(grant, ctx.clock.today())


# --- the check ------------------------------------------------------------------------------

_REASON_TABLE = "\n".join(f"* `{code}`: {text}" for code, text in REASONS.items())


@router.post(
    "/api/v1/authz/check",
    response_model=CheckResult,
    description=(
        "May `consumer` read `items` (omitted: every granted item) of `topic` now?\n\n"
        "Answered from the in-memory grant cache; `records` counts against the daily quota "
        "but is not consumed by the check. The consumer itself or the operator may ask.\n\n"
        f"Reason codes:\n\n{_REASON_TABLE}"
    ),
)
async def check(body: CheckRequest, request: Request) -> CheckResult:
    """Allowed or denied, with a reason code and the grant id."""
    # Async, with the key checked inline rather than through the sync Caller dependency:
    # each sync dependency costs a thread-pool hop, which would dwarf a microsecond check.
    # Both the authenticator and the cache answer from memory; the rare database read
    # (a key not seen for a while, an epoch poll) is short.
    ctx = ctx_of(request)
    caller = ctx.auth.authenticate(request.headers.get("authorization"))
    if not caller.is_operator and caller.code != body.consumer:
        raise NotPermitted(
            f"department {caller.code!r} may not check {body.consumer!r}'s access",
            code="not_your_department",
        )
    cache = ctx.grants
    args = (body.consumer, body.topic, body.items)
    if cache.fresh:
        decision = cache.check(*args, records=body.records)
    else:
        # A reload of every grant takes a while: keep it off the event loop.
        decision = await run_in_threadpool(partial(cache.check, *args, records=body.records))
    return CheckResult(
        allowed=decision.allowed,
        reason=decision.reason,
        grant_id=decision.grant_id,
        items=sorted(decision.items),
        remaining_quota=decision.remaining_quota,
    )
