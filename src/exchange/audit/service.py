"""Reading the audit log: entries for the API and the CLI, and the exchanged-records
statistics.

The log itself is written by :mod:`exchange.audit.writer` (through
:mod:`exchange.audit.chain`) and checked by :mod:`exchange.audit.verify`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Select, func, or_, select, text
from sqlalchemy.orm import Session

from exchange.audit.models import NOT_OK, AuditEntry, AuditVolume
from exchange.audit.schemas import AuditEntryOut, StatsOut, Volume, VolumeStats
from exchange.db.engine import Database


def _walk(db: Database, chunk: int = 5000) -> Iterator[AuditEntry]:
    after = 0
    while True:
        with db.sessions() as session:
            rows = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq > after)
                .order_by(AuditEntry.seq)
                .limit(chunk)
            ).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def to_out(row: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut.model_validate(row, from_attributes=True)


def entries_query(
    *,
    department: str | None = None,
    consumer: str | None = None,
    provider: str | None = None,
    resource_code: str | None = None,
    request_id: str | None = None,
    outcome: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> Select[AuditEntry]:
    """The statement :func:`entries` runs."""
    stmt = select(AuditEntry).where(AuditEntry.seq > after)
    if department is not None:
        stmt = stmt.where((AuditEntry.consumer == department) | (AuditEntry.provider == department))
    for column, value in (
        (AuditEntry.consumer, consumer),
        (AuditEntry.provider, provider),
        (AuditEntry.resource_code, resource_code),
        (AuditEntry.request_id, request_id),
        (AuditEntry.outcome, outcome),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if outcome is not None and outcome != "ok":
        # Implied by the filter above, but spelled as the partial index's own condition
        # (a literal, not a parameter) so both planners can prove the index usable.
        stmt = stmt.where(text(NOT_OK))
    return stmt.order_by(AuditEntry.seq).limit(limit)


def entries(
    session: Session,
    *,
    department: str | None = None,
    consumer: str | None = None,
    provider: str | None = None,
    resource_code: str | None = None,
    request_id: str | None = None,
    outcome: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[AuditEntry]:
    """Entries in chain order; ``department`` limits to those it consumed or provided."""
    stmt = entries_query(
        department=department,
        consumer=consumer,
        provider=provider,
        resource_code=resource_code,
        request_id=request_id,
        outcome=outcome,
        after=after,
        limit=limit,
    )
    return list(session.scalars(stmt))


def _volume(session: Session, day: dt.date | None, department: str | None) -> VolumeStats:
    def grouped(column: Any) -> dict[str, Volume]:
        stmt = select(column, func.sum(AuditVolume.calls), func.sum(AuditVolume.records)).group_by(
            column
        )
        if day is not None:
            stmt = stmt.where(AuditVolume.day == day)
        if department is not None:
            stmt = stmt.where(
                or_(AuditVolume.consumer == department, AuditVolume.provider == department)
            )
        return {
            str(key): Volume(calls=int(calls or 0), records=int(records or 0))
            for key, calls, records in session.execute(stmt)
        }

    by_provider = grouped(AuditVolume.provider)
    return VolumeStats(
        records=sum(v.records for v in by_provider.values()),
        calls=sum(v.calls for v in by_provider.values()),
        by_provider=by_provider,
        by_consumer=grouped(AuditVolume.consumer),
        by_topic=grouped(AuditVolume.resource_code),
    )


def stats(session: Session, today: dt.date, department: str | None = None) -> StatsOut:
    """Records exchanged today and in total, by department and topic; with ``department``,
    only the exchanges it took part in (as consumer or provider)."""
    return StatsOut(
        day=today,
        today=_volume(session, today, department),
        total=_volume(session, None, department),
    )


def count(session: Session) -> int:
    return int(session.scalar(select(func.count(AuditEntry.seq))) or 0)


def fetch_all(db: Database) -> Iterable[AuditEntry]:
    """Every entry in chain order (for export and the CLI)."""
    return _walk(db)
