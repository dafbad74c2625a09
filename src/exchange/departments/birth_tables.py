"""Birth medical certificates in bulk: each child born late enough, with the mother and
father the scalar code finds (candidates drawn a few at a time, each looked up in the
city's register where the process keeps one, see :func:`bulk.keep_register`), derived as
columns; the bulk twin of ``records.health.birth_certificate``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from exchange.departments import bulk, calendar_arrays, jsonbytes
from exchange.departments import json_columns as jc
from exchange.departments.city import City
from exchange.departments.columns import (
    draws,
)
from exchange.departments.ndjson import Table
from exchange.departments.people import BASE_ORD
from exchange.departments.people_columns import People
from exchange.departments.people_tables import row_span
from exchange.departments.prng_arrays import BOOL, I64, U64, distinct
from exchange.departments.records import health

__all__ = ["birth_certificate"]


# Candidate mothers a birth certificate's Rng draws (``records.health.birth_certificate``).
_MOTHER_DRAWS = 24
# Draws examined together: wider later, for the few children still without a mother.
_MOTHER_BATCHES = ((0, 6), (6, 14), (14, _MOTHER_DRAWS))
_BIRTH_CERTS_FROM = health.BIRTH_CERTS_FROM.toordinal()


def birth_certificate(city: City, start: int, stop: int) -> Table:
    # Birth days first (a permutation and a few draws): only the children born late
    # enough to hold a certificate, about a third, are derived whole (couples, deaths).
    index = row_span(start, stop, city.population)
    day, _, _ = bulk.slots(city, index)
    p = People(city, index[day + BASE_ORD >= _BIRTH_CERTS_FROM])
    n = p.n
    r = draws(city, "birth", _MOTHER_DRAWS + 1, p.index)
    _, years, months, mdays, _ = calendar_arrays.calendar_tables()
    unit, married, spent = _mothers(city, r, years[p.day], months[p.day] * 100 + mdays[p.day])
    has_mother = unit >= 0
    has_father = has_mother & (married <= p.birth)
    # Each couple once (husband 2u, wife 2u + 1, in order): the husband of a child's
    # couple is at twice the couple's place among them.
    couples = distinct(unit[has_mother])
    parents = np.empty(2 * len(couples), dtype=np.int64)
    parents[0::2] = 2 * couples
    parents[1::2] = 2 * couples + 1
    folk = People(city, parents)
    at = 2 * np.searchsorted(couples, np.maximum(unit, 0))
    place = r[spent, np.arange(n)]
    null = jsonbytes.repeat(None, n)
    if folk.n:
        names, idns = jc.name(folk), jc.id_number(folk)
        mother = jsonbytes.where(has_mother, names[at + 1], null)
        mother_id = jsonbytes.where(has_mother, idns[at + 1], null)
        father = jsonbytes.where(has_father, names[at], null)
        father_id = jsonbytes.where(has_father, idns[at], null)
    else:
        mother = mother_id = father = father_id = null
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "certificate_number": jsonbytes.text(
                n,
                _LETTERS.inner(years[p.day] % 26),
                b"44",
                jsonbytes.digits(p.index, 8),
            ),
            "child_name": jc.name(p),
            "sex": jc.SEX.take(p.female.astype(np.int64)),
            "birth_date": jsonbytes.iso_dates(p.birth),
            "birth_place": _HOSPITALS.take(
                (place % np.uint64(len(health.HOSPITALS))).astype(np.int64)
            ),
            "mother_name": mother,
            "mother_id_number": mother_id,
            "father_name": father,
            "father_id_number": father_id,
        },
    )


Mothers = tuple[I64, I64, I64]
#: (whether each candidate is a mother, the marriage of each) for the candidate couples
#: ``u`` (one row per child still open, one column per draw) of the children ``open_``
Fits = Callable[[I64, I64], tuple[BOOL, I64]]


def _mothers(city: City, r: U64, child_y: I64, child_md: I64) -> Mothers:
    """Each child's mother's couple (-1: none), that couple's marriage (-1: none) and the
    draws the search used (``_MOTHER_DRAWS`` when it found none): the scalar code's first
    drawn couple whose wife exists, is married, and was 20 to 42 at the birth."""
    reg = bulk.register(city)
    fits = _drawn(city, child_y, child_md) if reg is None else _kept(reg, child_y, child_md)
    n = len(child_y)
    unit = np.full(n, -1, dtype=np.int64)
    married = np.full(n, -1, dtype=np.int64)
    spent = np.full(n, _MOTHER_DRAWS, dtype=np.int64)  # draws used before the hospital's
    open_ = np.arange(n)
    # Candidates a few draws at a time, for the children still without a mother: most
    # find one in the first draws, so this looks at a few couples per child, not 24.
    for lo, hi in _MOTHER_BATCHES:
        if not len(open_):
            break
        u = (r[lo:hi, open_] % np.uint64(city.units)).astype(np.int64).T  # (open, draws)
        fit, wed = fits(u, open_)
        found = fit.any(axis=1)
        first = np.argmax(fit, axis=1)[found]
        hit = open_[found]
        unit[hit] = u[found, first]
        married[hit] = wed[found, first]
        spent[hit] = lo + first + 1
        open_ = open_[~found]
    return unit, married, spent


def _kept(reg: bulk.Register, child_y: I64, child_md: I64) -> Fits:
    """Candidates looked up in the register. Birthdays as the numbers YYYYMMDD: a wife is
    20 to 42 at a birth when the child's number less hers is 200000 to 429999 (her age is
    its ten-thousands, a year less before her birthday); a wife who never married (or does
    not exist: her couple never married) has a birthday no child's is that far after."""
    wife = _wives(reg)
    child = (child_y * 10_000 + child_md)[:, None]

    def fits(u: I64, open_: I64) -> tuple[BOOL, I64]:
        gap = child[open_] - wife[u]
        fit: BOOL = (gap >= 200_000) & (gap < 430_000)
        married: I64 = reg.married[u].astype(np.int64)
        return fit, married

    return fits


