"""The people's and enterprises' facts an export writes, as JSON byte matrices
(:mod:`exchange.departments.jsonbytes`) made from the columns of
:class:`~exchange.departments.people_columns.People` and
:class:`~exchange.departments.firm_columns.Firms`: the same text as their string columns,
without a Python string per value."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from exchange import ids
from exchange.departments import bulk, names
from exchange.departments.columns import street_tables
from exchange.departments.firm_columns import Firms
from exchange.departments.jsonbytes import U8, Vocab, ascii_text, digits, join, text, where
from exchange.departments.people import AREAS
from exchange.departments.people_columns import People, name_tables
from exchange.departments.prng_arrays import I64
from exchange.departments.vocabulary import ENT_STATUS_TABLE, ENT_WORDS, INDUSTRIES, ROADS

__all__ = [
    "AREA_NAMES",
    "HOUSEHOLD",
    "SEX",
    "address",
    "credit_code",
    "firm_address",
    "firm_name",
    "id_number",
    "legal_rep",
    "name",
    "street_key",
]

#: area names by area index (string content: spliced into longer strings)
AREA_NAMES = Vocab([ids.AREA_NAMES[a] for a in AREAS])
SEX = Vocab(["男", "女"])
ROAD = Vocab(list(ROADS))
#: the household facts: (status by alive, relation by spouse)
HOUSEHOLD = (Vocab(["死亡注销", "正常"]), Vocab(["户主", "配偶"]))


@lru_cache(maxsize=1)
def _streets() -> tuple[Vocab, Vocab, int]:
    """Every area's streets and the same without 街道, by :func:`street_key`; the width
    of an area's row in that key."""
    streets, bare = street_tables()
    width = max(len(row) for row in streets)
    flat = [row[s] if s < len(row) else "" for row in streets for s in range(width)]
    flat_bare = [row[s] if s < len(row) else "" for row in bare for s in range(width)]
    return Vocab(flat), Vocab(flat_bare), width


def street_key(area: I64, street: I64) -> I64:
    """Index of (area, street within the area) in the street tables."""
    out: I64 = area * _streets()[2] + street
    return out


def streets() -> Vocab:
    """Street names by :func:`street_key`."""
    return _streets()[0]


def id_number(p: People) -> U8:
    return ascii_text(p.id_chars)


def name(p: People) -> U8:
    """Each name's JSON, its characters' UTF-8 gathered from tables (the "none" row of a
    missing second character is NULs)."""
    surname, first, second = p.name_picks
    t = name_tables()
    return text(p.n, t.surname_utf8[surname], t.given_utf8[first], t.given_utf8[second])


@lru_cache(maxsize=1)
def ethnicities() -> Vocab:
    return Vocab([e[0] for e in names.ETHNICITIES])


def address(p: People) -> U8:
    """``People.address``: 广州市{district}{street}{road}{n}号{n}0{n}房."""
    _, district, street, road, no1, no2, no3 = p.household_arrays
    bare = _streets()[1]
    return text(
        p.n,
        "广州市".encode(),
        AREA_NAMES.inner(district),
        bare.inner(street_key(district, street)),
        ROAD.inner(road),
        digits(no1),
        "号".encode(),
        digits(no2),
        b"0",
        digits(no3),
        "房".encode(),
    )


# -- enterprises -------------------------------------------------------------------------------

_WORDS = Vocab(list(ENT_WORDS))
#: (company suffix, shop suffix) by industry index
_SUFFIXES = (Vocab([i[1] for i in INDUSTRIES]), Vocab([i[2] for i in INDUSTRIES]))
STATUS = Vocab(list(ENT_STATUS_TABLE))
INDUSTRY = Vocab([i[0] for i in INDUSTRIES])
NULL = b"null"


def credit_code(f: Firms) -> U8:
    return ascii_text(f.credit_chars)


def legal_rep(f: Firms) -> tuple[U8, U8]:
    """(name, ID number) of each enterprise's legal representative (null: none)."""
    reps, people, pos = f.legal_rep_people
    has = reps >= 0
    at = np.where(has, pos, 0)
    if not people.n:
        nulls = join(f.n, NULL)
        return nulls, nulls
    who, idn = name(people)[at], id_number(people)[at]
    nulls = join(f.n, NULL)
    return where(has, who, nulls), where(has, idn, nulls)


def firm_name(f: Firms) -> U8:
    """``Firms.name``: 广州市{district}{words}{shop} for an individual business (92),
    广州{words}{company} for a company."""
    w = np.uint64(len(ENT_WORDS))
    w1 = (f._d[1] % w).astype(np.int64)
    w2 = (f._d[2] % w).astype(np.int64)
    words = (_WORDS.inner(w1), _WORDS.inner(w2))
    company, shop = _SUFFIXES
    industry = f.industry_i
    local = join(f.n, "市".encode(), AREA_NAMES.inner(f.district), *words, shop.inner(industry))
    other = join(f.n, *words, company.inner(industry))
    return text(f.n, "广州".encode(), where(f.kind92, local, other))


def firm_address(f: Firms) -> U8:
    """``Firms.address``: 广州市{district}{street}{road}{n}号{n}0{n}室."""
    district = f.district
    counts = bulk.lookup_tables()["street_counts"][district]
    street = (f._at(1) % counts).astype(np.int64)
    road = (f._at(2) % np.uint64(len(ROADS))).astype(np.int64)
    no1 = 1 + (f._at(3) % np.uint64(999)).astype(np.int64)
    no2 = 1 + (f._at(4) % np.uint64(20)).astype(np.int64)
    no3 = 1 + (f._at(5) % np.uint64(9)).astype(np.int64)
    return text(
        f.n,
        "广州市".encode(),
        AREA_NAMES.inner(district),
        _streets()[1].inner(street_key(district, street)),
        ROAD.inner(road),
        digits(no1),
        "号".encode(),
        digits(no2),
        b"0",
        digits(no3),
        "室".encode(),
    )
