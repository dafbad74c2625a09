"""Audit entries of distribution: a provider publishing changes, a delivery to a consumer.

They go through the broker's audit writer, so they are hash-chained with every exchange.
The entry's ``case`` names the subscription a delivery served (``subscription:<id>``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from exchange.audit.entry import Entry

__all__ = ["PUBLISH", "PULL", "PUSH", "Entry", "entry"]

#: entry kinds (``audit_entry.kind`` holds 16 characters)
PUBLISH = "changes"
PUSH = "push"
PULL = "pull"


def entry(
    *,
    kind: str,
    at: dt.datetime,
    request_id: str,
    consumer: str,
    provider: str | None,
    resource_code: str | None,
    items: Iterable[str],
    records: int,
    outcome: str,
    status: int,
    started: float,
    ended: float,
    subscription: int | None = None,
    correlation_id: str | None = None,
) -> Entry:
    """One audit entry at platform time ``at``; ``started``/``ended`` are
    ``time.perf_counter()`` readings."""
    return Entry(
        request_id=request_id,
        at=at,
        kind=kind,
        consumer=consumer,
        provider=provider,
        resource_code=resource_code,
        items=sorted(items),
        case=None if subscription is None else f"subscription:{subscription}",
        records=records,
        outcome=outcome,
        status=status,
        latency_us=max(0, int((ended - started) * 1_000_000)),
        correlation_id=correlation_id,
    )
