"""Publication statistics per unit: published, late, missing (announced, overdue and not
published) and pending, with the profile's baseline counts added, and their rates."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from exchange.credit.models import CreditBaseline, CreditNotice, CreditRecord
from exchange.credit.schemas import UnitStats

__all__ = ["stats"]


def _rate(part: int, whole: int) -> float:
    return 1.0 if whole == 0 else round(part / whole, 6)


def _stats(
    unit: str, permits: int, penalties: int, late: int, missing: int, pending: int
) -> UnitStats:
    published = permits + penalties
    due = published + missing
    return UnitStats(
        unit=unit,
        permits=permits,
        penalties=penalties,
        published=published,
        late=late,
        missing=missing,
        pending=pending,
        publication_rate=_rate(published, due),
        on_time_rate=_rate(published - late, due),
    )


def stats(
    session: Session, *, now: dt.datetime, unit: str | None = None
) -> tuple[list[UnitStats], UnitStats, int]:
    """Per-unit figures (the profile's baseline counts added), their total and how many
    units submit. ``unit``: that unit's row only; the total and the number of units are
    every unit's all the same (public figures)."""
    counts: dict[str, list[int]] = {}

    def slot(u: str) -> list[int]:
        return counts.setdefault(u, [0, 0, 0, 0, 0])

    for b in session.scalars(select(CreditBaseline)):
        s = slot(b.unit)
        s[0] += b.permits
        s[1] += b.penalties
        s[2] += b.late
        s[3] += b.missing
    for submitter, permits, penalties, late in session.execute(
        select(
            CreditRecord.submitter,
            func.sum(case((CreditRecord.kind == "permit", 1), else_=0)),
            func.sum(case((CreditRecord.kind == "penalty", 1), else_=0)),
            func.sum(case((CreditRecord.late.is_(True), 1), else_=0)),
        ).group_by(CreditRecord.submitter)
    ):
        s = slot(submitter)
        s[0] += int(permits or 0)
        s[1] += int(penalties or 0)
        s[2] += int(late or 0)
    for submitter, missing, pending in session.execute(
        select(
            CreditNotice.submitter,
            func.sum(case((CreditNotice.due_at < now, 1), else_=0)),
            func.sum(case((CreditNotice.due_at >= now, 1), else_=0)),
        )
        .where(CreditNotice.record_id.is_(None))
        .group_by(CreditNotice.submitter)
    ):
        s = slot(submitter)
        s[3] += int(missing or 0)
        s[4] += int(pending or 0)
    rows = [_stats(u, *v) for u, v in sorted(counts.items())]
    total = _stats("*", *(sum(v[i] for v in counts.values()) for i in range(5)))
    submitting = sum(1 for r in rows if r.published or r.missing)
    if unit is not None:
        rows = [r for r in rows if r.unit == unit] or [_stats(unit, 0, 0, 0, 0, 0)]
    return rows, total, submitting
