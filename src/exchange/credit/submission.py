"""Submitting double-publicity records: who may (units that take administrative
decisions), what is checked (check digits, dates, one decision once), how a record is
stored (amounts in fen, the penalty's publicity period, late or on time), and the
announced decisions a submission fulfils."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from exchange.credit import rules
from exchange.credit.deadlines import Deadlines
from exchange.credit.models import CreditNotice, CreditRecord
from exchange.credit.schemas import (
    PenaltyIn,
    PermitIn,
    RecordKind,
    SubmitAnswer,
    SubmitBatch,
    SubmitOutcome,
    SubmitResult,
)
from exchange.days import beijing_day
from exchange.errors import NotPermitted, ValidationFailed
from exchange.ids import credit_code_problem, id_number_problem
from exchange.members.models import Department

__all__ = ["AUTHORITY_KINDS", "CATEGORY_SEPARATOR", "require_authority", "submit"]

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


def _fen(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount * 100)


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
