"""Reading published records: as the public sees them (identity numbers masked,
penalties past their publicity period left out), as their unit does, the feed upward to
the province, and the penalties the list rules weigh."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from exchange.credit.models import CreditRecord
from exchange.credit.schemas import (
    PublicPage,
    PublicRecord,
    RecordKind,
    SubmittedPage,
    SubmittedRecord,
)
from exchange.db.pagination import page

__all__ = [
    "list_submitted",
    "mask_id",
    "penalties_of",
    "public_out",
    "published_after",
    "search_public",
    "submitted_out",
]


def _yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(fen) / 100


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
