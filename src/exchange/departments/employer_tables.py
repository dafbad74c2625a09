"""The topics of people through their employer in bulk (social insurance, provident
fund): each employed person with the columns of their employer, derived as columns."""

from __future__ import annotations

import datetime as dt

import numpy as np

from exchange.departments import json_columns as jc
from exchange.departments import jsonbytes, prng_arrays
from exchange.departments.city import City
from exchange.departments.columns import (
    REF_ORD,
    draws,
    from_age,
    pick,
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


def provident_fund(city: City, start: int, stop: int) -> Table:
    p = people_block(city, start, stop)
    p = p.take(p.employer >= 0)
    r = draws(city, "fund", 3, p.index)
    p, r = p.take(prng_arrays.chance(r[0], 0.82)), r[:, prng_arrays.chance(r[0], 0.82)]
    found, at = np.unique(p.employer, return_inverse=True)
    firms = Firms(city, found)
    at = at.astype(np.int64)
    base_i = _contribution_base(city, p)
    base = base_i.tolist()
    rate_i = (r[1] % np.uint64(len(_FUND_RATES))).astype(np.int64)
    rate = [float(x) for x in pick(_FUND_RATES, r[1])]
    opened = _enrolled(city, p, firms.founded[at])
    months = _months_to_reference(opened).tolist()
    withdrawn = (r[2] % np.uint64(61)).astype(np.int64).tolist()
    # Money rounded as the scalar code rounds it (Python's float arithmetic and round),
    # then encoded value by value: a few columns of a small table.
    monthly = [round(b * x * 2, 2) for b, x in zip(base, rate, strict=True)]
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "name": jc.name(p),
            "account_number": jsonbytes.text(p.n, b"1100", jsonbytes.digits(p.index, 10)),
            "employer_credit_code": jc.credit_code(firms)[at],
            "employer_name": jc.firm_name(firms)[at],
            "deposit_base": jsonbytes.digits(base_i),
            "deposit_rate": _FUND_RATE_VALUES.take(rate_i),
            "monthly_deposit": monthly,
            "balance": [
                round(m * k * (1 - w / 100), 2)
                for m, k, w in zip(monthly, months, withdrawn, strict=True)
            ],
            "status": jsonbytes.repeat("正常", p.n),
            "opened_on": jsonbytes.iso_dates(opened),
        },
    )
