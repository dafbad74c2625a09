"""The licence type catalog: the types registered at seed (from ``catalog/licences/``),
one by code, and the list a portal filters by issuer, being online and holder kind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.db.pagination import page
from exchange.errors import NotFound
from exchange.licences.content import LicenceTypeSpec
from exchange.licences.models import LicenceType
from exchange.licences.schemas import LicenceTypeOut
from exchange.members.models import Department

__all__ = ["LicenceTypeNotFound", "get_type", "list_types", "load_types"]


class LicenceTypeNotFound(NotFound):
    code = "licence_type_not_found"


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
