"""The catalog's change feed: one row per registration, change and retirement, in order.

Every write appends to it in the same transaction, so a subscriber that follows
``/api/v1/catalog/changes`` never sees a change the catalog does not have; on PostgreSQL
rows become visible in cursor order (:mod:`exchange.db.feeds`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.catalog.models import Change, Topic
from exchange.catalog.schemas import ChangeOut
from exchange.db.feeds import Feed, in_cursor_order

__all__ = ["changes_after", "last_cursor", "record"]


def record(
    session: Session, kind: str, topic: Topic, by: str, changes: dict[str, Any], at: dt.datetime
) -> None:
    in_cursor_order(session, Feed.CATALOG_CHANGES)
    session.add(
        Change(
            at=at,
            kind=kind,
            topic_id=topic.id,
            resource_code=topic.resource_code,
            version=topic.version,
            by=by,
            changes=changes,
        )
    )


def changes_after(session: Session, cursor: int, limit: int) -> tuple[list[ChangeOut], int]:
    rows = session.scalars(
        select(Change).where(Change.cursor > cursor).order_by(Change.cursor).limit(limit)
    ).all()
    out = [
        ChangeOut(
            cursor=r.cursor,
            at=r.at,
            kind=r.kind,
            resource_code=r.resource_code,
            version=r.version,
            by=r.by,
            changes=r.changes,
        )
        for r in rows
    ]
    return out, (rows[-1].cursor if rows else cursor)


def last_cursor(session: Session) -> int:
    return session.scalar(select(func.max(Change.cursor))) or 0
