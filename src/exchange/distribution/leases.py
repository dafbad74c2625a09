"""Leases: a process leases a push subscription before pushing to it, so that processes
share subscriptions without double work.

The claim selects due subscriptions ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and sets the
lease only where none is live (checked by the UPDATE itself, which also covers SQLite). A
lease is renewed with every batch and lapses when its holder dies, so another process
takes over.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, exists, or_, select, update

from exchange.catalog.models import Change
from exchange.db.base import utcnow
from exchange.db.engine import Database
from exchange.distribution.models import ChangeEventRow, DeadLetter, Subscription
from exchange.distribution.schemas import Source

__all__ = ["claim", "release", "release_all"]


def claim(db: Database, owner: str, limit: int, lease_seconds: float) -> list[int]:
    """Lease up to ``limit`` push subscriptions that have something due."""
    now = utcnow()
    pending = or_(
        and_(
            Subscription.source == Source.topic.value,
            exists().where(
                ChangeEventRow.resource_code == Subscription.resource_code,
                ChangeEventRow.id > Subscription.cursor,
            ),
        ),
        and_(
            Subscription.source == Source.catalog.value,
            exists().where(Change.cursor > Subscription.cursor),
        ),
        exists().where(DeadLetter.subscription_id == Subscription.id, DeadLetter.status == "retry"),
    )
    free = or_(Subscription.lease_until.is_(None), Subscription.lease_until < now)
    with db.session() as session:
        ids = list(
            session.scalars(
                select(Subscription.id)
                .where(
                    Subscription.status == "active",
                    Subscription.delivery == "push",
                    Subscription.next_attempt_at <= now,
                    free,
                    pending,
                )
                .order_by(Subscription.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return []
        lease = now + dt.timedelta(seconds=lease_seconds)
        # The lease is set only where none is live: the UPDATE decides, not the SELECT
        # (SQLite has no row locks; two processes may select the same rows there).
        taken = session.execute(
            update(Subscription)
            .where(Subscription.id.in_(ids), free)
            .values(lease_owner=owner, lease_until=lease)
            .returning(Subscription.id)
        )
        return [int(i) for i in taken.scalars()]


def release_all(db: Database, owner: str) -> None:
    """Give back every lease ``owner`` holds (another process takes over at once)."""
    with db.session() as session:
        session.execute(
            update(Subscription)
            .where(Subscription.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


def release(db: Database, owner: str, sub_id: int) -> None:
    """Give back the lease ``owner`` holds on one subscription."""
    with db.session() as session:
        session.execute(
            update(Subscription)
            .where(Subscription.id == sub_id, Subscription.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )
