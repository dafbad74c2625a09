"""What the city's columns share: Rng draws over arrays, dates, picks, street tables.

The people's columns are :mod:`exchange.departments.people_columns`, the enterprises'
:mod:`exchange.departments.firm_columns`; each re-implements rules of the scalar code in
:mod:`exchange.departments.city` over arrays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from exchange import ids
from exchange.departments import calendar_arrays
from exchange.departments.city import City
from exchange.departments.people import AREAS, REFERENCE_DATE
from exchange.departments.prng_arrays import I64, U64, mix, splitmix_draws
from exchange.departments.vocabulary import (
    STREETS,
)

__all__ = [
    "AREA_NAMES",
    "REF_ORD",
    "draws",
    "from_age",
    "iso_dates",
    "street_tables",
    "tag_of",
]

_EPOCH = dt.date(1970, 1, 1).toordinal()
REF_ORD = REFERENCE_DATE.toordinal()
#: area names by area index
AREA_NAMES = [ids.AREA_NAMES[a] for a in AREAS]


def tag_of(tag: str) -> int:
    """The integer :meth:`City.rng` mixes in for a named fact."""
    return sum(ord(c) << (8 * (i % 7)) for i, c in enumerate(tag))


def draws(city: City, tag: str, k: int, *parts: int | U64 | I64) -> U64:
    """The first ``k`` draws of ``city.rng(tag, *parts)`` for each element: shape (k, n)."""
    n = next(len(p) for p in parts if not isinstance(p, int))
    arrays = [p if isinstance(p, int) else np.asarray(p).astype(np.uint64) for p in parts]
    return splitmix_draws(mix(n, city.seed, tag_of(tag), *arrays), k)


def iso_dates(ordinals: I64) -> list[str]:
    """``date.fromordinal(o).isoformat()`` of each ordinal."""
    stamps = (np.asarray(ordinals, dtype=np.int64) - _EPOCH).astype("datetime64[D]")
    out: list[str] = np.datetime_as_string(stamps).tolist()
    return out


def years_of(ordinals: I64) -> I64:
    """The calendar year of each ordinal."""
    stamps = (np.asarray(ordinals, dtype=np.int64) - _EPOCH).astype("datetime64[D]")
    out: I64 = stamps.astype("datetime64[Y]").astype(np.int64) + 1970
    return out


def months_of(ordinals: I64) -> I64:
    """The month (1-12) of each ordinal."""
    stamps = (np.asarray(ordinals, dtype=np.int64) - _EPOCH).astype("datetime64[D]")
    out: I64 = stamps.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return out


def from_age(day: I64, years: int, earliest: I64 | int) -> I64:
    """``records._from_age`` in bulk: the later of the ``years``-th birthday of each birth
    day and ``earliest`` (ordinals), capped at the reference date."""
    birthday, bad = calendar_arrays.anniversary(day, years)
    # A 29 February birthday in a common year: the scalar code takes 1 March.
    birthday = birthday + bad.astype(np.int64)
    out: I64 = np.minimum(np.maximum(birthday, earliest), REF_ORD)
    return out


def pick(values: Sequence[str], d: U64) -> list[str]:
    """``Rng.pick(values)`` of each draw."""
    return [values[i] for i in (d % np.uint64(len(values))).astype(np.int64).tolist()]


@lru_cache(maxsize=1)
def street_tables() -> tuple[list[list[str]], list[list[str]]]:
    """Per area index: its streets, and each street without its 街道 suffix."""
    streets = [list(STREETS[a]) for a in AREAS]
    bare = [[s.removesuffix("街道") for s in row] for row in streets]
    return streets, bare
