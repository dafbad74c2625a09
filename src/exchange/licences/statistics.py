"""Licence statistics: per type, the profile's starting count, issued and revoked through
the platform, and the types with the most licences."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.licences.models import Licence, LicenceType
from exchange.licences.schemas import LicenceStats, TypeCount

__all__ = ["TOP_TYPES", "stats"]

TOP_TYPES = 20


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
