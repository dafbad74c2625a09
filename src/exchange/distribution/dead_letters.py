"""Dead letters: events a push could not deliver, listed, pushed again or dropped."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from exchange.db.base import utcnow
from exchange.distribution.models import DeadLetter, Subscription
from exchange.distribution.publishing import CHANGED
from exchange.distribution.schemas import DeliveryMode
from exchange.errors import Conflict

__all__ = ["dead_letters", "discard_dead_letters", "retry_dead_letters"]


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
