"""Pruning the outbox: events every subscription of their topic has acknowledged, older
than the retention the operator sets (``distribution_retention``), are deleted.

What is kept, whatever its age:

* an event some subscription of its topic has not acknowledged yet (its cursor is below
  the event: push not yet acknowledged, pull not yet read past), suspended ones included;
* an event a dead letter refers to (the consumer may still retry it);
* the newest event of the whole outbox: SQLite gives a new row ``max(id) + 1``, so
  deleting the newest rows would hand their ids out again and break every cursor.

The **replay window**: a topic's :class:`~.models.PruneMark` says through which id its
events were pruned; a replay (or a pull, or a new subscription) from an older cursor is
refused with 409 ``cursor_pruned`` instead of silently skipping what is gone. A source's
``event_id`` is remembered only while its event is held, so idempotent retries are
recognised within the retention too.

Bounded work: a pass looks at ``distribution_prune_scan`` consecutive ids at most (one
range read of the primary key, the subscriptions' cursors and the dead letters of that
range) and sweeps on from there at the next pass, back to the oldest id when it meets
events younger than the retention (everything after them is younger still).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from exchange.distribution.models import ChangeEventRow, DeadLetter, PruneMark, Subscription
from exchange.distribution.schemas import Source
from exchange.errors import Conflict

__all__ = ["CursorPruned", "Pass", "check_cursor", "prune", "replay_from"]

#: ids per DELETE statement (bounded IN lists)
_CHUNK = 500


class CursorPruned(Conflict):
    """The cursor is older than the topic's replay window."""

    code = "cursor_pruned"


@dataclass(frozen=True, slots=True)
class Pass:
    """One pruning pass: ids looked at, events deleted, where the next pass starts."""

    looked: int
    pruned: int
    next_after: int


def replay_from(session: Session, resource_code: str | None) -> int:
    """The oldest cursor a replay of the topic can start from (0: nothing was pruned)."""
    if resource_code is None:
        return 0
    mark = session.get(PruneMark, resource_code)
    return 0 if mark is None else int(mark.through)


def check_cursor(session: Session, resource_code: str | None, cursor: int) -> None:
    """Refuse a cursor whose following events were partly pruned (409 ``cursor_pruned``)."""
    oldest = replay_from(session, resource_code)
    if cursor < oldest:
        raise CursorPruned(
            f"events of {resource_code} up to {oldest} were pruned (retention); "
            f"replay from cursor {oldest} or later",
            detail={"cursor": cursor, "replay_from": oldest},
        )


def prune(session: Session, *, after: int, scan: int, before: dt.datetime) -> Pass:
    """Delete the prunable events among ids ``after + 1 … after + scan`` accepted before
    ``before``, in the caller's transaction; see the module docstring."""
    newest = int(session.scalar(select(func.max(ChangeEventRow.id))) or 0)
    oldest = int(session.scalar(select(func.min(ChangeEventRow.id))) or 0)
    after = max(after, oldest - 1)
    if after >= newest - 1:
        after = max(0, oldest - 1)  # swept to the end: start again from the oldest
    hi = min(after + scan, newest - 1)  # never the newest (SQLite would reuse its id)
    if hi <= after:
        return Pass(0, 0, 0)
    rows = session.execute(
        select(ChangeEventRow.id, ChangeEventRow.resource_code, ChangeEventRow.accepted_at)
        .where(ChangeEventRow.id > after, ChangeEventRow.id <= hi)
        .order_by(ChangeEventRow.id)
    ).all()
    # A subscription has acknowledged every event at or below its cursor.
    acked: dict[str, int] = {
        str(code): int(cursor)
        for code, cursor in session.execute(
            select(Subscription.resource_code, func.min(Subscription.cursor))
            .where(Subscription.source == Source.topic.value)
            .group_by(Subscription.resource_code)
        )
    }
    dead = set(
        session.scalars(
            select(DeadLetter.event_id)
            .join(Subscription, Subscription.id == DeadLetter.subscription_id)
            .where(
                Subscription.source == Source.topic.value,
                DeadLetter.event_id > after,
                DeadLetter.event_id <= hi,
            )
        )
    )
    young = False
    victims: dict[str, list[int]] = defaultdict(list)
    for event_id, code, accepted_at in rows:
        if accepted_at >= before:
            young = True  # ids grow with time: the rest of the range is young too
            break
        if event_id <= acked.get(code, event_id) and event_id not in dead:
            victims[code].append(int(event_id))
    pruned = 0
    now = dt.datetime.now(dt.UTC)
    for code, ids in victims.items():
        deleted = 0
        for start in range(0, len(ids), _CHUNK):
            result = session.execute(
                delete(ChangeEventRow).where(ChangeEventRow.id.in_(ids[start : start + _CHUNK]))
            )
            deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
        pruned += deleted
        mark = session.get(PruneMark, code)
        if mark is None:
            session.add(
                PruneMark(resource_code=code, through=ids[-1], events=deleted, pruned_at=now)
            )
        else:
            mark.through = max(int(mark.through), ids[-1])
            mark.events = int(mark.events) + deleted
            mark.pruned_at = now
    return Pass(len(rows), pruned, 0 if young else hi)
