"""Distribution rules: accept a provider's changes into the outbox (一数一源), and manage
subscriptions (who may subscribe to what, with which items, filter and delivery).

Delivery itself (reading the feed, pushing, dead letters) is in :mod:`.feed` and
:mod:`.delivery`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from exchange.authn import Principal
from exchange.authz.models import Grant
from exchange.catalog.models import Change, Topic
from exchange.catalog.schemas import DataType, TopicStatus
from exchange.catalog.service import TopicNotFound, TopicRetired, get_topic_by_code
from exchange.db.base import utcnow
from exchange.db.freshness import announce
from exchange.distribution import retention
from exchange.distribution.models import ChangeEventRow, DeadLetter, Subscription
from exchange.distribution.schemas import (
    ChangeEvent,
    DeliveryMode,
    Filter,
    Source,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionStats,
    SubscriptionStatus,
)
from exchange.errors import BadRequest, Conflict, NotFound, NotPermitted, ValidationFailed

__all__ = [
    "CHANGED",
    "Accepted",
    "NotTheSource",
    "SubscriptionNotFound",
    "accept_changes",
    "create_subscription",
    "get_subscription",
]

#: ``Session.info`` flag: this transaction wrote change events (wakes delivery after commit)
CHANGED = "distribution_changed"
#: Subscriptions one consumer may hold
MAX_PER_CONSUMER = 1_000


class NotTheSource(NotPermitted):
    """一数一源: only the topic's provider may publish its changes."""

    code = "not_the_source"


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"


def _invalid(message: str, *, code: str, detail: dict[str, Any] | None = None) -> ValidationFailed:
    """A 422 with the details a caller needs to find its mistake (index, items)."""
    error = ValidationFailed(message, code=code)
    error.detail.update(detail or {})
    return error


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    DataType.string: (str,),
    DataType.integer: (int,),
    DataType.decimal: (int, float, str),
    DataType.date: (str,),
    DataType.datetime: (str,),
    DataType.boolean: (bool,),
    DataType.binary: (str,),
}


def _item_types(topic: Topic) -> dict[str, str]:
    return {
        str(i["field"]): str(i.get("data_type") or DataType.string)
        for i in topic.data.get("items", [])
    }


def _key_item(topic: Topic) -> str | None:
    keys = [str(i["field"]) for i in topic.data.get("items", []) if i.get("is_key")]
    return keys[0] if len(keys) == 1 else None


