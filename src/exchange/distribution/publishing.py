"""Accept a provider's changes into the outbox (一数一源): one multi-row insert in the
caller's transaction, idempotent on the source's event ids, visible in id order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from exchange.catalog.schemas import TopicStatus
from exchange.catalog.service import TopicNotFound, TopicRetired, get_topic_by_code
from exchange.db.feeds import Feed, in_cursor_order
from exchange.distribution.errors import NotTheSource, invalid
from exchange.distribution.models import ChangeEventRow
from exchange.distribution.records import check_record, item_types, key_item
from exchange.distribution.schemas import ChangeEvent
from exchange.errors import Conflict

__all__ = ["CHANGED", "Accepted", "accept_changes"]

#: ``Session.info`` flag: this transaction wrote change events (wakes delivery after commit)
CHANGED = "distribution_changed"


@dataclass(frozen=True, slots=True)
class Accepted:
    """What :func:`accept_changes` acknowledged."""

    #: the exchange's event ids, in the order sent (held ones' earlier ids included)
    ids: list[int]
    #: events whose source ``event_id`` the topic already held (not written again)
    duplicates: int


def _held(session: Session, resource_code: str, events: Sequence[ChangeEvent]) -> dict[str, int]:
    """Source event id → exchange id of the events of this call the topic already holds.

    The same source id sent again must be the same change (key, kind, time, record): a
    source that reuses an id for another change gets 409 ``event_id_reused`` instead of
    having its change silently dropped.
    """
    wanted: dict[str, int] = {}
    for index, e in enumerate(events):
        if e.event_id is None:
            continue
        if e.event_id in wanted:
            raise invalid(
                f"events[{index}]: event_id {e.event_id!r} appears twice in the call",
                code="duplicate_event_id",
                detail={"index": index, "event_id": e.event_id},
            )
        wanted[e.event_id] = index
    held: dict[str, int] = {}
    ids = list(wanted)
    for start in range(0, len(ids), 500):  # bounded IN lists
        rows = session.execute(
            select(
                ChangeEventRow.id,
                ChangeEventRow.source_id,
                ChangeEventRow.key,
                ChangeEventRow.kind,
                ChangeEventRow.changed_at,
                ChangeEventRow.record,
            ).where(
                ChangeEventRow.resource_code == resource_code,
                ChangeEventRow.source_id.in_(ids[start : start + 500]),
            )
        ).all()
        for row in rows:
            index = wanted[row.source_id]
            e = events[index]
            same = (
                row.key == e.key
                and row.kind == e.kind
                and row.changed_at == e.changed_at
                and row.record == e.record
            )
            if not same:
                raise Conflict(
                    f"events[{index}]: event_id {row.source_id!r} was already used for "
                    f"another change of {resource_code} (event {row.id})",
                    code="event_id_reused",
                    detail={"index": index, "event_id": row.source_id, "held_event": row.id},
                )
            held[row.source_id] = int(row.id)
    return held


def accept_changes(
    session: Session,
    *,
    provider: str,
    resource_code: str,
    events: Sequence[ChangeEvent],
    request_id: str | None = None,
    now: dt.datetime | None = None,
) -> Accepted:
    """Write ``events`` of topic ``resource_code`` to the outbox in the caller's
    transaction and return their ids (in order; the consumers' idempotency keys).

    An event with a source ``event_id`` the topic already holds is not written again: its
    earlier id is answered (a publish retried after a timeout creates no duplicate).

    Refuses (nothing written): an unknown topic (404 ``topic_not_found``), a retired one
    (409 ``topic_retired``), a ``provider`` that is not the topic's (403
    ``not_the_source``: one datum, one source), a record with items the topic does not
    have or of the wrong type (422), an ``event_id`` twice in the call (422
    ``duplicate_event_id``) or already used for another change (409 ``event_id_reused``).
    Delivery starts once the transaction commits. Two calls inserting the same new
    ``event_id`` at once: the later commit fails on the unique index (the caller retries,
    and then finds it held).
    """
    try:
        topic = get_topic_by_code(session, resource_code)
    except TopicNotFound:
        raise TopicNotFound(f"no topic with resource code {resource_code}") from None
    if topic.status == TopicStatus.retired:
        raise TopicRetired(f"topic {resource_code} is retired (废置); it takes no changes")
    if topic.provider != provider:
        raise NotTheSource(
            f"{provider!r} is not the source of {resource_code}: only its provider "
            f"{topic.provider!r} publishes its changes (一数一源)",
            detail={"provider": topic.provider},
        )
    if not events:
        return Accepted([], 0)
    types = item_types(topic)
    key = key_item(topic)
    for index, event in enumerate(events):
        check_record(index, event, types, key)
    # a topic's events become visible in id order (PostgreSQL): delivery moves a
    # subscription's cursor past the highest id it read
    in_cursor_order(session, Feed.CHANGE_EVENTS, topic.resource_code)
    held = _held(session, topic.resource_code, events)
    fresh = [e for e in events if e.event_id is None or e.event_id not in held]
    accepted = now or dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = [
        {
            "resource_code": topic.resource_code,
            "provider": provider,
            "key": e.key,
            "kind": e.kind,
            "changed_at": e.changed_at,
            "accepted_at": accepted,
            "record": e.record,
            "request_id": request_id,
            "source_id": e.event_id,
        }
        for e in fresh
    ]
    new_ids: list[int] = []
    if rows:
        table = ChangeEventRow.__table__
        assert isinstance(table, Table)
        # One multi-row INSERT … RETURNING (SQLAlchemy's "insertmanyvalues"), ids in order.
        result = session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        )
        new_ids = [int(r[0]) for r in result]
        session.info[CHANGED] = True
    written = iter(new_ids)
    ids = [
        held[e.event_id] if e.event_id is not None and e.event_id in held else next(written)
        for e in events
    ]
    return Accepted(ids, len(events) - len(fresh))
