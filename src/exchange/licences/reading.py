"""Reading licences: one by number, the lists an issuer or a holder sees, the status a
licence has on a given day (valid, expired once the platform's today passes
``valid_until``, revoked), and a licence as a record of the e-licence topic."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.db.pagination import page
from exchange.errors import NotFound
from exchange.licences.models import Licence, LicenceType
from exchange.licences.schemas import LicenceOut
from exchange.members.models import Department

__all__ = [
    "LicenceNotFound",
    "get_licence",
    "holder_licences",
    "list_licences",
    "status_of",
    "to_out",
    "topic_record",
]


class LicenceNotFound(NotFound):
    code = "licence_not_found"


def get_licence(session: Session, number: str) -> Licence:
    found = session.scalar(select(Licence).where(Licence.number == number))
    if found is None:
        raise LicenceNotFound(f"no licence {number!r} was issued through the platform")
    return found


def status_of(licence: Licence, today: dt.date) -> str:
    if licence.status == "revoked":
        return "revoked"
    if licence.valid_until is not None and today > licence.valid_until:
        return "expired"
    return "valid"


def to_out(session: Session, licence: Licence, today: dt.date) -> LicenceOut:
    lt = session.get(LicenceType, licence.type_code)
    return LicenceOut(
        number=licence.number,
        type_code=licence.type_code,
        type_name=lt.name if lt is not None else licence.type_code,
        issuer=licence.issuer,
        holder_kind=licence.holder_kind,
        holder_id=licence.holder_id,
        holder_name=licence.holder_name,
        content=licence.content,
        issued_on=licence.issued_on,
        valid_until=licence.valid_until,
        issued_at=licence.issued_at,
        status=status_of(licence, today),
        revoked_at=licence.revoked_at,
        revoke_reason=licence.revoke_reason,
        code=licence.code,
    )


def list_licences(
    session: Session,
    *,
    issuer: str | None,
    type_code: str | None,
    holder_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Licence], int]:
    conds: list[Any] = []
    if issuer is not None:
        conds.append(Licence.issuer == issuer)
    if type_code is not None:
        conds.append(Licence.type_code == type_code)
    if holder_id is not None:
        conds.append(Licence.holder_id == holder_id)
    total, rows = page(session, Licence, Licence.id, conds, offset=offset, limit=limit)
    return list(rows), total


def holder_licences(session: Session, holder_id: str, type_code: str | None) -> list[Licence]:
    conds = [Licence.holder_id == holder_id]
    if type_code is not None:
        conds.append(Licence.type_code == type_code)
    return list(session.scalars(select(Licence).where(*conds).order_by(Licence.id).limit(1000)))


def topic_record(session: Session, licence: Licence, today: dt.date) -> dict[str, Any]:
    """A licence as a record of the e-licence topic (电子证照信息, 105001001): its items."""
    lt = session.get(LicenceType, licence.type_code)
    issuer = session.get(Department, licence.issuer)
    return {
        "licence_number": licence.number,
        "licence_type": lt.name if lt is not None else licence.type_code,
        "holder_name": licence.holder_name,
        # The topic's holder identifier: the credit code of a legal person, the resident ID
        # number of a person.
        "holder_credit_code": licence.holder_id,
        "issuing_authority": issuer.name if issuer is not None else licence.issuer,
        "issued_on": licence.issued_on.isoformat(),
        "valid_until": licence.valid_until.isoformat() if licence.valid_until else "长期",
        "status": {"valid": "有效", "revoked": "注销", "expired": "过期"}[
            status_of(licence, today)
        ],
    }
