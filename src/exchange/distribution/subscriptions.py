"""Subscriptions: who may subscribe to what (a current grant with delivery
``subscription``), with which items, filter and delivery; reading, suspending, resuming,
replaying and deleting them, and what a subscription's state reads as."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.authn import Principal
from exchange.authz.models import Grant
from exchange.catalog.models import Change
from exchange.catalog.schemas import TopicStatus
from exchange.catalog.service import TopicRetired, get_topic_by_code
from exchange.db.base import utcnow
from exchange.db.freshness import announce
from exchange.distribution import retention
from exchange.distribution.errors import SubscriptionNotFound, invalid
from exchange.distribution.models import ChangeEventRow, DeadLetter, Subscription
from exchange.distribution.records import item_types
from exchange.distribution.schemas import (
    DeliveryMode,
    Filter,
    Source,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionStats,
    SubscriptionStatus,
)
from exchange.errors import BadRequest, NotPermitted

__all__ = [
    "MAX_PER_CONSUMER",
    "backlog",
    "create_subscription",
    "delete_subscription",
    "get_subscription",
    "list_subscriptions",
    "replay",
    "set_status",
    "subscription_out",
]

#: Subscriptions one consumer may hold
MAX_PER_CONSUMER = 1_000


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
            raise invalid("a push subscription needs an endpoint", code="endpoint_required")
        if body.endpoint.scheme not in ("http", "https") or not body.endpoint.host:
            raise invalid(
                f"the endpoint must be an http(s) URL, not {body.endpoint.scheme}:",
                code="bad_endpoint",
                detail={"scheme": body.endpoint.scheme},
            )
    elif body.endpoint is not None:
        raise invalid("a pull subscription has no endpoint", code="endpoint_not_allowed")
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
        raise invalid("a catalog subscription names no topic and no items", code="bad_subscription")
    if f.keys or f.key_prefixes or f.where:
        raise invalid(
            "a catalog subscription filters by topics, providers and kinds only",
            code="bad_filter",
        )
    bad = [k for k in f.kinds or [] if k not in ("registered", "changed", "retired")]
    if bad:
        raise invalid(
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
        raise invalid("a topic subscription names its topic", code="topic_required")
    if body.filter.topics or body.filter.providers:
        raise invalid("topics and providers filter catalog subscriptions only", code="bad_filter")
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
    fields = set(item_types(topic))
    granted = set(grant.items)
    items = list(dict.fromkeys(body.items)) if body.items else sorted(granted & fields)
    _known_and_granted(
        items,
        fields,
        granted,
        unknown=("unknown_item", f"not items of {topic.resource_code}"),
        refused=("item_not_granted", "items not granted"),
        detail={"grant_id": grant.id},
    )
    # A filter on an item one may not read would reveal its values one guess at a time.
    _known_and_granted(
        body.filter.where or {},
        fields,
        granted,
        unknown=("unknown_filter_item", "filter on items the topic does not have"),
        refused=("filter_item_not_granted", "filter on items not granted"),
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


def _known_and_granted(
    names: Iterable[str],
    fields: set[str],
    granted: set[str],
    *,
    unknown: tuple[str, str],
    refused: tuple[str, str],
    detail: dict[str, Any] | None = None,
) -> None:
    """Refuse ``names`` that are not items of the topic (422) or not granted (403), each
    refusal as its ``(code, message)``; ``detail`` is added to the 403's."""
    missing = sorted(set(names) - fields)
    if missing:
        raise invalid(
            f"{unknown[1]}: {', '.join(missing[:10])}",
            code=unknown[0],
            detail={"items": missing[:50]},
        )
    withheld = sorted(set(names) - granted)
    if withheld:
        raise NotPermitted(
            f"{refused[1]}: {', '.join(withheld[:10])}",
            code=refused[0],
            detail={"items": withheld[:50], **(detail or {})},
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
