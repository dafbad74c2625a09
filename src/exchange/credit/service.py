"""Submitting, announcing, searching and counting double-publicity records.

Every query is here; the router only authenticates, scopes and audits. Lists are in
:mod:`exchange.credit.lists`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from exchange.authz.calendar import BEIJING, CalendarNotCovered, WorkingCalendar
from exchange.credit import rules
from exchange.credit.models import CreditBaseline, CreditNotice, CreditRecord
from exchange.credit.schemas import (
    NoticeAnswer,
    NoticeBatch,
    PenaltyIn,
    PermitIn,
    PublicPage,
    PublicRecord,
    RecordKind,
    SubmitAnswer,
    SubmitBatch,
    SubmitOutcome,
    SubmitResult,
    SubmittedPage,
    SubmittedRecord,
    UnitStats,
)
from exchange.db.pagination import page
from exchange.errors import NotPermitted, Unavailable, ValidationFailed
from exchange.ids import credit_code_problem, id_number_problem
from exchange.members.models import Department

#: Kinds of member unit that take administrative decisions (banks, utilities and the
#: provincial platform do not).
AUTHORITY_KINDS = frozenset({"municipal", "district", "vertical", "institution"})
CATEGORY_SEPARATOR = "、"


def require_authority(session: Session, unit: str) -> None:
    """403 unless ``unit`` is a department that makes permit or penalty decisions."""
    dept = session.get(Department, unit)
    if dept is None or dept.kind not in AUTHORITY_KINDS:
        raise NotPermitted(
            f"unit {unit!r} makes no administrative decisions: only municipal departments, "
            "districts, vertical bodies and public institutions submit double-publicity "
            "records",
            code="not_an_authority",
        )


def beijing_day(at: dt.datetime) -> dt.date:
    return at.astimezone(BEIJING).date()


def _fen(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount * 100)


def _yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(fen) / 100


class Deadlines:
    """Due instants per decision date (a batch shares a few dates), or 503 for a year no
    holiday schedule covers, as the review deadlines do."""

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar
        self._due: dict[dt.date, dt.datetime] = {}

    def __call__(self, day: dt.date) -> dt.datetime:
        due = self._due.get(day)
        if due is None:
            try:
                due = rules.due_at(self.calendar, day)
            except CalendarNotCovered as exc:
                raise Unavailable(
                    str(exc), code="calendar_not_covered", detail={"year": exc.year}
                ) from exc
            self._due[day] = due
        return due


def _check_identifiers(records: Sequence[PermitIn | PenaltyIn], today: dt.date) -> None:
    """Check digits (GB 32100, GB 11643), dates, and one decision once: 422 naming each."""
    errors: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for i, r in enumerate(records):
        where = f"records.{i}"
        for name, code in (("credit_code", r.credit_code), ("authority_code", r.authority_code)):
            if code is not None and (problem := credit_code_problem(code)):
                errors.append({"loc": f"{where}.{name}", "msg": problem})
        if r.id_number is not None and (problem := id_number_problem(r.id_number)):
            errors.append({"loc": f"{where}.id_number", "msg": problem})
        if r.decision_date > today:
            errors.append(
                {"loc": f"{where}.decision_date", "msg": f"after today ({today}, Beijing)"}
            )
        key = (r.kind, r.decision_number)
        if key in seen:
            errors.append({"loc": f"{where}.decision_number", "msg": "listed twice"})
        seen.add(key)
    if errors:
        raise ValidationFailed(
            f"{len(errors)} problem(s) in the records, first: {errors[0]['loc']}: "
            f"{errors[0]['msg']}",
            field=str(errors[0]["loc"]),
            code="invalid_record",
            errors=errors,
        )


def _row(r: PermitIn | PenaltyIn, unit: str, now: dt.datetime, due: dt.datetime) -> dict[str, Any]:
    row: dict[str, Any] = {
        "kind": r.kind,
        "submitter": unit,
        "decision_number": r.decision_number,
        "party_kind": r.party_kind.value,
        "party_name": r.party_name,
        "credit_code": r.credit_code,
        "legal_representative": r.legal_representative,
        "id_number": r.id_number,
        "legal_basis": r.legal_basis,
        "content": r.content,
        "decision_date": r.decision_date,
        "authority": r.authority,
        "authority_code": r.authority_code,
        "submitted_at": now,
        "due_at": due,
        "late": now > due,
        "violation_facts": None,
        "fine_fen": None,
        "confiscated_fen": None,
        "major": False,
        "licence_number": None,
        "valid_from": None,
        "valid_until": None,
        "public_until": None,
    }
    if isinstance(r, PermitIn):
        row.update(
            category=r.category.value,
            licence_number=r.licence_number,
            valid_from=r.valid_from,
            valid_until=r.valid_until,
        )
    else:
        fine, confiscated = _fen(r.fine_amount), _fen(r.confiscated_amount)
        categories = frozenset(c.value for c in r.categories)
        penalty = rules.Penalty(
            0, r.decision_date, categories, (fine or 0) + (confiscated or 0), r.major
        )
        row.update(
            category=CATEGORY_SEPARATOR.join(c.value for c in r.categories),
            violation_facts=r.violation_facts,
            fine_fen=fine,
            confiscated_fen=confiscated,
            major=r.major,
            public_until=rules.publicity_until(penalty),
        )
    return row


def submit(
    session: Session, unit: str, batch: SubmitBatch, *, now: dt.datetime, deadlines: Deadlines
) -> SubmitAnswer:
    """Publish a unit's decisions. A decision number the unit already published is a
    ``duplicate`` (kept as first published: corrections are not modelled), so a retried
    batch is safe."""
    records = batch.records
    _check_identifiers(records, beijing_day(now))
    keys = [(r.kind, r.decision_number) for r in records]
    existing = {
        (row.kind, row.decision_number): row
        for row in session.execute(
            select(
                CreditRecord.id,
                CreditRecord.kind,
                CreditRecord.decision_number,
                CreditRecord.due_at,
                CreditRecord.late,
            ).where(
                CreditRecord.submitter == unit,
                CreditRecord.decision_number.in_({n for _, n in keys}),
            )
        )
    }
    fresh = [r for r in records if (r.kind, r.decision_number) not in existing]
    rows = [_row(r, unit, now, deadlines(r.decision_date)) for r in fresh]
    ids: list[int] = []
    if rows:
        ids = list(
            session.scalars(
                insert(CreditRecord).returning(CreditRecord.id, sort_by_parameter_order=True),
                rows,
            )
        )
        _link_notices(
            session,
            unit,
            [(r["kind"], r["decision_number"], i) for r, i in zip(rows, ids, strict=True)],
        )
    new = {(r["kind"], r["decision_number"]): (i, r) for r, i in zip(rows, ids, strict=True)}
    results: list[SubmitResult] = []
    for key in keys:
        if key in new:
            rid, row = new[key]
            results.append(
                SubmitResult(
                    kind=RecordKind(key[0]),
                    decision_number=key[1],
                    id=rid,
                    outcome=SubmitOutcome.published,
                    due_at=row["due_at"],
                    late=row["late"],
                )
            )
        else:
            old = existing[key]
            results.append(
                SubmitResult(
                    kind=RecordKind(key[0]),
                    decision_number=key[1],
                    id=old.id,
                    outcome=SubmitOutcome.duplicate,
                    due_at=old.due_at,
                    late=old.late,
                )
            )
    return SubmitAnswer(
        published=len(rows),
        duplicates=len(records) - len(rows),
        late=sum(1 for r in rows if r["late"]),
        results=results,
    )


def _link_notices(session: Session, unit: str, published: list[tuple[str, str, int]]) -> None:
    """Mark the announced decisions among ``published`` as published."""
    table = cast("Table", CreditNotice.__table__)
    session.connection().execute(
        update(table)
        .where(
            table.c.submitter == unit,
            table.c.kind == bindparam("b_kind"),
            table.c.decision_number == bindparam("b_number"),
            table.c.record_id.is_(None),
        )
        .values(record_id=bindparam("b_id")),
        [{"b_kind": k, "b_number": n, "b_id": i} for k, n, i in published],
    )


def announce(
    session: Session, unit: str, batch: NoticeBatch, *, now: dt.datetime, deadlines: Deadlines
) -> NoticeAnswer:
    """Record decisions the unit made (its business system's list of what is due); one
    already announced is left as it was."""
    today = beijing_day(now)
    errors = [
        {"loc": f"notices.{i}.decision_date", "msg": f"after today ({today}, Beijing)"}
        for i, n in enumerate(batch.notices)
        if n.decision_date > today
    ]
    if errors:
        raise ValidationFailed(
            f"notices.{errors[0]['loc']}: {errors[0]['msg']}",
            field=str(errors[0]["loc"]),
            code="invalid_notice",
            errors=errors,
        )
    wanted = {(n.kind.value, n.decision_number): n for n in batch.notices}
    known = {
        (k, n)
        for k, n in session.execute(
            select(CreditNotice.kind, CreditNotice.decision_number).where(
                CreditNotice.submitter == unit,
                CreditNotice.decision_number.in_({k[1] for k in wanted}),
            )
        )
    }
    published = {
        (k, n): i
        for k, n, i in session.execute(
            select(CreditRecord.kind, CreditRecord.decision_number, CreditRecord.id).where(
                CreditRecord.submitter == unit,
                CreditRecord.decision_number.in_({k[1] for k in wanted}),
            )
        )
    }
    rows = [
        {
            "submitter": unit,
            "kind": key[0],
            "decision_number": key[1],
            "decision_date": n.decision_date,
            "due_at": deadlines(n.decision_date),
            "noticed_at": now,
            "record_id": published.get(key),
        }
        for key, n in wanted.items()
        if key not in known
    ]
    if rows:
        session.execute(insert(CreditNotice), rows)
    return NoticeAnswer(recorded=len(rows), already_known=len(batch.notices) - len(rows))


# --- reading ---------------------------------------------------------------------------------


def mask_id(id_number: str | None) -> str | None:
    """``440106199001010014`` → ``440106********0014``."""
    if id_number is None:
        return None
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


def _common(row: CreditRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "submitter": row.submitter,
        "decision_number": row.decision_number,
        "party_kind": row.party_kind,
        "party_name": row.party_name,
        "credit_code": row.credit_code,
        "legal_representative": row.legal_representative,
        "id_number_masked": mask_id(row.id_number),
        "category": row.category,
        "legal_basis": row.legal_basis,
        "content": row.content,
        "violation_facts": row.violation_facts,
        "fine_amount": _yuan(row.fine_fen),
        "confiscated_amount": _yuan(row.confiscated_fen),
        "licence_number": row.licence_number,
        "valid_from": row.valid_from,
        "valid_until": row.valid_until,
        "decision_date": row.decision_date,
        "authority": row.authority,
        "authority_code": row.authority_code,
        "published_at": row.submitted_at,
    }


def public_out(row: CreditRecord) -> PublicRecord:
    return PublicRecord(**_common(row))


def submitted_out(row: CreditRecord) -> SubmittedRecord:
    return SubmittedRecord(
        **_common(row), id_number=row.id_number, major=row.major, due_at=row.due_at, late=row.late
    )


def search_public(
    session: Session,
    *,
    today: dt.date,
    credit_code: str | None,
    name: str | None,
    kind: RecordKind | None,
    offset: int,
    limit: int,
) -> PublicPage:
    """Published records about a party, newest decision first, as the public sees them:
    penalties past their publicity period are left out."""
    conds = [or_(CreditRecord.public_until.is_(None), CreditRecord.public_until >= today)]
    if credit_code is not None:
        conds.append(CreditRecord.credit_code == credit_code)
    if name is not None:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conds.append(CreditRecord.party_name.like(f"%{escaped}%", escape="\\"))
    if kind is not None:
        conds.append(CreditRecord.kind == kind.value)
    total, rows = page(
        session,
        CreditRecord,
        CreditRecord.id,
        conds,
        order=(CreditRecord.decision_date.desc(), CreditRecord.id.desc()),
        offset=offset,
        limit=limit,
    )
    return PublicPage(items=[public_out(r) for r in rows], total=total, offset=offset, limit=limit)


def list_submitted(
    session: Session,
    *,
    unit: str | None,
    late: bool | None,
    kind: RecordKind | None,
    offset: int,
    limit: int,
) -> SubmittedPage:
    """A unit's own submissions (``unit`` None: every unit's, for the operator)."""
    conds = []
    if unit is not None:
        conds.append(CreditRecord.submitter == unit)
    if late is not None:
        conds.append(CreditRecord.late.is_(late))
    if kind is not None:
        conds.append(CreditRecord.kind == kind.value)
    total, rows = page(
        session,
        CreditRecord,
        CreditRecord.id,
        conds,
        order=(CreditRecord.id.desc(),),
        offset=offset,
        limit=limit,
    )
    return SubmittedPage(
        items=[submitted_out(r) for r in rows], total=total, offset=offset, limit=limit
    )


def published_after(session: Session, after: int, limit: int) -> list[CreditRecord]:
    """Published records in publication order after the cursor ``after`` (a record id):
    the feed the provincial platform reads upward (上报), resuming where it stopped."""
    return list(
        session.scalars(
            select(CreditRecord)
            .where(CreditRecord.id > after)
            .order_by(CreditRecord.id)
            .limit(limit)
        )
    )


# --- statistics ------------------------------------------------------------------------------


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


def penalties_of(session: Session, codes: Sequence[str], since: dt.date) -> list[CreditRecord]:
    """Penalty records about ``codes`` decided on or after ``since`` (the list rules' window)."""
    return list(
        session.scalars(
            select(CreditRecord).where(
                CreditRecord.credit_code.in_(codes),
                CreditRecord.kind == "penalty",
                CreditRecord.decision_date >= since,
            )
        )
    )


__all__ = [
    "AUTHORITY_KINDS",
    "Deadlines",
    "announce",
    "list_submitted",
    "mask_id",
    "penalties_of",
    "public_out",
    "published_after",
    "require_authority",
    "search_public",
    "stats",
    "submit",
    "submitted_out",
]
