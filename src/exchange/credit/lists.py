"""Red and black list membership of credit codes (rules: :mod:`exchange.credit.rules`).

The black list rests on the published penalty records; the red list also needs the tax
bureau's credit rating, read from the synthetic city (the same data the tax bureau's mock
API serves through the broker: the platform's credit system holds its own copy of the
ratings, so a list query does not call the tax bureau for each code).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Sequence
from decimal import Decimal
from threading import Lock

from sqlalchemy.orm import Session

from exchange.credit import rules, service
from exchange.credit.models import CreditRecord
from exchange.credit.schemas import (
    ListAnswer,
    ListMembership,
    ListName,
    RecordKind,
    RuleHit,
    SourceRecord,
)
from exchange.departments.city import City
from exchange.departments.records import tax_rating

#: Ratings remembered (a code is ~100 bytes here): the city does not change, so the
#: cache is never invalidated, only bounded.
RATING_CACHE = 200_000


class Ratings:
    """纳税信用等级 per credit code, from the synthetic city, with a bounded cache."""

    def __init__(self, city: City, size: int = RATING_CACHE) -> None:
        self.city = city
        self.size = size
        self._cache: OrderedDict[str, str | None] = OrderedDict()
        self._lock = Lock()

    def rating(self, code: str) -> str | None:
        found = self._cache.get(code, "")
        if found != "":
            return found
        index = self.city.index_of_credit_code(code)
        value = None if index is None else tax_rating(self.city, index, code[:2])
        with self._lock:
            self._cache[code] = value
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return value


def _source(r: CreditRecord) -> SourceRecord:
    return SourceRecord(
        id=r.id,
        kind=RecordKind(r.kind),
        submitter=r.submitter,
        decision_number=r.decision_number,
        decision_date=r.decision_date,
        category=r.category,
        authority=r.authority,
        fine_amount=None if r.fine_fen is None else Decimal(r.fine_fen) / 100,
        major=r.major,
    )


def _penalty(i: int, r: CreditRecord) -> rules.Penalty:
    return rules.Penalty(
        i,
        r.decision_date,
        frozenset(r.category.split(service.CATEGORY_SEPARATOR)),
        (r.fine_fen or 0) + (r.confiscated_fen or 0),
        r.major,
    )


def _hits(hits: list[rules.Hit], records: Sequence[CreditRecord]) -> list[RuleHit]:
    return [
        RuleHit(
            rule=h.rule,
            reason=h.reason,
            until=h.until,
            records=[_source(records[i]) for i in h.refs],
        )
        for h in hits
    ]


def query(
    session: Session, codes: Sequence[str], *, today: dt.date, ratings: Ratings
) -> list[ListAnswer]:
    """List membership of each code on ``today``, in the order asked (a code asked twice
    is answered twice)."""
    since = min(
        rules.years_after(today, -rules.MAJOR_YEARS), rules.years_after(today, -rules.REPEAT_YEARS)
    )
    found: dict[str, list[CreditRecord]] = {}
    for r in service.penalties_of(session, list(set(codes)), since):
        assert r.credit_code is not None
        found.setdefault(r.credit_code, []).append(r)
    answers: dict[str, ListAnswer] = {}
    for code in codes:
        if code in answers:
            continue
        records = sorted(found.get(code, ()), key=lambda r: (r.decision_date, r.id))
        penalties = [_penalty(i, r) for i, r in enumerate(records)]
        black = rules.black_list(penalties, today)
        red = rules.red_list(ratings.rating(code), penalties, today, black=bool(black))
        lists = []
        if black:
            lists.append(ListMembership(name=ListName.black, rules=_hits(black, records)))
        if red:
            lists.append(ListMembership(name=ListName.red, rules=_hits(red, records)))
        answers[code] = ListAnswer(credit_code=code, lists=lists)
    return [answers[c] for c in codes]