_wives_of: tuple[bulk.Register, I64] | None = None


def _wives(reg: bulk.Register) -> I64:
    """Each couple's wife's birthday as YYYYMMDD (a far future for a wife who never
    married), made once per register."""
    global _wives_of  # of the one register the process keeps
    kept = _wives_of
    if kept is not None and kept[0] is reg:
        return kept[1]
    _, years, months, mdays, _ = calendar_arrays.calendar_tables()
    day = reg.day[:, 1]
    ymd = years[day] * 10_000 + months[day] * 100 + mdays[day]
    out: I64 = np.where(reg.married >= 0, ymd, 99_999_999)
    _wives_of = (reg, out)
    return out


def _drawn(city: City, child_y: I64, child_md: I64) -> Fits:
    """Each candidate's couple derived: the wife's slot, then the marriage only for a wife
    of an age to be the mother."""
    _, years, months, mdays, _ = calendar_arrays.calendar_tables()

    def fits(u: I64, open_: I64) -> tuple[BOOL, I64]:
        exists = 2 * u + 1 < city.population
        cand = np.where(exists, u, 0).ravel()
        couple = bulk.couple_slots(city, cand)
        cday = couple[3].reshape(u.shape)
        age = (
            child_y[open_, None]
            - years[cday]
            - (child_md[open_, None] < months[cday] * 100 + mdays[cday])
        )
        keep = (exists & (age >= 20) & (age <= 42)).ravel()
        wed = np.full(u.size, -1, dtype=np.int64)
        if keep.any():
            wed[keep], _, _ = bulk.marriages(city, cand[keep], _pick(couple, keep))
        shaped = wed.reshape(u.shape)
        return shaped >= 0, shaped

    return fits


def _pick(couple: bulk.CoupleSlots, keep: BOOL) -> bulk.CoupleSlots:
    day_h, area_h, h, day_w, area_w = couple
    return day_h[keep], area_h[keep], h[keep], day_w[keep], area_w[keep]


_LETTERS = jsonbytes.Vocab([chr(65 + k) for k in range(26)])
_HOSPITALS = jsonbytes.Vocab(list(health.HOSPITALS))
