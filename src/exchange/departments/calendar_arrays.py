"""Calendar tables over arrays: every day a person of the city can be born on (days since
1930-01-01) as dates, years, months, days and ID-number digits, and the arithmetic of
anniversaries on them, for the derivations in bulk (:mod:`~.bulk`, :mod:`~.columns`)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np

from exchange import ids
from exchange.departments.people import BASE_ORD, DAYS
from exchange.departments.prng_arrays import BOOL, I64

__all__ = ["anniversary", "calendar_tables", "is_leap", "ordinal_of"]


@lru_cache(maxsize=1)
def calendar_tables() -> tuple[list[dt.date], I64, I64, I64, I64]:
    """(date, year, month, day of month, weighted ID digits of YYYYMMDD) for every day a
    person can be born on."""
    dates = [dt.date.fromordinal(BASE_ORD + d) for d in range(DAYS)]
    years = np.array([d.year for d in dates], dtype=np.int64)
    months = np.array([d.month for d in dates], dtype=np.int64)
    mdays = np.array([d.day for d in dates], dtype=np.int64)
    weights = ids.ID_WEIGHTS[6:14]
    digits = np.array(
        [
            sum((ord(c) - 48) * w for c, w in zip(f"{d:%Y%m%d}", weights, strict=True))
            for d in dates
        ],
        dtype=np.int64,
    )
    return dates, years, months, mdays, digits


def ordinal_of(years: I64, months: I64, mdays: I64) -> I64:
    """Proleptic Gregorian ordinals of (year, month, day) arrays."""
    month = np.asarray((years - 1970) * 12 + (months - 1)).astype("datetime64[M]")
    stamp = month.astype("datetime64[D]") + (mdays - 1).astype("timedelta64[D]")
    out: I64 = stamp.astype(np.int64) + dt.date(1970, 1, 1).toordinal()
    return out


def is_leap(year: I64) -> BOOL:
    out: BOOL = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return out


def anniversary(days: I64, years_after: int) -> tuple[I64, BOOL]:
    """Ordinal of the ``years_after``-th anniversary of each day, and whether that birthday
    falls on a 29 February that the target year lacks (``date.replace`` would raise)."""
    _, years, months, mdays, _ = calendar_tables()
    y, m, d = years[days] + years_after, months[days], mdays[days]
    bad = (m == 2) & (d == 29) & ~is_leap(y)
    return ordinal_of(y, m, np.where(bad, 28, d)), bad
