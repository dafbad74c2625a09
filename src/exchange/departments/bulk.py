"""The city's people derived in bulk: NumPy over an index range instead of one at a time.

A cold export derives every row of a table once; one :meth:`City.person` costs ~100 µs of
Python integer arithmetic (a Feistel permutation, a dozen splitmix64 draws, the spouse's
slot and both partners' deaths), which held a fresh exchange to ~10 k records/s. Here the
same arithmetic runs on arrays of unsigned 64-bit integers (NumPy wraps on overflow exactly
as the ``& M64`` of the scalar code), and only the final strings and :class:`Person`
objects are made one at a time.

The scalar code in :mod:`exchange.departments.city` stays the definition; this module is an
equivalent, faster path for ranges, checked against it person by person in the tests.

The randomness over arrays is :mod:`~.prng_arrays`, the calendar :mod:`~.calendar_arrays`;
enterprises in bulk are :mod:`~.bulk_enterprises`.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from exchange import ids
from exchange.departments import names
from exchange.departments.calendar_arrays import anniversary, calendar_tables, ordinal_of
from exchange.departments.city import City
from exchange.departments.people import (
    AREAS,
    BASE_ORD,
    DAYS,
    DISPLAY_TO_AREA,
    LUOGANG_FROM,
    LUOGANG_TO,
    N_AREAS,
    REFERENCE_DATE,
    RETIRE_2005,
    SEQ_HALVES,
    Person,
)
from exchange.departments.prng import T_COUPLE, T_DEATH, T_HOUSE, T_PERSON, Feistel
from exchange.departments.prng import mix as city_mix
from exchange.departments.prng_arrays import (
    BOOL,
    I64,
    between,
    chance,
    chance_each,
    distinct,
    feistel_forward,
    feistel_inverse,
    mix,
    splitmix_draws,
)
from exchange.departments.vocabulary import (
    RESIDENCE_TABLE,
    ROADS,
    STREETS,
)

__all__ = [
    "REGISTER_MAX_PEOPLE",
    "CoupleSlots",
    "Register",
    "couple_slots",
    "couples",
    "deaths",
    "id_numbers",
    "id_parts",
    "jobs",
    "keep_register",
    "lookup_tables",
    "marriages",
    "people",
    "persons",
    "register",
    "sample_id_numbers",
    "slots",
    "staff",
    "warm",
]

# -- people ------------------------------------------------------------------------------

#: (husband's day, husband's area, sequence half, wife's day, wife's area) of each couple
CoupleSlots = tuple[I64, I64, I64, I64, I64]


def slots(city: City, index: I64) -> tuple[I64, I64, I64]:
    """(day, area index, sequence half) of each person: ``City._slot_parts`` in bulk."""
    reg = register(city)
    if reg is not None:
        unit, wife = index >> 1, index & 1
        return _i64(reg.day[unit, wife]), _i64(reg.area[unit, wife]), _i64(reg.h[unit])
    day, area_i, h = _husbands(city, index >> 1)
    female = (index & 1).astype(np.bool_)
    if female.any():
        wife_day, wife_area = _wives(city, day, area_i, h)
        area_i = np.where(female, wife_area, area_i)
        day = np.where(female, wife_day, day)
    return day, area_i, h


def couple_slots(city: City, unit: I64) -> CoupleSlots:
    """(husband's day, husband's area, sequence half, wife's day, wife's area) of each
    couple: :func:`slots` of ``2 * unit`` and ``2 * unit + 1`` from one permutation of
    ``unit`` (a wife's slot is her husband's, moved), where deriving both partners as
    persons ran it twice."""
    reg = register(city)
    if reg is not None:
        day2, area2 = reg.day[unit], reg.area[unit]
        return (
            _i64(day2[:, 0]),
            _i64(area2[:, 0]),
            _i64(reg.h[unit]),
            _i64(day2[:, 1]),
            _i64(area2[:, 1]),
        )
    day, area_i, h = _husbands(city, unit)
    wife_day, wife_area = _wives(city, day, area_i, h)
    return day, area_i, h, wife_day, wife_area


def _husbands(city: City, unit: I64) -> tuple[I64, I64, I64]:
    mslot = feistel_forward(city._people, unit.astype(np.uint64))
    h = (mslot % np.uint64(SEQ_HALVES)).astype(np.int64)
    rest = (mslot // np.uint64(SEQ_HALVES)).astype(np.int64)
    return rest // N_AREAS, rest % N_AREAS, h


def _wives(city: City, day: I64, area_i: I64, h: I64) -> tuple[I64, I64]:
    z = mix(len(h), city._tau_key, h.astype(np.uint64))
    shift = np.where(
        z % np.uint64(3) == 0,
        0,
        1 + ((z >> np.uint64(8)) % np.uint64(N_AREAS - 1)).astype(np.int64),
    )
    wife_area = (area_i + shift) % N_AREAS
    delta = (mix(len(h), z, wife_area.astype(np.uint64)) % np.uint64(11 * 365)).astype(
        np.int64
    ) - 3 * 365
    return np.mod(day + delta, DAYS), wife_area


def deaths(city: City, index: I64, day: I64) -> I64:
    """Death-day ordinals (-1: alive): ``City._death_date`` in bulk (``day``: each
    person's birth day, from :func:`slots`)."""
    reg = register(city)
    if reg is not None:
        return _i64(reg.death[index >> 1, index & 1])
    _, years, _, _, _ = calendar_tables()
    age = REFERENCE_DATE.year - years[day]
    draws = splitmix_draws(mix(len(index), city.seed, T_DEATH, index.astype(np.uint64)), 2)
    old = age >= 55
    p = np.minimum(0.6, np.maximum(age - 55, 0) / 70)
    dies = old & chance_each(draws[0], p)
    first = np.maximum(day + BASE_ORD + 55 * 365, dt.date(1995, 1, 1).toordinal())
    last = REFERENCE_DATE.toordinal()
    dies &= first <= last
    when = between(draws[1], first, np.full_like(first, last))
    return np.where(dies, when, -1)


def couples(city: City, unit: I64, day: I64, area_i: I64, h: I64, death: I64) -> tuple[I64, I64]:
    """(married, divorced) ordinals per unit (-1: none): ``City._couple`` in bulk.

    ``day``, ``area_i``, ``h`` and ``death`` have two columns: husband, wife.
    """
    n = len(unit)
    wife_exists = 2 * unit + 1 < city.population
    z = mix(n, city._tau_key, h[:, 0].astype(np.uint64))
    delta = (mix(n, z, area_i[:, 1].astype(np.uint64)) % np.uint64(11 * 365)).astype(
        np.int64
    ) - 3 * 365
    plausible = wife_exists & (day[:, 1] == day[:, 0] + delta)
    draws = splitmix_draws(mix(n, city.seed, T_COUPLE, unit.astype(np.uint64)), 4)
    married_at_all = plausible & chance(draws[0], 0.72)
    husband_22, bad_h = anniversary(day[:, 0], 22)
    wife_20, bad_w = anniversary(day[:, 1], 20)
    # date.replace raises for a 29 February in a common year; the scalar code then takes
    # 1 March of *both* target years.
    bad = bad_h | bad_w
    _, years, _, _, _ = calendar_tables()
    march_h = ordinal_of(years[day[:, 0]] + 22, np.full(n, 3), np.ones(n, dtype=np.int64))
    march_w = ordinal_of(years[day[:, 1]] + 20, np.full(n, 3), np.ones(n, dtype=np.int64))
    start = np.where(bad, np.maximum(march_h, march_w), np.maximum(husband_22, wife_20))
    start = np.maximum(start, dt.date(1950, 5, 1).toordinal())
    ref = REFERENCE_DATE.toordinal()
    end = np.minimum(ref, start + 15 * 365)
    ok = married_at_all & (start <= end)
    married = between(draws[1], start, end)
    for who in (0, 1):
        died = death[:, who]
        ok &= ~((died >= 0) & (died <= married))
    divorces = chance(draws[2], 0.09) & (married + 400 < ref)
    divorced = np.where(divorces, between(draws[3], married + 365, np.full(n, ref)), -1)
    return np.where(ok, married, -1), np.where(ok, divorced, -1)


def marriages(city: City, unit: I64, slots: CoupleSlots) -> tuple[I64, I64, I64]:
    """(married, divorced, deaths) of couples ``unit`` from their :func:`couple_slots`:
    :func:`couples` with both partners' :func:`deaths` (a ``(units, 2)`` array, husband
    then wife; -1 for a wife past the population), what every table that writes a marriage
    derives of a couple."""
    reg = register(city)
    if reg is not None:
        return _i64(reg.married[unit]), _i64(reg.divorced[unit]), _i64(reg.death[unit])
    day_h, area_h, h, day_w, area_w = slots
    pair = np.stack([2 * unit, 2 * unit + 1], axis=1)
    flat = pair.reshape(-1)
    day = np.stack([day_h, day_w], axis=1)
    death = np.where(flat < city.population, deaths(city, flat, day.reshape(-1)), -1).reshape(
        pair.shape
    )
    married, divorced = couples(
        city, unit, day, np.stack([area_h, area_w], axis=1), np.stack([h, h], axis=1), death
    )
    return married, divorced, death


# -- the register ----------------------------------------------------------------------------

#: The most people a process keeps the register of (26 bytes a person: 26 MiB at the cap;
#: made in ~30 ms for 100,000 people, ~220 ms for 1,000,000); a bigger city's couples and
#: jobs are derived wherever they are needed.
REGISTER_MAX_PEOPLE = 1 << 20
_REGISTER_SLICE = 1 << 16
I32 = npt.NDArray[np.int32]


class Register(NamedTuple):
    """A city's couples, by unit (the husband ``2u``, the wife ``2u + 1``), as
    :func:`couple_slots` and :func:`marriages` derive them, and its jobs both ways: what
    the tables need of each person before anything of their own (the slot behind the birth
    day and the ID number, the marriage behind the household, both deaths, the employer,
    an enterprise's staff to find its legal representative), in 26 bytes a person."""

    #: birth day (index into the calendar), husband then wife, shape (units, 2)
    day: I32
    #: area index, husband then wife, shape (units, 2)
    area: I32
    #: sequence half, shape (units,)
    h: I32
    #: marriage and divorce ordinals (-1: none), shape (units,)
    married: I32
    divorced: I32
    #: death ordinals (-1: alive, or no wife past the population), shape (units, 2)
    death: I32
    #: each person's job slot (:func:`jobs`) and the person in each slot, shape (people,)
    job: I32
    staff: I32


_kept: tuple[City, Register] | None = None


def keep_register(city: City) -> Register | None:
    """Make ``city``'s :class:`Register` and keep it in this process (dropping one kept
    of another city), unless the city has over :data:`REGISTER_MAX_PEOPLE` people.

    An export worker does this at its start (:func:`exchange.departments.tables.warm`):
    every cold chunk then gathers each person's slot, couple, death and job from it
    instead of deriving them (a household chunk spent a sixth of its CPU on them, a birth
    certificate's search for its mother more: it derived several drawn couples a child).
    The city's couples are derived once, in slices, not once per table that needs them.
    Only processes that make it keep it: a server or a load generator that derives a
    few people never pays for it."""
    global _kept  # one register per process, of the city its chunks are derived from
    if city.population > REGISTER_MAX_PEOPLE:
        return None
    kept = _kept
    if kept is not None and kept[0] is city:
        return kept[1]
    _kept = None  # derived without a register from here on
    units = city.units
    reg = Register(
        day=np.empty((units, 2), dtype=np.int32),
        area=np.empty((units, 2), dtype=np.int32),
        h=np.empty(units, dtype=np.int32),
        married=np.empty(units, dtype=np.int32),
        divorced=np.empty(units, dtype=np.int32),
        death=np.empty((units, 2), dtype=np.int32),
        job=np.empty(city.population, dtype=np.int32),
        staff=np.empty(city.population, dtype=np.int32),
    )
    # A slice at a time: deriving a couple holds a few dozen temporary arrays.
    for lo in range(0, units, _REGISTER_SLICE):
        hi = min(lo + _REGISTER_SLICE, units)
        unit = np.arange(lo, hi, dtype=np.int64)
        both = couple_slots(city, unit)
        day_h, area_h, h, day_w, area_w = both
        reg.day[lo:hi, 0], reg.day[lo:hi, 1] = day_h, day_w
        reg.area[lo:hi, 0], reg.area[lo:hi, 1] = area_h, area_w
        reg.h[lo:hi] = h
        reg.married[lo:hi], reg.divorced[lo:hi], reg.death[lo:hi] = marriages(city, unit, both)
    for lo in range(0, city.population, _REGISTER_SLICE):
        hi = min(lo + _REGISTER_SLICE, city.population)
        reg.job[lo:hi] = jobs(city, np.arange(lo, hi, dtype=np.int64))
    reg.staff[reg.job] = np.arange(city.population, dtype=np.int32)
    _kept = (city, reg)
    return reg


def register(city: City) -> Register | None:
    """The register this process keeps of ``city`` (:func:`keep_register`), if any."""
    kept = _kept
    return kept[1] if kept is not None and kept[0] is city else None


def jobs(city: City, index: I64) -> I64:
    """Each person's job slot: ``City``'s employment permutation (its employer, if any, is
    the slot modulo the enterprises)."""
    reg = register(city)
    if reg is not None:
        return _i64(reg.job[index])
    out: I64 = feistel_forward(city._emp, index.astype(np.uint64)).astype(np.int64)
    return out


def staff(city: City, slot: I64) -> I64:
    """The person in each job slot (:func:`jobs` inverted): enterprise ``e``'s staff hold
    the slots ``e``, ``e + enterprises``, … in the order ``City.employees_of`` scans them."""
    reg = register(city)
    if reg is not None:
        return _i64(reg.staff[slot])
    out: I64 = feistel_inverse(city._emp, slot.astype(np.uint64)).astype(np.int64)
    return out


def _i64(values: I32) -> I64:
    out: I64 = values.astype(np.int64)
    return out


@lru_cache(maxsize=1)
def lookup_tables() -> dict[str, Any]:
    """Lookup tables for the per-person strings (built once per process)."""
    id_areas = (*AREAS, *sorted(DISPLAY_TO_AREA))
    weights = ids.ID_WEIGHTS
    return {
        "id_areas": id_areas,
        "id_area_weight": np.array(
            [sum((ord(c) - 48) * w for c, w in zip(a, weights[:6], strict=True)) for a in id_areas],
            dtype=np.int64,
        ),
        "area_pos": {a: i for i, a in enumerate(id_areas)},
        "area_codes": np.array([int(a) for a in AREAS], dtype=np.int64),
        # The check sum's share of each sequence (below 1,000: SEQ_HALVES is 499), one
        # gather where three int64 divisions a person cost more than the rest of the sum.
        "seq_weight": np.array(
            [
                sum((ord(c) - 48) * w for c, w in zip(f"{q:03d}", weights[14:17], strict=True))
                for q in range(1000)
            ],
            dtype=np.int64,
        ),
        "surname_cum": np.array(names.SURNAME_CUM, dtype=np.uint64),
        "eth_cum": np.array(names.ETH_CUM, dtype=np.uint64),
        "residence": np.array([AREAS.index(a) for a in RESIDENCE_TABLE], dtype=np.int64),
        "streets": [STREETS[a] for a in AREAS],
        "street_counts": np.array([len(STREETS[a]) for a in AREAS], dtype=np.uint64),
        "ymd": [f"{d:%Y%m%d}" for d in calendar_tables()[0][:DAYS]],
    }


def id_parts(day: I64, area_i: I64, h: I64, female: BOOL) -> tuple[I64, I64, I64]:
    """(printed area's position in the ``id_areas`` table, sequence, check-character index)
    of each ID number: ``City.id_number_of`` in bulk."""
    t = lookup_tables()
    day_digits = calendar_tables()[4]
    # The ID's printed area: some older residents keep a retired district's code.
    birth_ord = day + BASE_ORD
    area_codes = t["area_codes"][area_i]
    old = (birth_ord < RETIRE_2005.toordinal()) & (h % 3 == 0)
    pos = t["area_pos"]
    shown = np.where(old & (area_codes == 440104), pos["440102"], area_i)
    shown = np.where(old & (area_codes == 440103), pos["440107"], shown)
    luogang = (
        (area_codes == 440112)
        & (birth_ord >= LUOGANG_FROM.toordinal())
        & (birth_ord < LUOGANG_TO.toordinal())
        & ((h & 1) == 0)
    )
    shown = np.where(luogang, pos["440116"], shown)
    seq = 2 * h + 1 + female
    check = (t["id_area_weight"][shown] + day_digits[day] + t["seq_weight"][seq]) % 11
    return shown, seq, check


def id_numbers(city: City, index: I64) -> list[str]:
    """The ID numbers of persons ``index`` (equal to ``city.id_number_of`` of each)."""
    index = np.asarray(index, dtype=np.int64)
    day, area_i, h = slots(city, index)
    shown, seq, check = id_parts(day, area_i, h, (index & 1).astype(np.bool_))
    t = lookup_tables()
    id_areas, ymd, chars = t["id_areas"], t["ymd"], ids.ID_CHECK
    return [
        f"{id_areas[a]}{ymd[d]}{q:03d}{chars[c]}"
        for a, d, q, c in zip(
            shown.tolist(), day.tolist(), seq.tolist(), check.tolist(), strict=True
        )
    ]


def sample_id_numbers(city: City, n: int, seed: int = 0) -> list[str]:
    """:meth:`City.sample_id_numbers` in bulk (a load test's key pool of 20,000 took
    seconds of a Locust worker's only thread, long enough to miss its heartbeats)."""
    n = min(n, city.population)
    picker = Feistel(city_mix(city.seed, seed, 0x5A3), city.population)
    return id_numbers(city, feistel_forward(picker, np.arange(n, dtype=np.uint64)).astype(np.int64))


def warm() -> None:
    """Build the lookup tables (every birth day's date and ID digits, ~34,000 entries) now,
    at a department's start, not inside its first export (on a busy machine that first
    export then overran a short provider timeout)."""
    lookup_tables()


def people(city: City, start: int, stop: int) -> list[Person]:
    """Persons ``start <= index < stop`` (clipped to the population), equal to
    ``[city.person(i) for i in range(start, stop)]``."""
    start, stop = max(0, start), min(stop, city.population)
    if start >= stop:
        return []
    return persons(city, np.arange(start, stop, dtype=np.int64))


def persons(city: City, index: I64) -> list[Person]:
    """Persons at the given indices (each ``0 <= i < population``), in that order, equal to
    ``[city.person(i) for i in index]``."""
    index = np.asarray(index, dtype=np.int64)
    if not len(index):
        return []
    t = lookup_tables()
    dates = calendar_tables()[0]
    # Whole couples: a person's record needs both partners' slots and deaths.
    units = distinct(index >> 1)
    both = couple_slots(city, units)
    married, divorced, death2 = marriages(city, units, both)
    day_h, area_h, h_u, day_w, area_w = both
    # Flattened couple by couple, husband then wife: person 2u + k at 2 * (its unit) + k.
    day = np.stack([day_h, day_w], axis=1).ravel()
    area_i = np.stack([area_h, area_w], axis=1).ravel()
    h = np.repeat(h_u, 2)
    death = death2.ravel()
    unit_of = np.searchsorted(units, index >> 1)
    at = 2 * unit_of + (index & 1)
    # Whether the head of a couple's household is alive: the husband's death (index 2u).
    husband_death = death[2 * unit_of]
    day, area_i, h, death = day[at], area_i[at], h[at], death[at]
    m, dv = married[unit_of], divorced[unit_of]
    n = len(index)
    female = (index & 1).astype(np.bool_)

    shown, seq, check = id_parts(day, area_i, h, female)

    # Names: the draws a person's Rng makes, in order; the ethnicity's draw moves by two
    # when the given name has a second character.
    d = splitmix_draws(mix(n, city.seed, T_PERSON, index.astype(np.uint64)), 6)
    surname = np.searchsorted(t["surname_cum"], d[0] % np.uint64(names.SURNAME_TOTAL), "right")
    two = chance(d[2], 0.78)
    own_second = chance(d[3], 0.6)
    eth_draw = np.where(two, d[5], d[3])
    ethnicity = np.searchsorted(t["eth_cum"], eth_draw % np.uint64(names.ETH_TOTAL), "right")

    # Household: together when married and not divorced; the head's death decides who
    # heads it. Deaths of the husbands of this range's units:
    together = (m >= 0) & (dv < 0)
    head_alive = husband_death < 0
    hh_id = np.where(together, 2 * (index >> 1), index)
    relation_spouse = together & female & head_alive
    hd = splitmix_draws(mix(n, city.seed, T_HOUSE, hh_id.astype(np.uint64)), 6)
    district = t["residence"][(hd[0] % np.uint64(len(RESIDENCE_TABLE))).astype(np.int64)]
    street_i = (hd[1] % t["street_counts"][district]).astype(np.int64)
    road = (hd[2] % np.uint64(len(ROADS))).astype(np.int64)
    no1 = 1 + (hd[3] % np.uint64(899)).astype(np.int64)
    no2 = 1 + (hd[4] % np.uint64(30)).astype(np.int64)
    no3 = 1 + (hd[5] % np.uint64(8)).astype(np.int64)

    out: list[Person] = []
    id_areas, ymd, streets = t["id_areas"], t["ymd"], t["streets"]
    check_chars = ids.ID_CHECK
    surnames, eths = names.SURNAMES, names.ETHNICITIES
    male_c, female_c, neutral_c = names.MALE_CHARS, names.FEMALE_CHARS, names.NEUTRAL_CHARS
    columns = zip(
        index.tolist(),
        female.tolist(),
        day.tolist(),
        shown.tolist(),
        seq.tolist(),
        check.tolist(),
        surname.tolist(),
        d[1].tolist(),
        two.tolist(),
        own_second.tolist(),
        d[4].tolist(),
        ethnicity.tolist(),
        death.tolist(),
        m.tolist(),
        dv.tolist(),
        relation_spouse.tolist(),
        hh_id.tolist(),
        district.tolist(),
        street_i.tolist(),
        road.tolist(),
        no1.tolist(),
        no2.tolist(),
        no3.tolist(),
        strict=True,
    )
    for (
        i,
        fem,
        dy,
        shown_i,
        sq,
        ck,
        sur,
        g1,
        has_two,
        own,
        g2,
        eth,
        died,
        mar,
        div,
        spouse_rel,
        hh,
        dist,
        st,
        rd,
        n1,
        n2,
        n3,
    ) in columns:
        chars = female_c if fem else male_c
        given = chars[g1 % len(chars)]
        if has_two:
            second = chars if own else neutral_c
            given += second[g2 % len(second)]
        area = AREAS[dist]
        street = streets[dist][st]
        out.append(
            Person(
                index=i,
                id_number=f"{id_areas[shown_i]}{ymd[dy]}{sq:03d}{check_chars[ck]}",
                name=surnames[sur][0] + given,
                sex="女" if fem else "男",
                birth_date=dates[dy],
                id_area=id_areas[shown_i],
                ethnicity=eths[eth][0],
                household_number=f"{440100000000 + hh:012d}",
                relation="配偶" if spouse_rel else "户主",
                district=area,
                street=street,
                address=(
                    f"广州市{ids.AREA_NAMES[area]}{street.removesuffix('街道')}"
                    f"{ROADS[rd]}{n1}号{n2}0{n3}房"
                ),
                death_date=None if died < 0 else dt.date.fromordinal(died),
                spouse_index=i ^ 1 if mar >= 0 else None,
                married_on=None if mar < 0 else dt.date.fromordinal(mar),
                divorced_on=None if div < 0 else dt.date.fromordinal(div),
            )
        )
    return out
