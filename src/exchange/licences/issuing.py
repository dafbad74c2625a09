"""Issuing and revoking, the issuing department's acts.

* only the type's issuing department issues a licence of it, and only an online type;
* the holder is identified by a well-formed resident ID number (person types) or unified
  social credit code (legal-person types);
* the items are checked against the type: no unknown item, every required one present,
  integers as integers, dates as real YYYY-MM-DD days;
* ``valid_until`` is the day before the anniversary ``validity_years`` after issue (None for
  long-term types);
* a number is the type's next sequence number, taken by one atomic increment;
* only the issuing department revokes, once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from exchange import ids
from exchange.authn import Principal
from exchange.errors import Conflict, NotPermitted, ValidationFailed
from exchange.licences.models import Licence, LicenceType
from exchange.licences.numbers import make_number
from exchange.licences.reading import get_licence
from exchange.licences.schemas import IssueRequest
from exchange.licences.signing import LicenceSigner
from exchange.licences.token import Claims, content_digest
from exchange.licences.type_catalog import get_type
from exchange.members.models import Department

__all__ = ["MAX_TEXT", "check_content", "issue", "revoke"]

MAX_TEXT = 500


def _valid_until(issued_on: dt.date, years: int | None) -> dt.date | None:
    if years is None:
        return None
    try:
        anniversary = issued_on.replace(year=issued_on.year + years)
    except ValueError:  # 29 February
        anniversary = dt.date(issued_on.year + years, 3, 1)
    return anniversary - dt.timedelta(days=1)


def check_content(lt: LicenceType, content: dict[str, Any]) -> dict[str, Any]:
    """The items, checked against the type (422 naming the item otherwise)."""
    spec = {i["field"]: i for i in lt.items}
    out: dict[str, Any] = {}
    for name, value in content.items():
        item = spec.get(name)
        if item is None:
            raise ValidationFailed(
                f"content.{name}: {lt.name} has no such item (its items: {', '.join(spec)})",
                field=f"content.{name}",
                code="unknown_item",
            )
        kind = item["data_type"]
        if kind == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValidationFailed(
                    f"content.{name}: an integer", field=f"content.{name}", code="bad_item"
                )
        elif not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            raise ValidationFailed(
                f"content.{name}: a non-empty text of at most {MAX_TEXT} characters",
                field=f"content.{name}",
                code="bad_item",
            )
        elif kind == "date":
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise ValidationFailed(
                    f"content.{name}: a date YYYY-MM-DD", field=f"content.{name}", code="bad_item"
                ) from None
            if len(value) != 10:
                raise ValidationFailed(
                    f"content.{name}: a date YYYY-MM-DD", field=f"content.{name}", code="bad_item"
                )
        out[name] = value
    missing = [f for f, i in spec.items() if i["required"] and f not in out]
    if missing:
        raise ValidationFailed(
            f"content: required items missing: {', '.join(missing)}",
            field=f"content.{missing[0]}",
            code="missing_item",
        )
    return out


def _holder_problem(kind: str, holder_id: str) -> str | None:
    if kind == "person":
        return ids.id_number_problem(holder_id)
    return ids.credit_code_problem(holder_id)


def issue(
    session: Session,
    signer: LicenceSigner,
    principal: Principal,
    req: IssueRequest,
    *,
    now: dt.datetime,
    today: dt.date,
) -> tuple[Licence, bool]:
    """(licence, created): issue one licence, or return the one already issued under the
    same ``external_ref`` by the same department."""
    lt = get_type(session, req.type_code)
    if principal.is_operator or principal.code != lt.issuer:
        raise NotPermitted(f"only {lt.issuer} issues {lt.name} ({lt.code})", code="not_the_issuer")
    if req.external_ref is not None:
        existing = session.scalar(
            select(Licence).where(
                Licence.issuer == principal.code, Licence.external_ref == req.external_ref
            )
        )
        if existing is not None:
            if existing.type_code != lt.code or existing.holder_id != req.holder_id:
                raise Conflict(
                    f"reference {req.external_ref!r} already issued {existing.number} "
                    "for another type or holder",
                    code="external_ref_taken",
                )
            return existing, False
    if not lt.online:
        raise Conflict(
            f"{lt.name} ({lt.code}) is not online: it is not issued through the platform",
            code="licence_type_offline",
        )
    problem = _holder_problem(lt.holder_kind, req.holder_id)
    if problem is not None:
        what = "resident ID number" if lt.holder_kind == "person" else "credit code"
        raise ValidationFailed(
            f"holder_id: {lt.name} is held by a {lt.holder_kind.replace('_', ' ')}, "
            f"identified by a {what}: {problem}",
            field="holder_id",
            code="bad_holder",
        )
    content = check_content(lt, req.content)
    issued_on = req.issued_on or today
    if issued_on > today:
        raise ValidationFailed(
            "issued_on: a licence cannot be issued on a later day than today", field="issued_on"
        )
    issuer = session.get(Department, lt.issuer)
    if issuer is None or not issuer.credit_code:
        raise Conflict(
            f"{lt.issuer} has no credit code registered: licence numbers carry it",
            code="issuer_without_credit_code",
        )
    # One atomic increment: concurrent issues of one type never share a sequence number.
    seq = session.execute(
        update(LicenceType)
        .where(LicenceType.code == lt.code)
        .values(last_sequence=LicenceType.last_sequence + 1)
        .returning(LicenceType.last_sequence)
    ).scalar_one()
    number = make_number(lt.code, issuer.credit_code, seq)
    valid_until = _valid_until(issued_on, lt.validity_years)
    claims = Claims(
        number=number,
        type_code=lt.code,
        type_name=lt.name,
        holder_kind=lt.holder_kind,
        holder_id=req.holder_id,
        holder_name=req.holder_name,
        issuer=lt.issuer,
        issuer_name=issuer.name,
        issued_on=issued_on,
        valid_until=valid_until,
        digest=content_digest(content),
        key_id=signer.key_id,
    )
    licence = Licence(
        number=number,
        type_code=lt.code,
        issuer=lt.issuer,
        holder_kind=lt.holder_kind,
        holder_id=req.holder_id,
        holder_name=req.holder_name,
        content=content,
        issued_on=issued_on,
        valid_until=valid_until,
        issued_at=now,
        external_ref=req.external_ref,
        code=signer.code(claims),
        status="valid",
    )
    session.add(licence)
    session.flush()
    return licence, True


def revoke(
    session: Session, principal: Principal, number: str, reason: str, *, now: dt.datetime
) -> Licence:
    licence = get_licence(session, number)
    if principal.code != licence.issuer:
        raise NotPermitted(
            f"only the issuing department ({licence.issuer}) revokes {number}",
            code="not_the_issuer",
        )
    if licence.status == "revoked":
        raise Conflict(f"{number} was revoked already", code="already_revoked")
    licence.status = "revoked"
    licence.revoked_at = now
    licence.revoke_reason = reason
    session.flush()
    return licence
