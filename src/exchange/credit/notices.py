"""Announcing decisions (公示 notices): a unit's business system lists the decisions it
made, so that one not published by its due date counts as missing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from exchange.credit.deadlines import Deadlines
from exchange.credit.models import CreditNotice, CreditRecord
from exchange.credit.schemas import NoticeAnswer, NoticeBatch
from exchange.days import beijing_day
from exchange.errors import ValidationFailed

__all__ = ["announce"]


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