def _check_record(index: int, event: ChangeEvent, types: dict[str, str], key: str | None) -> None:
    """The record holds only the topic's items, each of its declared type, and its key
    item (when it has one) equals the event's key."""
    if event.record is None:
        if event.kind != "deleted":
            raise _invalid(
                f"events[{index}]: a {event.kind!r} change needs the record after the change",
                code="record_required",
                detail={"index": index},
            )
        return
    unknown = sorted(set(event.record) - set(types))
    if unknown:
        raise _invalid(
            f"events[{index}]: not items of the topic: {', '.join(unknown[:10])}",
            code="unknown_item",
            detail={"index": index, "items": unknown[:50]},
        )
    for field, value in event.record.items():
        wanted = _JSON_TYPES.get(types[field], (str,))
        ok = value is None or (
            isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted)
        )
        if not ok:
            raise _invalid(
                f"events[{index}].record.{field}: expected {types[field]}, "
                f"got {type(value).__name__}",
                code="bad_item_value",
                detail={"index": index, "item": field, "data_type": types[field]},
            )
    if key is not None and key in event.record and str(event.record[key]) != event.key:
        raise _invalid(
            f"events[{index}]: record.{key} differs from the event's key",
            code="key_mismatch",
            detail={"index": index, "item": key},
        )


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
            raise _invalid(
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


#: First key of the transaction-level advisory lock a publication takes on PostgreSQL (the
#: second is the topic's hash): an arbitrary constant that names this use of the lock.
_PUBLISH_LOCK = 0x0D15_7B1E


def _publish_in_id_order(session: Session, resource_code: str) -> None:
    """Make a topic's events visible in id order (on PostgreSQL; SQLite has one writer).

    Delivery moves a subscription's cursor past the highest id it read. PostgreSQL hands
    out ids when rows are inserted but shows them when their transaction commits: a
    publication given id 101 that commits after another one's 102 was read would be behind
    the cursor already, never delivered. A transaction-level advisory lock per topic, held
    from before the INSERT until commit, makes the next publication of the topic take its
    ids only after this one is visible. Two topics whose hashes collide merely wait for
    each other.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(select(func.pg_advisory_xact_lock(_PUBLISH_LOCK, func.hashtext(resource_code))))


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
    types = _item_types(topic)
    key = _key_item(topic)
    for index, event in enumerate(events):
        _check_record(index, event, types, key)
    _publish_in_id_order(session, topic.resource_code)
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


# --- subscriptions --------------------------------------------------------------------------


def _current_grant(session: Session, consumer: str, resource_code: str) -> Grant | None:
    return session.scalar(
        select(Grant)
        .where(Grant.consumer == consumer, Grant.resource_code == resource_code)
        .order_by(Grant.id.desc())
        .limit(1)
    )


def _head(session: Session, source: str, resource_code: str | None) -> int:
    if source == Source.catalog:
        return int(session.scalar(select(func.max(Change.cursor))) or 0)
    return int(
        session.scalar(
            select(func.max(ChangeEventRow.id)).where(ChangeEventRow.resource_code == resource_code)
        )
        or 0
    )


def create_subscription(
    session: Session, body: SubscriptionCreate, caller: Principal, *, today: dt.date
) -> Subscription:
    """Validate and store a subscription; see the router for the error codes."""
    if caller.is_operator:
        raise NotPermitted(
            "the operator key cannot subscribe: call with a department's key",
            code="not_a_department",
        )
    if body.delivery == DeliveryMode.push:
        if body.endpoint is None:
            raise _invalid("a push subscription needs an endpoint", code="endpoint_required")
        if body.endpoint.scheme not in ("http", "https") or not body.endpoint.host:
            raise _invalid(
                f"the endpoint must be an http(s) URL, not {body.endpoint.scheme}:",
                code="bad_endpoint",
                detail={"scheme": body.endpoint.scheme},
            )
    elif body.endpoint is not None:
        raise _invalid("a pull subscription has no endpoint", code="endpoint_not_allowed")
    count = session.scalar(
        select(func.count()).select_from(Subscription).where(Subscription.consumer == caller.code)
    )
    if (count or 0) >= MAX_PER_CONSUMER:
        raise BadRequest(
            f"at most {MAX_PER_CONSUMER} subscriptions per department", code="too_many"
        )
    if body.source == Source.catalog:
        sub = _catalog_subscription(body, caller)
    else:
        sub = _topic_subscription(session, body, caller, today=today)
    head = _head(session, sub.source, sub.resource_code)
    if body.from_cursor is not None and sub.source == Source.topic:
        retention.check_cursor(session, sub.resource_code, body.from_cursor)
    sub.cursor = head if body.from_cursor is None else min(body.from_cursor, head)
    session.add(sub)
    session.flush()
    return sub


def _catalog_subscription(body: SubscriptionCreate, caller: Principal) -> Subscription:
    f = body.filter
    if body.topic is not None or body.items is not None:
        raise _invalid(
            "a catalog subscription names no topic and no items", code="bad_subscription"
        )
    if f.keys or f.key_prefixes or f.where:
        raise _invalid(
            "a catalog subscription filters by topics, providers and kinds only",
            code="bad_filter",
        )
    bad = [k for k in f.kinds or [] if k not in ("registered", "changed", "retired")]
    if bad:
        raise _invalid(
            f"catalog change kinds are registered, changed, retired (not {bad[0]!r})",
            code="bad_filter",
        )
    return Subscription(
        consumer=caller.code,
        source=Source.catalog.value,
        items=[],
        filter=f.model_dump(exclude_none=True),
        delivery=body.delivery.value,
        endpoint=str(body.endpoint) if body.endpoint else None,
    )


def _topic_subscription(
    session: Session, body: SubscriptionCreate, caller: Principal, *, today: dt.date
) -> Subscription:
    if body.topic is None:
        raise _invalid("a topic subscription names its topic", code="topic_required")
    if body.filter.topics or body.filter.providers:
        raise _invalid("topics and providers filter catalog subscriptions only", code="bad_filter")
    topic = get_topic_by_code(session, body.topic)
    if topic.status == TopicStatus.retired:
        raise TopicRetired(f"topic {body.topic} is retired (废置)")
    grant = _current_grant(session, caller.code, topic.resource_code)
    if grant is None or grant.status != "active" or grant.valid_until < today:
        raise NotPermitted(
            f"{caller.code} holds no current grant on {topic.resource_code}",
            code="no_grant",
        )
    if grant.delivery != "subscription":
        raise NotPermitted(
            f"the grant on {topic.resource_code} is for delivery {grant.delivery!r}; "
            "apply for delivery 'subscription' to subscribe",
            code="delivery_not_granted",
            detail={"grant_id": grant.id, "delivery": grant.delivery},
        )
    fields = set(_item_types(topic))
    granted = set(grant.items)
    items = list(dict.fromkeys(body.items)) if body.items else sorted(granted & fields)
    unknown = sorted(set(items) - fields)
    if unknown:
        raise _invalid(
            f"not items of {topic.resource_code}: {', '.join(unknown[:10])}",
            code="unknown_item",
            detail={"items": unknown[:50]},
        )
    refused = sorted(set(items) - granted)
    if refused:
        raise NotPermitted(
            f"items not granted: {', '.join(refused[:10])}",
            code="item_not_granted",
            detail={"items": refused[:50], "grant_id": grant.id},
        )
    where = body.filter.where or {}
    unknown = sorted(set(where) - fields)
    if unknown:
        raise _invalid(
            f"filter on items the topic does not have: {', '.join(unknown[:10])}",
            code="unknown_filter_item",
            detail={"items": unknown[:50]},
        )
    refused = sorted(set(where) - granted)
    if refused:
        # A filter on an item one may not read would reveal its values one guess at a time.
        raise NotPermitted(
            f"filter on items not granted: {', '.join(refused[:10])}",
            code="filter_item_not_granted",
            detail={"items": refused[:50]},
        )
    return Subscription(
        consumer=caller.code,
        source=Source.topic.value,
        resource_code=topic.resource_code,
        provider=topic.provider,
        items=items,
        filter=body.filter.model_dump(exclude_none=True),
        delivery=body.delivery.value,
        endpoint=str(body.endpoint) if body.endpoint else None,
    )


def delete_subscription(session: Session, sub: Subscription) -> None:
    """Delete it and its dead letters; acknowledged once no push to it is on its way."""
    announce(session, "narrowed")
    session.delete(sub)


def get_subscription(session: Session, sub_id: int, caller: Principal) -> Subscription:
    """The subscription, if the caller owns it (the operator sees all); 404 otherwise."""
    sub = session.get(Subscription, sub_id)
    if sub is None or (not caller.is_operator and sub.consumer != caller.code):
        raise SubscriptionNotFound(f"no subscription {sub_id}")
    return sub


def list_subscriptions(
    session: Session, caller: Principal, *, offset: int, limit: int
) -> tuple[int, list[Subscription]]:
    stmt = select(Subscription)
    if not caller.is_operator:
        stmt = stmt.where(Subscription.consumer == caller.code)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Subscription.id).offset(offset).limit(limit)).all()
    return int(total), list(rows)


def backlog(session: Session, sub: Subscription) -> int:
    """Events after the subscription's cursor (before its filter)."""
    if sub.source == Source.catalog:
        stmt = select(func.count()).select_from(Change).where(Change.cursor > sub.cursor)
    else:
        stmt = (
            select(func.count())
            .select_from(ChangeEventRow)
            .where(ChangeEventRow.resource_code == sub.resource_code)
            .where(ChangeEventRow.id > sub.cursor)
        )
    return int(session.scalar(stmt) or 0)


def subscription_out(
    session: Session, sub: Subscription, *, blocked: str | None = None
) -> SubscriptionOut:
    held = session.scalar(
        select(func.count()).select_from(DeadLetter).where(DeadLetter.subscription_id == sub.id)
    )
    return SubscriptionOut(
        id=sub.id,
        consumer=sub.consumer,
        source=Source(sub.source),
        topic=sub.resource_code,
        provider=sub.provider,
        items=list(sub.items),
        filter=Filter.model_validate(sub.filter),
        delivery=DeliveryMode(sub.delivery),
        endpoint=sub.endpoint,
        status=SubscriptionStatus(sub.status),
        cursor=sub.cursor,
        created_at=sub.created_at,
        updated_at=sub.updated_at,
        stats=SubscriptionStats(
            backlog=backlog(session, sub),
            delivered=sub.delivered,
            retried=sub.retried,
            dead_lettered=sub.dead_lettered,
            dead_letters=int(held or 0),
            attempts=sub.attempts,
            next_attempt_at=sub.next_attempt_at if sub.attempts else None,
            last_error=sub.last_error,
            last_delivered_at=sub.last_delivered_at,
            last_lag_ms=sub.last_lag_ms,
            blocked=blocked,
            replay_from=retention.replay_from(session, sub.resource_code),
        ),
    )


def set_status(session: Session, sub: Subscription, status: str) -> None:
    """Suspend or resume. A resumed subscription is due at once: what accumulated while it
    was suspended is delivered from its cursor. A suspension is acknowledged only after the
    pushes already on their way to it have finished (the revocation gate)."""
    if status != "active" and sub.status == "active":
        announce(session, "narrowed")
    sub.status = status
    sub.updated_at = utcnow()
    if status == "active":
        sub.next_attempt_at = sub.updated_at
        sub.attempts = 0
        sub.first_failed_at = None


def replay(session: Session, sub: Subscription, cursor: int) -> None:
    """Deliver again every event after ``cursor`` (not past the newest event)."""
    if sub.source == Source.topic:
        retention.check_cursor(session, sub.resource_code, cursor)
    sub.cursor = min(cursor, _head(session, sub.source, sub.resource_code))
    sub.updated_at = utcnow()
    sub.next_attempt_at = sub.updated_at
    sub.attempts = 0
    sub.first_failed_at = None


def dead_letters(
    session: Session, sub: Subscription, *, offset: int, limit: int
) -> tuple[int, list[DeadLetter]]:
    stmt = select(DeadLetter).where(DeadLetter.subscription_id == sub.id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(DeadLetter.event_id).offset(offset).limit(limit)).all()
    return int(total), list(rows)


def retry_dead_letters(session: Session, sub: Subscription, ids: Sequence[int] | None) -> int:
    """Queue dead letters (all, or those named) for another push; how many were queued."""
    if sub.delivery != DeliveryMode.push:
        raise Conflict("a pull subscription has no dead letters", code="not_push")
    stmt = (
        update(DeadLetter)
        .where(DeadLetter.subscription_id == sub.id, DeadLetter.status == "dead")
        .values(status="retry")
    )
    if ids is not None:
        stmt = stmt.where(DeadLetter.id.in_(ids))
    queued = int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
    if queued:
        sub.next_attempt_at = min(sub.next_attempt_at, utcnow())
        session.info[CHANGED] = True
    return queued


def discard_dead_letters(session: Session, sub: Subscription, ids: Sequence[int] | None) -> int:
    """Drop dead letters (all, or those named) for good; how many were dropped."""
    stmt = delete(DeadLetter).where(DeadLetter.subscription_id == sub.id)
    if ids is not None:
        stmt = stmt.where(DeadLetter.id.in_(ids))
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
