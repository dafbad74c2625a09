"""The topics of people through their employer in bulk (social insurance, provident
fund): each employed person with the columns of their employer, derived as columns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

from exchange.departments import json_columns as jc
from exchange.departments import jsonbytes, prng_arrays
from exchange.departments.city import City
from exchange.departments.columns import (
    REF_ORD,
    draws,
    from_age,
)
from exchange.departments.firm_columns import Firms
from exchange.departments.ndjson import Table
from exchange.departments.people_columns import People
from exchange.departments.people_tables import people_block
from exchange.departments.prng_arrays import I64

__all__ = ["provident_fund", "social_insurance_enrolment"]


def _employers(p: People) -> tuple[People, Firms, I64]:
    """The employed people of a block, the firms employing them (each once) and, per
    person, the position of their employer among those firms."""
    staff = p.take(p.employer >= 0)
    found, pos = np.unique(staff.employer, return_inverse=True)
    return staff, Firms(p.city, found), pos.astype(np.int64)


def _enrolled(city: City, p: People, founded: I64) -> I64:
    """``records.social_security.enrolled_on`` in bulk (ordinals), from each employer's
    founding day."""
    first = from_age(p.day, 18, founded)
    d = draws(city, "enrol", 1, p.index)[0]
    return prng_arrays.between(d, first, np.full(p.n, REF_ORD))


def _contribution_base(city: City, p: People) -> I64:
    return prng_arrays.between(
        draws(city, "wage", 1, p.index)[0], np.full(p.n, 5284), np.full(p.n, 26421)
    )


def _months_to_reference(ordinals: I64) -> I64:
    """Months from each day's month to the reference month, both counted."""
    stamps = (ordinals - dt.date(1970, 1, 1).toordinal()).astype("datetime64[D]")
    month = stamps.astype("datetime64[M]").astype(np.int64)
    ref = np.datetime64(dt.date(2024, 12, 1), "M").astype(np.int64)
    out: I64 = ref - month + 1
    return out


def social_insurance_enrolment(city: City, start: int, stop: int) -> Table:
    p, firms, at = _employers(people_block(city, start, stop))
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "name": jc.name(p),
            "employer_credit_code": jc.credit_code(firms)[at],
            "employer_name": jc.firm_name(firms)[at],
            "insurance_types": jsonbytes.repeat("养老,医疗,失业,工伤,生育", p.n),
            "status": jsonbytes.repeat("参保缴费", p.n),
            "enrolled_on": jsonbytes.iso_dates(_enrolled(city, p, firms.founded[at])),
            "contribution_base": jsonbytes.digits(_contribution_base(city, p)),
        },
    )


_FUND_RATES = ("0.05", "0.08", "0.10", "0.12")
_FUND_RATE_VALUES = jsonbytes.Vocab([float(x) for x in _FUND_RATES])
#: each rate in hundredths: a monthly deposit is a whole number of cents
_FUND_RATE_CENTS = np.array([5, 8, 10, 12], dtype=np.int64)


def _cents(values: npt.NDArray[np.float64]) -> I64:
    """``round(v, 2)`` of each float as a whole number of hundredths: Python's rounding
    (half to even on the float's exact value), which ``np.round`` (``rint(v * 100)``,
    itself rounded) can miss next to a half. Those few are rounded by Python itself."""
    scaled = values * 100
    out: I64 = np.rint(scaled).astype(np.int64)
    # ``scaled`` is within a few ulp of 100 v (~1e-7 at the largest balances); only a
    # value this near a half can round either way.
    near = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-4)
    for i in near.tolist():
        out[i] = round(round(float(values[i]), 2) * 100)
    return out


def provident_fund(city: City, start: int, stop: int) -> Table:
    p = people_block(city, start, stop)
    p = p.take(p.employer >= 0)
    r = draws(city, "fund", 3, p.index)
    p, r = p.take(prng_arrays.chance(r[0], 0.82)), r[:, prng_arrays.chance(r[0], 0.82)]
    found, at = np.unique(p.employer, return_inverse=True)
    firms = Firms(city, found)
    at = at.astype(np.int64)
    base = _contribution_base(city, p)
    rate_i = (r[1] % np.uint64(len(_FUND_RATES))).astype(np.int64)
    opened = _enrolled(city, p, firms.founded[at])
    months = _months_to_reference(opened)
    withdrawn = (r[2] % np.uint64(61)).astype(np.int64)
    # ``round(base * rate * 2, 2)``: the float product is within far less than half a
    # cent of the whole number of cents ``base * rate-in-hundredths * 2``, which
    # ``round`` gives back (as the double nearest it, which JSON prints as ``hundredths``).
    monthly = base * _FUND_RATE_CENTS[rate_i] * 2
    # The balance in the scalar code's float arithmetic, operation by operation (IEEE
    # doubles in NumPy as in Python), then rounded as Python rounds.
    balance = (monthly / 100 * months.astype(np.float64)) * (1 - withdrawn / 100)
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "name": jc.name(p),
            "account_number": jsonbytes.text(p.n, b"1100", jsonbytes.digits(p.index, 10)),
            "employer_credit_code": jc.credit_code(firms)[at],
            "employer_name": jc.firm_name(firms)[at],
            "deposit_base": jsonbytes.digits(base),
            "deposit_rate": _FUND_RATE_VALUES.take(rate_i),
            "monthly_deposit": jsonbytes.hundredths(monthly),
            "balance": jsonbytes.hundredths(_cents(balance)),
            "status": jsonbytes.repeat("正常", p.n),
            "opened_on": jsonbytes.iso_dates(opened),
        },
    )
