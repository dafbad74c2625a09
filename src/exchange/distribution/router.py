"""``/api/v1/subscriptions``: a consumer subscribes, manages its subscriptions and their
dead letters (each change a committed, audited transaction); the pull feed's route lives in
``feed_router``, served beside this router under the same prefix."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from exchange.audit.deps import TheAuditWriter
from exchange.audit.writer import AuditWriter
from exchange.authn import Principal
from exchange.context import AppContext, Caller, Ctx, DbSession
from exchange.distribution import audit, service
from exchange.distribution.models import Subscription
from exchange.distribution.params import Limit, Offset, SubId
from exchange.distribution.runtime import Runtime, TheRuntime
from exchange.distribution.schemas import (
    DeadLetterCount,
    DeadLetterOut,
    DeadLetterPage,
    DeadLetterSelection,
    Replay,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionPage,
)
from exchange.errors import ExchangeError, request_id_of

_T = TypeVar("_T")

router = APIRouter(prefix="/api/v1/subscriptions", tags=["distribution"])

MANAGE = "subscription"

_SUB_ERRORS = """
Errors: 401; 403 `no_grant` / `delivery_not_granted` (the grant's delivery is not
`subscription`) / `item_not_granted` / `filter_item_not_granted` / `not_a_department`;
404 `topic_not_found`; 409 `topic_retired` / `cursor_pruned` (`from_cursor` older than the
replay window); 422 `unknown_item` / `unknown_filter_item` /
`bad_endpoint` (not http(s)) / `endpoint_required` / `bad_filter` and schema errors.
"""


async def _manage(
    request: Request,
    ctx: AppContext,
    writer: AuditWriter,
    caller: Principal,
    action: str,
    work: Callable[[Session], _T],
    *,
    status_code: int = 200,
) -> _T:
    """Run ``work`` in a committed transaction and audit it (refusals too)."""
    started = time.perf_counter()
    facts: dict[str, Any] = {}

    def run() -> _T:
        with ctx.db.session() as session:
            result = work(session)
            sub = session.info.pop(_AUDITED, None)
            if isinstance(sub, Subscription):
                facts.update(
                    sub=sub.id,
                    provider=sub.provider,
                    topic=sub.resource_code,
                    items=list(sub.items),
                )
            return result

    def entry(outcome: str, code: int) -> audit.Entry:
        return audit.entry(
            kind=MANAGE,
            at=ctx.clock.now(),
            request_id=request_id_of(request),
            consumer=caller.code,
            provider=facts.get("provider"),
            resource_code=facts.get("topic"),
            items=facts.get("items", []),
            records=0,
            outcome=outcome,
            status=code,
            started=started,
            ended=time.perf_counter(),
            subscription=facts.get("sub"),
        )

    try:
        result = await run_in_threadpool(run)
    except ExchangeError as exc:
        await writer.record(entry(exc.code, exc.status_code))
        raise
    await writer.record(entry(action, status_code))
    return result


_AUDITED = "distribution_audited"


def _mark(session: Session, sub: Subscription) -> Subscription:
    session.info[_AUDITED] = sub
    return sub


def _out(runtime: Runtime | None, session: Session, sub: Subscription) -> SubscriptionOut:
    return service.subscription_out(
        session, sub, blocked=None if runtime is None else runtime.blocked(sub.id)
    )


def _wake(runtime: Runtime | None) -> None:
    if runtime is not None:
        runtime.wake()


_CREATE = """Subscribe to a topic's changes (your grant on it must have delivery
    `subscription`) or to the catalog's (`source: catalog`: topics registered, changed,
    retired).

    Choose the items (a subset of your granted items; default all of them), an optional
    filter (`keys`, `key_prefixes` such as a district's area code, `where` on granted
    items, `kinds`; for the catalog `topics`, `providers`, `kinds`) and a delivery:
    `push` POSTs signed batches to your http(s) `endpoint`; `pull` serves
    `GET /api/v1/subscriptions/{id}/events` (cursor and long-poll). Events accepted from
    now on are delivered (or from `from_cursor`).
    """


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionOut,
    description=_CREATE + _SUB_ERRORS,
)
async def create_subscription(
    request: Request,
    body: SubscriptionCreate,
    caller: Caller,
    ctx: Ctx,
    writer: TheAuditWriter,
    runtime: TheRuntime,
) -> SubscriptionOut:
    """Create a subscription."""

    def work(session: Session) -> SubscriptionOut:
        sub = service.create_subscription(session, body, caller, today=ctx.clock.today())
        return _out(runtime, session, _mark(session, sub))

    out = await _manage(request, ctx, writer, caller, "created", work, status_code=201)
    _wake(runtime)
    return out


@router.get("", response_model=SubscriptionPage)
def list_subscriptions(
    session: DbSession,
    caller: Caller,
    runtime: TheRuntime,
    offset: Offset = 0,
    limit: Limit = 100,
) -> SubscriptionPage:
    """Your subscriptions with their backlog, lag and counts (the operator sees all)."""
    total, rows = service.list_subscriptions(session, caller, offset=offset, limit=limit)
    return SubscriptionPage(total=total, items=[_out(runtime, session, s) for s in rows])


@router.get("/{sub_id}", response_model=SubscriptionOut)
def get_subscription(
    sub_id: SubId, session: DbSession, caller: Caller, runtime: TheRuntime
) -> SubscriptionOut:
    """One subscription: backlog (events after its cursor), delivered / retried /
    dead-lettered counts, the lag of its last delivery, its retry state, and `blocked`
    when its grant stops delivery now (revoked, expired, suspended)."""
    return _out(runtime, session, service.get_subscription(session, sub_id, caller))


def _status_change(new: str) -> Callable[..., Any]:
    async def change(
        request: Request,
        sub_id: SubId,
        caller: Caller,
        ctx: Ctx,
        writer: TheAuditWriter,
        runtime: TheRuntime,
    ) -> SubscriptionOut:
        def work(session: Session) -> SubscriptionOut:
            sub = _mark(session, service.get_subscription(session, sub_id, caller))
            service.set_status(session, sub, new)
            session.flush()
            return _out(runtime, session, sub)

        out = await _manage(
            request, ctx, writer, caller, "suspended" if new == "suspended" else "resumed", work
        )
        _wake(runtime)
        return out

    return change


router.add_api_route(
    "/{sub_id}/suspend",
    _status_change("suspended"),
    methods=["POST"],
    response_model=SubscriptionOut,
    summary="Suspend a subscription",
    description="Stop delivering; changes keep accumulating after the cursor.",
)
router.add_api_route(
    "/{sub_id}/resume",
    _status_change("active"),
    methods=["POST"],
    response_model=SubscriptionOut,
    summary="Resume a subscription",
    description="Deliver again, starting with what accumulated while suspended.",
)


@router.delete("/{sub_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_subscription(
    request: Request, sub_id: SubId, caller: Caller, ctx: Ctx, writer: TheAuditWriter
) -> Response:
    """Delete a subscription and its dead letters (the events stay in the outbox for
    other subscribers)."""

    def work(session: Session) -> None:
        sub = _mark(session, service.get_subscription(session, sub_id, caller))
        service.delete_subscription(session, sub)

    await _manage(request, ctx, writer, caller, "deleted", work, status_code=204)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{sub_id}/replay", response_model=SubscriptionOut)
async def replay(
    request: Request,
    sub_id: SubId,
    body: Replay,
    caller: Caller,
    ctx: Ctx,
    writer: TheAuditWriter,
    runtime: TheRuntime,
) -> SubscriptionOut:
    """Move the cursor back (or forward): every event after `cursor` is delivered again
    (push) or served again (pull).

    The replay window: events every subscription acknowledged are pruned after the
    operator's retention; a cursor below the subscription's `replay_from` gets 409
    `cursor_pruned` (its events are no longer held whole)."""

    def work(session: Session) -> SubscriptionOut:
        sub = _mark(session, service.get_subscription(session, sub_id, caller))
        service.replay(session, sub, body.cursor)
        session.flush()
        return _out(runtime, session, sub)

    out = await _manage(request, ctx, writer, caller, "replayed", work)
    _wake(runtime)
    return out


@router.get("/{sub_id}/dead-letters", response_model=DeadLetterPage)
def list_dead_letters(
    sub_id: SubId, session: DbSession, caller: Caller, offset: Offset = 0, limit: Limit = 100
) -> DeadLetterPage:
    """Events a push could not deliver (after its attempts or age), oldest event first."""
    sub = service.get_subscription(session, sub_id, caller)
    total, rows = service.dead_letters(session, sub, offset=offset, limit=limit)
    return DeadLetterPage(
        total=total,
        items=[
            DeadLetterOut(
                id=r.id,
                event_id=r.event_id,
                attempts=r.attempts,
                error=r.error,
                dead_at=r.dead_at,
                status=r.status,
            )
            for r in rows
        ],
    )


@router.post("/{sub_id}/dead-letters/retry", response_model=DeadLetterCount)
async def retry_dead_letters(
    request: Request,
    sub_id: SubId,
    body: DeadLetterSelection,
    caller: Caller,
    ctx: Ctx,
    writer: TheAuditWriter,
    runtime: TheRuntime,
) -> DeadLetterCount:
    """Push dead letters again (all, or the `ids` given), before the feed's next batch.
    One that fails again stays a dead letter."""

    def work(session: Session) -> DeadLetterCount:
        sub = _mark(session, service.get_subscription(session, sub_id, caller))
        return DeadLetterCount(
            subscription=sub.id, count=service.retry_dead_letters(session, sub, body.ids)
        )

    out = await _manage(request, ctx, writer, caller, "dead_letters_retried", work)
    _wake(runtime)
    return out


@router.post("/{sub_id}/dead-letters/discard", response_model=DeadLetterCount)
async def discard_dead_letters(
    request: Request,
    sub_id: SubId,
    body: DeadLetterSelection,
    caller: Caller,
    ctx: Ctx,
    writer: TheAuditWriter,
) -> DeadLetterCount:
    """Drop dead letters (all, or the `ids` given) for good."""

    def work(session: Session) -> DeadLetterCount:
        sub = _mark(session, service.get_subscription(session, sub_id, caller))
        return DeadLetterCount(
            subscription=sub.id, count=service.discard_dead_letters(session, sub, body.ids)
        )

    return await _manage(request, ctx, writer, caller, "dead_letters_discarded", work)
