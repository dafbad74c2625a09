"""Red and black list membership of credit codes (rules: :mod:`exchange.credit.rules`).

The black list rests on the published penalty records; the red list also needs the tax
bureau's credit rating, read from the synthetic city (the same data the tax bureau's mock
API serves through the broker: the platform's credit system holds its own copy of the
ratings, so a list query does not call the tax bureau for each code).

A batch of 1,000 codes must answer within 50 ms (``bench/credit.py``): the answer is built
as plain JSON-ready dicts (the shape of :class:`~exchange.credit.schemas.ListAnswer`) from
the few columns the rules need, not from ORM objects and pydantic models.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Sequence
from decimal import Decimal
from threading import Lock
from typing import Any

import orjson
from sqlalchemy import BigInteger, Boolean, Date, Integer, String, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from exchange.credit import rules, service
from exchange.departments.city import City
from exchange.departments.records import tax_rating

#: Ratings remembered (a code is ~100 bytes here): the city does not change, so the
#: cache is never invalidated, only bounded.
RATING_CACHE = 200_000
_NONE: list[dict[str, Any]] = []


class Ratings:
    """纳税信用等级 per credit code, from the synthetic city, with a bounded cache."""

    def __init__(self, city: City, size: int = RATING_CACHE) -> None:
        self.city = city
        self.size = size
        self._cache: OrderedDict[str, str | None] = OrderedDict()
        self._lock = Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def preload(self) -> int:
        """Rate the city's first enterprises up to the cache's size (the whole default
        city), so list queries find them rated; returns how many. Run in a background
        thread at start-up (:func:`exchange.credit.router.install`)."""
        city = self.city
        n = min(city.enterprises, self.size)
        for e in range(n):
            code = city.credit_code_of(e)
            value = tax_rating(city, e, code[:2])
            with self._lock:
                self._cache[code] = value
                if len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        return n

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


_COLUMNS = (
    "credit_code, id, submitter, decision_number, decision_date, category, authority, "
    "fine_fen, confiscated_fen, major"
)
_TYPES: dict[str, Any] = {
    "credit_code": String,
    "id": Integer,
    "submitter": String,
    "decision_number": String,
    "decision_date": Date,
    "category": String,
    "authority": String,
    "fine_fen": BigInteger,
    "confiscated_fen": BigInteger,
    "major": Boolean,
}
# The codes go as one parameter (a JSON array on SQLite, an array on PostgreSQL), so the
# statement is the same text for every batch: an ``IN`` of 1,000 bound values would be
# rendered and compiled again for each batch (a quarter of a batch's time, measured).
_PENALTIES_SQLITE = (
    text(
        f"SELECT {_COLUMNS} FROM credit_record WHERE credit_code IN "
        "(SELECT value FROM json_each(:codes)) AND kind = 'penalty' AND decision_date >= :since"
    )
    .bindparams(bindparam("since", type_=Date()))
    .columns(**_TYPES)
)
_PENALTIES_PG = (
    text(
        f"SELECT {_COLUMNS} FROM credit_record WHERE credit_code = ANY(:codes) "
        "AND kind = 'penalty' AND decision_date >= :since"
    )
    .bindparams(bindparam("codes", type_=ARRAY(String())), bindparam("since", type_=Date()))
    .columns(**_TYPES)
)


def yuan(fen: int) -> str:
    """Fen as the yuan text ``str(Decimal(fen) / 100)`` gives (``"1500"``, ``"0.5"``,
    ``"12.05"``), without building Decimals: the answer of a batch formats thousands."""
    if fen < 0:
        return str(Decimal(fen) / 100)
    whole, cents = divmod(fen, 100)
    if cents == 0:
        return str(whole)
    if cents % 10 == 0:
        return f"{whole}.{cents // 10}"
    return f"{whole}.{cents:02d}"


def _source(row: Any) -> dict[str, Any]:
    """A :class:`~exchange.credit.schemas.SourceRecord` as JSON."""
    return {
        "id": row.id,
        "kind": "penalty",
        "submitter": row.submitter,
        "decision_number": row.decision_number,
        "decision_date": row.decision_date.isoformat(),
        "category": row.category,
        "authority": row.authority,
        "fine_amount": None if row.fine_fen is None else yuan(row.fine_fen),
        "major": row.major,
    }


def _hits(hits: list[rules.Hit], rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "rule": h.rule,
            "reason": h.reason,
            "until": None if h.until is None else h.until.isoformat(),
            "records": [_source(rows[i]) for i in h.refs],
        }
        for h in hits
    ]


def _penalties_by_code(
    session: Session, codes: Sequence[str], since: dt.date
) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    if session.get_bind().dialect.name == "sqlite":
        rows = session.execute(
            _PENALTIES_SQLITE, {"codes": orjson.dumps(codes).decode(), "since": since}
        )
    else:
        rows = session.execute(_PENALTIES_PG, {"codes": list(codes), "since": since})
    for row in rows:
        found.setdefault(row.credit_code, []).append(row)
    return found


def query(
    session: Session, codes: Sequence[str], *, today: dt.date, ratings: Ratings
) -> list[dict[str, Any]]:
    """List membership of each code on ``today``, as JSON-ready
    :class:`~exchange.credit.schemas.ListAnswer` dicts in the order asked (a code asked
    twice is answered twice)."""
    since = min(
        rules.years_after(today, -rules.MAJOR_YEARS), rules.years_after(today, -rules.REPEAT_YEARS)
    )
    found = _penalties_by_code(session, list(set(codes)), since)
    answers: dict[str, dict[str, Any]] = {}
    sep = service.CATEGORY_SEPARATOR
    for code in codes:
        if code in answers:
            continue
        rows = found.get(code)
        lists: list[dict[str, Any]] = []
        black: list[rules.Hit] = []
        penalties: list[rules.Penalty] = []
        if rows:
            rows.sort(key=lambda r: (r.decision_date, r.id))
            penalties = [
                rules.Penalty(
                    i,
                    r.decision_date,
                    frozenset(r.category.split(sep)),
                    (r.fine_fen or 0) + (r.confiscated_fen or 0),
                    r.major,
                )
                for i, r in enumerate(rows)
            ]
            black = rules.black_list(penalties, today)
            if black:
                lists.append({"name": "black", "rules": _hits(black, rows)})
        red = rules.red_list(ratings.rating(code), penalties, today, black=bool(black))
        if red:
            lists.append({"name": "red", "rules": _hits(red, rows or _NONE)})
        answers[code] = {"credit_code": code, "lists": lists}
    return [answers[c] for c in codes]
