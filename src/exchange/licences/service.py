"""The licence system's rules: loading the type catalog, issuing, revoking, reading, counting.

Every function takes the session and the platform time it acts at; the router decides who
is calling and audits. Rules:

* only the type's issuing department issues a licence of it, and only an online type;
* the holder is identified by a well-formed resident ID number (person types) or unified
  social credit code (legal-person types);
* the items are checked against the type: no unknown item, every required one present,
  integers as integers, dates as real YYYY-MM-DD days;
* ``valid_until`` is the day before the anniversary ``validity_years`` after issue (None for
  long-term types); a licence is *expired* once the platform's today passes it;
* only the issuing department revokes, once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from exchange import ids
from exchange.authn import Principal
from exchange.db.pagination import page
from exchange.errors import Conflict, NotFound, NotPermitted, ValidationFailed
from exchange.licences.content import LicenceTypeSpec
from exchange.licences.models import Licence, LicenceType
from exchange.licences.numbers import make_number
from exchange.licences.schemas import (
    IssueRequest,
    LicenceOut,
    LicenceStats,
    LicenceTypeOut,
    TypeCount,
)
from exchange.licences.signing import LicenceSigner
from exchange.licences.token import Claims, content_digest, status_body
from exchange.members.models import Department

MAX_TEXT = 500
TOP_TYPES = 20


class LicenceNotFound(NotFound):
    code = "licence_not_found"


class LicenceTypeNotFound(NotFound):
    code = "licence_type_not_found"


# -- the type catalog -----------------------------------------------------------------------


def load_types(session: Session, specs: Sequence[LicenceTypeSpec]) -> int:
    """Register the catalog's types (at seed); types already there are left as they are.
    Returns how many were added. Every issuer must be a registered department."""
    have = set(session.scalars(select(LicenceType.code)))
    known = set(session.scalars(select(Department.code)))
    added = 0
    for position, spec in enumerate(specs):
        if spec.issuer not in known:
            raise ValueError(f"licence type {spec.code}: issuer {spec.issuer!r} is not a unit")
        if spec.code in have:
            continue
        session.add(
            LicenceType(
                code=spec.code,
                name=spec.name,
                issuer=spec.issuer,
                holder_kind=spec.holder,
                items=[i.model_dump() for i in spec.items],
                validity_years=spec.validity_years,
                online=spec.online,
                starting_count=spec.issued,
                last_sequence=0,
                position=position,
            )
        )
        added += 1
    return added


def get_type(session: Session, code: str) -> LicenceType:
    found = session.get(LicenceType, code)
    if found is None:
        raise LicenceTypeNotFound(f"no licence type {code!r}")
    return found


def list_types(
    session: Session,
    *,
    issuer: str | None,
    online: bool | None,
    holder_kind: str | None,
    limit: int,
    offset: int,
) -> tuple[list[LicenceTypeOut], int]:
    conds: list[Any] = []
    if issuer is not None:
        conds.append(LicenceType.issuer == issuer)
    if online is not None:
        conds.append(LicenceType.online == online)
    if holder_kind is not None:
        conds.append(LicenceType.holder_kind == holder_kind)
    total, rows = page(
        session,
        LicenceType,
        LicenceType.code,
        conds,
        order=(LicenceType.position,),
        offset=offset,
        limit=limit,
    )
    return [LicenceTypeOut.model_validate(r) for r in rows], total


# -- issuing --------------------------------------------------------------------------------


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


def get_licence(session: Session, number: str) -> Licence:
    found = session.scalar(select(Licence).where(Licence.number == number))
    if found is None:
        raise LicenceNotFound(f"no licence {number!r} was issued through the platform")
    return found


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


# -- reading --------------------------------------------------------------------------------


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


def status_document(
    session: Session,
    signer: LicenceSigner,
    *,
    now: dt.datetime,
    clock_offset_s: float,
    max_age_s: int,
) -> dict[str, str]:
    """The signed status list: every revoked licence, the platform clock's offset."""
    rows = session.execute(
        select(Licence.number, Licence.revoke_reason, Licence.revoked_at).where(
            Licence.status == "revoked"
        )
    )
    revoked = [(n, r or "", at) for n, r, at in rows if at is not None]
    body = status_body(
        key_id=signer.key_id,
        issued_at=now,
        clock_offset_s=clock_offset_s,
        max_age_s=max_age_s,
        revoked=revoked,
    )
    return {"body": body.decode(), "signature": signer.sign_status(body)}


def stats(session: Session, as_of: dt.date) -> LicenceStats:
    issued = dict(
        session.execute(
            select(Licence.type_code, func.count(Licence.id)).group_by(Licence.type_code)
        ).all()
    )
    revoked = dict(
        session.execute(
            select(Licence.type_code, func.count(Licence.id))
            .where(Licence.status == "revoked")
            .group_by(Licence.type_code)
        ).all()
    )
    types = list(session.scalars(select(LicenceType).order_by(LicenceType.position)))
    counts = [
        TypeCount(
            code=t.code,
            name=t.name,
            issuer=t.issuer,
            starting=t.starting_count,
            issued=int(issued.get(t.code, 0)),
            revoked=int(revoked.get(t.code, 0)),
            total=t.starting_count + int(issued.get(t.code, 0)),
        )
        for t in types
    ]
    starting = sum(c.starting for c in counts)
    n_issued = sum(c.issued for c in counts)
    return LicenceStats(
        as_of=as_of,
        types=len(types),
        online=sum(1 for t in types if t.online),
        issuers=len({t.issuer for t in types}),
        starting=starting,
        issued=n_issued,
        revoked=sum(c.revoked for c in counts),
        total=starting + n_issued,
        by_type=sorted(counts, key=lambda c: (-c.total, c.code))[:TOP_TYPES],
    )
