"""The pull feed: a page of a subscription's events after a cursor, with long-poll.

The cursor a consumer sends acknowledges everything up to it (the subscription's stored
cursor becomes it, so the backlog shows what the consumer has not yet taken); sending an
older cursor replays from there, as long as its events are still held.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson
from starlette.concurrency import run_in_threadpool

from exchange.authn import Principal
from exchange.authz.policy import REASONS
from exchange.context import AppContext
from exchange.db.base import utcnow
from exchange.distribution import feed, retention, service
from exchange.distribution.models import Subscription
from exchange.distribution.schemas import DeliveryMode, Source
from exchange.errors import Conflict, NotPermitted

__all__ = ["Page", "read_page"]

#: scans of ``limit`` events one read makes at most while the filter leaves them all out
MAX_SCANS = 20
#: how often a long-poll looks for changes committed by other processes
POLL = 0.25


@dataclass(slots=True)
class Page:
    body: bytes
    consumer: str
    provider: str | None
    resource_code: str | None
    items: frozenset[str]
    records: int
    next_cursor: int


def _read(
    ctx: AppContext, sub_id: int, caller: Principal, cursor: int | None, limit: int
) -> tuple[Page, list[float]]:
    ctx.db.freshness.check()  # grant changes of other processes, before the check
    with ctx.db.session() as session:
        sub: Subscription = service.get_subscription(session, sub_id, caller)
        if sub.delivery != DeliveryMode.pull:
            raise Conflict(
                f"subscription {sub_id} is delivered by push; it has no feed to read",
                code="not_pull",
            )
        if sub.status != "active":
            raise Conflict(f"subscription {sub_id} is suspended", code="subscription_suspended")
        items: frozenset[str] = frozenset()
        grant_id: int | None = None
        if sub.source == Source.topic and sub.resource_code is not None:
            grants = ctx.grants
            decision = grants.check(sub.consumer, sub.resource_code, None, records=0)
            if not decision.allowed:
                raise NotPermitted(
                    f"{sub.consumer} may not receive {sub.resource_code}: {decision.reason} "
                    f"({REASONS[decision.reason]})",
                    code=decision.reason,
                    detail={"reason": decision.reason, "grant_id": decision.grant_id},
                )
            items = frozenset(sub.items) & decision.items
            grant_id = decision.grant_id
        if cursor is not None and sub.source == Source.topic:
            retention.check_cursor(session, sub.resource_code, cursor)
        after = sub.cursor if cursor is None else cursor
        batch = feed.read(session, sub, after, limit, items)
        for _ in range(MAX_SCANS):
            if batch.events or not batch.more:
                break
            batch = feed.read(session, sub, batch.last, limit, items)
        if cursor is not None:
            sub.cursor = cursor
        n = len(batch.events)
        if n:
            sub.delivered += n
            now = utcnow()
            sub.last_delivered_at = now
            lags = [max(0.0, (now - c).total_seconds()) for c in batch.changed]
            sub.last_lag_ms = int(lags[-1] * 1000)
            if grant_id is not None:
                ctx.grants.consume(grant_id, n)
        else:
            lags = []
        body = orjson.dumps(
            {
                "subscription": sub.id,
                "cursor": after,
                "next_cursor": batch.last,
                "events": batch.events,
                "more": batch.more,
            }
        )
        return Page(body, sub.consumer, sub.provider, sub.resource_code, items, n, batch.last), lags


async def read_page(
    ctx: AppContext,
    sub_id: int,
    caller: Principal,
    *,
    cursor: int | None,
    limit: int,
    wait: float,
) -> tuple[Page, list[float]]:
    """A page after ``cursor``; with ``wait`` > 0 and nothing to give, wait up to that
    many seconds for events (woken by commits in this process, polling for others')."""
    deadline = time.monotonic() + wait
    runtime = ctx.distribution
    while True:
        page, lags = await run_in_threadpool(_read, ctx, sub_id, caller, cursor, limit)
        left = deadline - time.monotonic()
        if page.records or left <= 0:
            return page, lags
        # Later reads continue where this one stopped (filtered-out events skipped).
        cursor = page.next_cursor
        if runtime is not None:
            await runtime.signal.wait(min(left, POLL))
        else:
            await asyncio.sleep(min(left, POLL))
