"""``GET /api/v1/subscriptions/{id}/events``: a pull subscription's feed, read over HTTP.

A page that hands over records is a delivery: audited and counted in the metrics like a
push; an empty poll is not audited. The reading itself is ``pull.read_page``."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from exchange.audit.deps import TheAuditWriter
from exchange.context import Caller, Ctx
from exchange.distribution import audit, pull
from exchange.distribution.params import SubId
from exchange.distribution.runtime import TheRuntime
from exchange.distribution.schemas import FeedPage
from exchange.errors import ExchangeError, request_id_of

#: Served beside the subscriptions router (``router.py``), under the same prefix and tag;
#: included by the app itself, not nested in that router (a nested router is not a route of
#: it, and the gateway's table of parts reads routes).
feed_router = APIRouter(prefix="/api/v1/subscriptions", tags=["distribution"])


@feed_router.get(
    "/{sub_id}/events",
    response_class=Response,
    responses={200: {"model": FeedPage, "description": "A page of the feed."}},
)
async def read_feed(
    request: Request,
    sub_id: SubId,
    caller: Caller,
    ctx: Ctx,
    writer: TheAuditWriter,
    runtime: TheRuntime,
    cursor: Annotated[
        int | None,
        Query(ge=0, le=2**62, description="Events after this id (default: the stored cursor)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Events scanned at most.")] = 1000,
    wait: Annotated[
        float, Query(ge=0, le=30, description="Long-poll: seconds to wait for events.")
    ] = 0,
) -> Response:
    """A pull subscription's feed: events after `cursor`, each with only the items the
    subscription may receive now, and `next_cursor` to ask from next. Sending a cursor
    acknowledges everything up to it; an older cursor replays. With `wait`, an empty
    answer waits up to that many seconds for new events.

    Errors: 403 with the grant's denial reason (`grant_revoked`, `grant_expired`, …),
    404 `subscription_not_found`, 409 `not_pull` / `subscription_suspended` /
    `cursor_pruned` (a cursor older than the replay window).
    """
    started = time.perf_counter()
    try:
        page, lags = await pull.read_page(
            ctx, sub_id, caller, cursor=cursor, limit=limit, wait=wait
        )
    except ExchangeError as exc:
        await writer.record(
            audit.entry(
                kind=audit.PULL,
                at=ctx.clock.now(),
                request_id=request_id_of(request),
                consumer=caller.code,
                provider=None,
                resource_code=None,
                items=[],
                records=0,
                outcome=exc.code,
                status=exc.status_code,
                started=started,
                ended=time.perf_counter(),
                subscription=sub_id,
            )
        )
        raise
    if page.records:
        # Only pages that hand over records are deliveries (an empty poll is not audited).
        await writer.record(
            audit.entry(
                kind=audit.PULL,
                at=ctx.clock.now(),
                request_id=request_id_of(request),
                consumer=page.consumer,
                provider=page.provider,
                resource_code=page.resource_code,
                items=page.items,
                records=page.records,
                outcome="ok",
                status=200,
                started=started,
                ended=time.perf_counter(),
                subscription=sub_id,
            )
        )
        if runtime is not None:
            runtime.metrics.events.labels("pull", "delivered").inc(page.records)
            histogram = runtime.metrics.lag.labels("pull")
            for lag in lags:
                histogram.observe(lag)
    return Response(page.body, media_type="application/json")
