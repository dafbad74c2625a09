"""A subscription's next batch: its dead letters queued for retry first, else the feed
after its cursor (skipping over stretches its filter leaves out)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.distribution import feed
from exchange.distribution.models import DeadLetter, Subscription

__all__ = ["Step", "next_batch"]


@dataclass(slots=True)
class Step:
    """One batch about to be pushed to one subscription."""

    sub_id: int
    consumer: str
    provider: str | None
    resource_code: str | None
    endpoint: str
    items: frozenset[str]
    batch: feed.Batch
    grant_id: int | None
    #: dead-letter ids this batch retries (None: the feed's next batch)
    retrying: list[int] | None = None
    #: the cursor the batch was read after (a replay meanwhile moved it: leave it be)
    after: int = 0


def next_batch(
    session: Session, sub: Subscription, items: frozenset[str], limit: int
) -> Step | None:
    retry = list(
        session.execute(
            select(DeadLetter.id, DeadLetter.event_id)
            .where(DeadLetter.subscription_id == sub.id, DeadLetter.status == "retry")
            .order_by(DeadLetter.event_id)
            .limit(limit)
        )
    )
    if retry:
        batch = feed.read_ids(session, sub, [r.event_id for r in retry], items)
        retrying: list[int] | None = [r.id for r in retry]
    else:
        retrying = None
        # Skip over stretches the filter leaves out, moving the cursor past them.
        for _ in range(20):
            batch = feed.read(session, sub, sub.cursor, limit, items)
            if batch.events or batch.last == sub.cursor:
                break
            sub.cursor = batch.last
        if not batch.events:
            return None
    assert sub.endpoint is not None
    return Step(
        sub_id=sub.id,
        consumer=sub.consumer,
        provider=sub.provider,
        resource_code=sub.resource_code,
        endpoint=sub.endpoint,
        items=items,
        batch=batch,
        grant_id=None,
        retrying=retrying,
        after=sub.cursor,
    )
