"""The city's enterprises derived in bulk (see :mod:`~.bulk` for people): their legal
representatives over arrays, then each :class:`Enterprise` by the scalar code."""

from __future__ import annotations

import numpy as np

from exchange import ids
from exchange.departments.bulk import deaths, lookup_tables, persons, slots, staff
from exchange.departments.calendar_arrays import calendar_tables
from exchange.departments.city import City
from exchange.departments.enterprises import NUMERIC_BODIES, Enterprise
from exchange.departments.people import (
    AREAS,
    REFERENCE_DATE,
)
from exchange.departments.prng import T_ENT, T_WORK, Feistel
from exchange.departments.prng import mix as city_mix
from exchange.departments.prng_arrays import (
    I64,
    chance,
    distinct,
    feistel_forward,
    mix,
    splitmix_draws,
)
from exchange.departments.vocabulary import (
    ENT_STATUS_TABLE,
    ENT_STATUSES,
    RESIDENCE_TABLE,
)

__all__ = ["ACTIVE", "enterprises", "legal_reps", "sample_credit_codes"]


#: Candidates ``City._legal_rep`` examines: ``employees_of(e, limit=3, scan=48)``.
_REP_SCAN, _REP_LIMIT = 48, 3
#: Residents it draws when no employee qualifies
_REP_DRAWS = 40
#: Which entries of the status table are ``City.enterprise_active``'s
ACTIVE = np.array([s == ENT_STATUSES[0][0] for s in ENT_STATUS_TABLE], dtype=np.bool_)


def legal_reps(city: City, e: I64) -> I64:
    """``City._legal_rep`` in bulk (-1: none). First rule: the first of an enterprise's
    first three employees (in the scan order of ``City.employees_of``) aged 22 or more.
    Else: the first of 40 residents drawn from the enterprise's own Rng, after the draws
    ``City._enterprise`` made before it, who is alive and aged 22 to 75."""
    n, n_ent = len(e), city.enterprises
    status = mix(n, city.seed, T_ENT, e.astype(np.uint64), 1) % np.uint64(len(ACTIVE))
    reps: I64 = np.full(n, -1, dtype=np.int64)
    employees = np.zeros(n, dtype=np.int64)  # employees met so far in the scan
    _, years, _, _, _ = calendar_tables()
    # One scan position at a time, for the operating enterprises still without a
    # representative: nearly half find one at the first position, so a scan 5 positions
    # wide (a city of five residents an enterprise) derives about two candidates an
    # enterprise, not five. Positions past the population hold nobody, and the later ones
    # of an enterprise are further still.
    open_ = np.flatnonzero(ACTIVE[status.astype(np.int64)])
    for k in range(_REP_SCAN):
        j = e[open_] + k * n_ent
        inside = j < city.population
        open_, j = open_[inside], j[inside]
        if not len(open_):
            break
        flat = staff(city, j)
        day, _, _ = slots(city, flat)
        # Age on the reference date (31 December: every birthday of the year has passed).
        age = REFERENCE_DATE.year - years[day]
        female = (flat & 1).astype(np.bool_)
        works = (age >= 18) & (age < np.where(female, 55, 60))
        works &= mix(len(flat), city.seed, T_WORK, flat.astype(np.uint64)) % np.uint64(100) < 74
        works &= deaths(city, flat, day) < 0
        found = works & (age >= 22)
        reps[open_[found]] = flat[found]
        employees[open_] += works
        open_ = open_[~found & (employees[open_] < _REP_LIMIT)]
    rest = np.flatnonzero(reps < 0)
    if len(rest):
        reps[rest] = _drawn_reps(city, e[rest])
    return reps


def _drawn_reps(city: City, e: I64) -> I64:
    """The second rule of ``City._legal_rep`` (see :func:`legal_reps`)."""
    n = len(e)
    # The draws City._enterprise makes first: industry, two name characters, then one
    # for an individual business's capital (kind 92) or two for a company's type and
    # capital (91), then the founding date, street, road and three numbers.
    slot = feistel_forward(city._orgs, e.astype(np.uint64))
    head = splitmix_draws(mix(n, city.seed, T_ENT, e.astype(np.uint64)), 1)[0]
    kind92 = (slot >= np.uint64(NUMERIC_BODIES)) & chance(head, 0.3)
    before = np.where(kind92, 10, 11)
    draws = splitmix_draws(mix(n, city.seed, T_ENT, e.astype(np.uint64), 2), 11 + _REP_DRAWS)
    chosen: I64 = np.full(n, -1, dtype=np.int64)
    open_ = np.arange(n)
    # A few draws at a time, for the enterprises still without one: most find an adult
    # in the first draws.
    for lo, hi in ((0, 6), (6, _REP_DRAWS)):
        if not len(open_):
            break
        rows = before[None, open_] + np.arange(lo, hi)[:, None]  # (draws, open)
        picked = draws[rows, open_[None, :]]
        flat = (picked % np.uint64(city.population)).astype(np.int64).T.ravel()
        day, _, _ = slots(city, flat)
        age = REFERENCE_DATE.year - calendar_tables()[1][day]
        fit = ((age >= 22) & (age <= 75) & (deaths(city, flat, day) < 0)).reshape(-1, hi - lo)
        has = fit.any(axis=1)
        first = flat.reshape(-1, hi - lo)[np.arange(len(open_)), np.argmax(fit, axis=1)]
        chosen[open_[has]] = first[has]
        open_ = open_[~has]
    return chosen


def enterprises(city: City, start: int, stop: int) -> list[Enterprise]:
    """Enterprises ``start <= e < stop`` (clipped), equal to ``[city.enterprise(e) ...]``:
    the legal representatives (a scan of up to 48 employees, then up to 40 residents, most
    of the cost) and their persons are derived in bulk, the rest by the scalar code."""
    start, stop = max(0, start), min(stop, city.enterprises)
    if start >= stop:
        return []
    e = np.arange(start, stop, dtype=np.int64)
    reps = legal_reps(city, e)
    found = distinct(reps[reps >= 0])
    people_of = dict(zip(found.tolist(), persons(city, found), strict=True))
    return [
        city._enterprise(idx, people_of[rep] if rep >= 0 else None)
        for idx, rep in zip(e.tolist(), reps.tolist(), strict=True)
    ]


def sample_credit_codes(city: City, n: int, seed: int = 0) -> list[str]:
    """:meth:`City.sample_credit_codes` in bulk."""
    n = min(n, city.enterprises)
    picker = Feistel(city_mix(city.seed, seed, 0xE5), city.enterprises)
    e = feistel_forward(picker, np.arange(n, dtype=np.uint64))
    slot = feistel_forward(city._orgs, e)
    d = splitmix_draws(mix(n, city.seed, T_ENT, e), 2)
    modern = slot >= np.uint64(NUMERIC_BODIES)
    # ``modern and r.chance(0.3)``: only a modern body spends a draw on the kind.
    kind92 = modern & chance(d[0], 0.3)
    district_draw = np.where(modern, d[1], d[0])
    district = lookup_tables()["residence"][
        (district_draw % np.uint64(len(RESIDENCE_TABLE))).astype(np.int64)
    ]
    return [
        ids.make_credit_code("92" if k else "91", AREAS[a], city._org_body(s))
        for k, a, s in zip(kind92.tolist(), district.tolist(), slot.tolist(), strict=True)
    ]
