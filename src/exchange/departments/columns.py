"""People and enterprises of the city as columns: what an export derives, one array per fact.

:mod:`exchange.departments.bulk` derives people in bulk but then builds one :class:`Person`
object each; an export then built each record in Python from that object, asking the city
again (scalar, ~10-100 µs a call) for an employer, a spouse or a parent. A cold export ran
at 1-5 k records/s against a warm one's 100-400 k. Here every fact a record needs is a
NumPy column over the block's indices, computed on first use (a block of the medical
topic never derives an address), and strings are made once per column, not per record.

The scalar code in :mod:`exchange.departments.city` stays the definition: every column
below re-implements one of its rules over arrays, and the tests compare each exported
record with the single lookup of its key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property, lru_cache

import numpy as np
import numpy.typing as npt

from exchange import ids
from exchange.departments import bulk, bulk_enterprises, calendar_arrays, names, prng_arrays
from exchange.departments.city import City
from exchange.departments.enterprises import NUMERIC_BODIES
from exchange.departments.people import AREAS, BASE_ORD, REFERENCE_DATE
from exchange.departments.prng import T_ENT, T_HOUSE, T_PERSON, T_WORK
from exchange.departments.prng_arrays import BOOL, I64, U64, feistel_forward, mix, splitmix_draws
from exchange.departments.vocabulary import (
    COMPANY_TYPES,
    ENT_STATUS_TABLE,
    ENT_WORDS,
    INDUSTRIES,
    RESIDENCE_TABLE,
    ROADS,
    STREETS,
)

__all__ = [
    "Firms",
    "People",
    "credit_codes",
    "draws",
    "from_age",
    "iso_dates",
    "street_tables",
    "tag_of",
]

_EPOCH = dt.date(1970, 1, 1).toordinal()
REF_ORD = REFERENCE_DATE.toordinal()
_AREA_NAMES = [ids.AREA_NAMES[a] for a in AREAS]


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


_CREDIT_BYTES = np.frombuffer(ids.CREDIT_ALPHABET.encode(), dtype=np.uint8)
# Value of each ASCII character: GB 32100's (its alphabet's index) and GB 11714's (A=10).
_CREDIT_VALUE = np.zeros(128, dtype=np.int64)
_CREDIT_VALUE[_CREDIT_BYTES] = np.arange(len(_CREDIT_BYTES))
_ORG_VALUE = np.zeros(128, dtype=np.int64)
_ORG_VALUE[48:58] = np.arange(10)
_ORG_VALUE[65:91] = np.arange(10, 36)
_AREA_BYTES = np.array([list(a.encode()) for a in AREAS], dtype=np.uint8)


def credit_codes(kind92: BOOL, area_i: I64, slot: U64) -> list[str]:
    """``ids.make_credit_code(kind, area, City._org_body(slot))`` of each enterprise, the
    check characters computed over arrays (per code in Python it was most of an
    enterprise table's cost)."""
    out: list[str] = credit_chars(kind92, area_i, slot).view("S18").ravel().astype(str).tolist()
    return out


def credit_chars(kind92: BOOL, area_i: I64, slot: U64) -> npt.NDArray[np.uint8]:
    """ASCII of :func:`credit_codes`, one row of 18 bytes each."""
    n = len(slot)
    chars = np.empty((n, 18), dtype=np.uint8)
    chars[:, 0] = ord("9")
    chars[:, 1] = np.where(kind92, ord("2"), ord("1"))
    chars[:, 2:8] = _AREA_BYTES[area_i]
    # The organisation-code body: 8 digits, or "MA" and 6 characters of the alphabet.
    modern = slot >= np.uint64(NUMERIC_BODIES)
    v = np.where(modern, slot - np.uint64(NUMERIC_BODIES), slot).astype(np.int64)
    base = np.where(modern, len(_CREDIT_BYTES), 10)
    for i in range(15, 7, -1):
        v, d = np.divmod(v, base)
        chars[:, i] = np.where(modern, _CREDIT_BYTES[np.minimum(d, len(_CREDIT_BYTES) - 1)], 48 + d)
    chars[modern, 8] = ord("M")
    chars[modern, 9] = ord("A")
    org = (_ORG_VALUE[chars[:, 8:16]] * np.array(ids.ORG_WEIGHTS)).sum(axis=1)
    check = 11 - org % 11
    chars[:, 16] = np.where(check == 10, ord("X"), np.where(check == 11, ord("0"), 48 + check))
    total = (_CREDIT_VALUE[chars[:, :17]] * np.array(ids.CREDIT_WEIGHTS)).sum(axis=1)
    chars[:, 17] = _CREDIT_BYTES[(31 - total % 31) % 31]
    return chars


@lru_cache(maxsize=1)
def _id_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """ASCII of the ID numbers' parts: each printed area code, each birth day's YYYYMMDD
    (by day index) and each check character."""
    t = bulk.lookup_tables()
    areas = np.array([list(a.encode()) for a in t["id_areas"]], dtype=np.uint8)
    days = np.frombuffer("".join(t["ymd"]).encode(), dtype=np.uint8).reshape(-1, 8)
    return areas, days, np.frombuffer(ids.ID_CHECK.encode(), dtype=np.uint8)


@lru_cache(maxsize=1)
def _name_tables() -> tuple[
    npt.NDArray[np.uint32],
    npt.NDArray[np.uint32],
    npt.NDArray[np.uint32],
    npt.NDArray[np.uint32],
    I64,
]:
    """Code points of the given-name characters (male, female, neutral), of each surname
    (two columns, 0 after a one-character surname) and each surname's length."""

    def points(chars: str) -> npt.NDArray[np.uint32]:
        return np.array([ord(c) for c in chars], dtype=np.uint32)

    sur = np.zeros((len(names.SURNAMES), 2), dtype=np.uint32)
    for i, (s, _) in enumerate(names.SURNAMES):
        sur[i, : len(s)] = [ord(c) for c in s]
    lengths = np.array([len(s) for s, _ in names.SURNAMES], dtype=np.int64)
    return (
        points(names.MALE_CHARS),
        points(names.FEMALE_CHARS),
        points(names.NEUTRAL_CHARS),
        sur,
        lengths,
    )


class People:
    """Columns of the persons at ``index`` (any order, each ``0 <= i < population``).

    Like :func:`bulk.persons`, whole couples are derived (a record needs both partners'
    slots and deaths); columns are made on first use.
    """

    day: I64
    area_i: I64
    h: I64
    death: I64
    married: I64
    divorced: I64
    #: death of the husband of each person's couple: whether the household's head lives
    husband_death: I64

    def __init__(self, city: City, index: I64) -> None:
        self.city = city
        index = np.asarray(index, dtype=np.int64)
        self.index = index
        self.n = n = len(index)
        self.female: BOOL = (index & 1).astype(np.bool_)
        if not n:
            empty = np.zeros(0, dtype=np.int64)
            self.day = self.area_i = self.h = self.death = empty
            self.married = self.divorced = self.husband_death = empty
            return
        units = np.unique(index >> 1)
        pair = np.stack([2 * units, 2 * units + 1], axis=1)
        flat = pair.ravel()
        exists = flat < city.population
        day, area_i, h = bulk.slots(city, flat)
        death = np.where(exists, bulk.deaths(city, flat, day), -1)
        shape = pair.shape
        married, divorced = bulk.couples(
            city,
            units,
            day.reshape(shape),
            area_i.reshape(shape),
            h.reshape(shape),
            death.reshape(shape),
        )
        unit_of = np.searchsorted(units, index >> 1)
        at = 2 * unit_of + (index & 1)
        self.husband_death = death[2 * unit_of]
        self.day, self.area_i, self.h, self.death = day[at], area_i[at], h[at], death[at]
        self.married, self.divorced = married[unit_of], divorced[unit_of]

    def take(self, pos: I64 | BOOL) -> People:
        """The people at positions (or where a mask is true) of this block, without deriving
        them again (columns already made are not carried over)."""
        out = People.__new__(People)
        out.city = self.city
        out.index = self.index[pos]
        out.n = len(out.index)
        out.female = self.female[pos]
        out.day, out.area_i, out.h = self.day[pos], self.area_i[pos], self.h[pos]
        out.death, out.husband_death = self.death[pos], self.husband_death[pos]
        out.married, out.divorced = self.married[pos], self.divorced[pos]
        if "employer" in self.__dict__:
            out.__dict__["employer"] = self.employer[pos]
        return out

    # -- numbers -------------------------------------------------------------------------

    @cached_property
    def birth(self) -> I64:
        """Birth-day ordinals."""
        out: I64 = self.day + BASE_ORD
        return out

    @cached_property
    def age(self) -> I64:
        """Age on the reference date (31 December: the year's birthdays have all passed)."""
        out: I64 = REFERENCE_DATE.year - calendar_arrays.calendar_tables()[1][self.day]
        return out

    @cached_property
    def alive(self) -> BOOL:
        out: BOOL = self.death < 0
        return out

    @cached_property
    def together(self) -> BOOL:
        """Married and not divorced: the couple shares a household and its property."""
        out: BOOL = (self.married >= 0) & (self.divorced < 0)
        return out

    @cached_property
    def employer(self) -> I64:
        """``City.employer_of_index`` of each person (-1: none)."""
        city = self.city
        age, female = self.age, self.female
        works = (age >= 18) & (age < np.where(female, 55, 60)) & self.alive
        works &= mix(self.n, city.seed, T_WORK, self.index.astype(np.uint64)) % np.uint64(
            100
        ) < np.uint64(74)
        out = np.full(self.n, -1, dtype=np.int64)
        who = np.flatnonzero(works)
        if len(who):
            perm = feistel_forward(city._emp, self.index[who].astype(np.uint64))
            e = (perm % np.uint64(city.enterprises)).astype(np.int64)
            status = mix(len(e), city.seed, T_ENT, e.astype(np.uint64), 1) % np.uint64(
                len(bulk_enterprises.ACTIVE)
            )
            out[who] = np.where(bulk_enterprises.ACTIVE[status.astype(np.int64)], e, -1)
        return out

    # -- strings -------------------------------------------------------------------------

    @cached_property
    def id_chars(self) -> npt.NDArray[np.uint8]:
        """ASCII of each ID number, one row of 18 bytes each."""
        shown, seq, check = bulk.id_parts(self.day, self.area_i, self.h, self.female)
        areas, days, checks = _id_tables()
        chars = np.empty((self.n, 18), dtype=np.uint8)
        chars[:, :6] = areas[shown]
        chars[:, 6:14] = days[self.day]
        chars[:, 14] = 48 + seq // 100
        chars[:, 15] = 48 + seq // 10 % 10
        chars[:, 16] = 48 + seq % 10
        chars[:, 17] = checks[check]
        return chars

    @cached_property
    def id_number(self) -> list[str]:
        out: list[str] = self.id_chars.view("S18").ravel().astype(str).tolist()
        return out

    @cached_property
    def name(self) -> list[str]:
        """Surname and one or two given characters: the rows of :attr:`name_points` read
        back as strings by NumPy (the zeros after a short name drop off)."""
        out: list[str] = self.name_points.view("<U4").ravel().tolist()
        return out

    @cached_property
    def name_points(self) -> npt.NDArray[np.uint32]:
        """Code points of each name, a (n, 4) array (0 after a short name)."""
        t = bulk.lookup_tables()
        d = splitmix_draws(mix(self.n, self.city.seed, T_PERSON, self.index.astype(np.uint64)), 6)
        surname = np.searchsorted(t["surname_cum"], d[0] % np.uint64(names.SURNAME_TOTAL), "right")
        two = prng_arrays.chance(d[2], 0.78)
        own = prng_arrays.chance(d[3], 0.6)
        male, female, neutral, sur_cp, sur_len = _name_tables()
        fem = self.female
        first = np.where(
            fem,
            female[(d[1] % np.uint64(len(female))).astype(np.int64)],
            male[(d[1] % np.uint64(len(male))).astype(np.int64)],
        )
        own_set = np.where(
            fem,
            female[(d[4] % np.uint64(len(female))).astype(np.int64)],
            male[(d[4] % np.uint64(len(male))).astype(np.int64)],
        )
        second = np.where(own, own_set, neutral[(d[4] % np.uint64(len(neutral))).astype(np.int64)])
        cp = np.zeros((self.n, 4), dtype=np.uint32)
        cp[:, :2] = sur_cp[surname]
        rows = np.arange(self.n)
        at = sur_len[surname]
        cp[rows, at] = first
        cp[rows, at + 1] = np.where(two, second, 0)
        return cp

    @cached_property
    def sex(self) -> list[str]:
        return ["女" if f else "男" for f in self.female.tolist()]

    @cached_property
    def ethnicity_i(self) -> I64:
        """Index of each person's ethnicity in ``names.ETHNICITIES``."""
        t = bulk.lookup_tables()
        d = splitmix_draws(mix(self.n, self.city.seed, T_PERSON, self.index.astype(np.uint64)), 6)
        eth_draw = np.where(prng_arrays.chance(d[2], 0.78), d[5], d[3])
        out: I64 = np.searchsorted(t["eth_cum"], eth_draw % np.uint64(names.ETH_TOTAL), "right")
        return out

    @cached_property
    def ethnicity(self) -> list[str]:
        table = names.ETHNICITIES
        return [table[e][0] for e in self.ethnicity_i.tolist()]

    @cached_property
    def household_arrays(self) -> tuple[I64, I64, I64, I64, I64, I64, I64]:
        """(household id, district area index, street index, road, and three numbers)."""
        t = bulk.lookup_tables()
        hh_id = np.where(self.together, 2 * (self.index >> 1), self.index)
        hd = splitmix_draws(mix(self.n, self.city.seed, T_HOUSE, hh_id.astype(np.uint64)), 6)
        district = t["residence"][(hd[0] % np.uint64(len(RESIDENCE_TABLE))).astype(np.int64)]
        street = (hd[1] % t["street_counts"][district]).astype(np.int64)
        road = (hd[2] % np.uint64(len(ROADS))).astype(np.int64)
        no1 = 1 + (hd[3] % np.uint64(899)).astype(np.int64)
        no2 = 1 + (hd[4] % np.uint64(30)).astype(np.int64)
        no3 = 1 + (hd[5] % np.uint64(8)).astype(np.int64)
        return hh_id, district, street, road, no1, no2, no3

    @cached_property
    def _household(
        self,
    ) -> tuple[I64, I64, list[int], list[int], list[int], list[int], list[int]]:
        """:attr:`household_arrays` with the street, road and numbers as lists."""
        hh_id, district, street, road, no1, no2, no3 = self.household_arrays
        return (
            hh_id,
            district,
            street.tolist(),
            road.tolist(),
            no1.tolist(),
            no2.tolist(),
            no3.tolist(),
        )

    @cached_property
    def district(self) -> I64:
        """Area index of each person's registered (household) district."""
        return self._household[1]

    @cached_property
    def street_i(self) -> list[int]:
        """Index of each person's street within their district's streets."""
        return self._household[2]

    @cached_property
    def street(self) -> list[str]:
        streets, _ = street_tables()
        return [streets[a][s] for a, s in zip(self.district.tolist(), self.street_i, strict=True)]

    @cached_property
    def address(self) -> list[str]:
        _, bare = street_tables()
        _, district, street, road, no1, no2, no3 = self._household
        return [
            f"广州市{_AREA_NAMES[a]}{bare[a][s]}{ROADS[r]}{x}号{y}0{z}房"
            for a, s, r, x, y, z in zip(district.tolist(), street, road, no1, no2, no3, strict=True)
        ]

    @cached_property
    def household_number(self) -> list[str]:
        return [f"{440100000000 + hh:012d}" for hh in self._household[0].tolist()]

    @cached_property
    def relation(self) -> list[str]:
        spouse = self.together & self.female & (self.husband_death < 0)
        return ["配偶" if s else "户主" for s in spouse.tolist()]


class Firms:
    """Columns of the enterprises at ``e`` (each ``0 <= e < enterprises``)."""

    def __init__(self, city: City, e: I64) -> None:
        self.city = city
        e = np.asarray(e, dtype=np.int64)
        self.e = e
        self.n = n = len(e)
        ue = e.astype(np.uint64)
        self.slot: U64 = feistel_forward(city._orgs, ue) if n else np.zeros(0, np.uint64)
        self.modern: BOOL = self.slot >= np.uint64(NUMERIC_BODIES)
        head = splitmix_draws(mix(n, city.seed, T_ENT, ue), 2)
        # ``modern and r.chance(0.3)``: only a modern body spends a draw on the kind.
        self.kind92: BOOL = self.modern & prng_arrays.chance(head[0], 0.3)
        drawn = np.where(self.modern, head[1], head[0])
        self.district: I64 = bulk.lookup_tables()["residence"][
            (drawn % np.uint64(len(RESIDENCE_TABLE))).astype(np.int64)
        ]
        # The body's draws: industry, two name characters, then one for an individual
        # business's capital or two for a company's type and capital, then the founding
        # date, street, road and three numbers.
        self._d = splitmix_draws(mix(n, city.seed, T_ENT, ue, 2), 11)
        self._after = np.where(self.kind92, 4, 5)
        status = mix(n, city.seed, T_ENT, ue, 1) % np.uint64(len(ENT_STATUS_TABLE))
        self.status_i: I64 = status.astype(np.int64)

    def _at(self, offset: int) -> U64:
        """The draw ``offset`` places after the kind-dependent ones, per enterprise."""
        out: U64 = self._d[self._after + offset, np.arange(self.n)]
        return out

    @cached_property
    def status(self) -> list[str]:
        return [ENT_STATUS_TABLE[s] for s in self.status_i.tolist()]

    @cached_property
    def operating(self) -> BOOL:
        """Whether the status starts with 存续 (the licences and taxes follow it)."""
        flags = np.array([s.startswith("存续") for s in ENT_STATUS_TABLE], dtype=np.bool_)
        out: BOOL = flags[self.status_i]
        return out

    @cached_property
    def credit_chars(self) -> npt.NDArray[np.uint8]:
        return credit_chars(self.kind92, self.district, self.slot)

    @cached_property
    def credit_code(self) -> list[str]:
        out: list[str] = self.credit_chars.view("S18").ravel().astype(str).tolist()
        return out

    @cached_property
    def industry_i(self) -> I64:
        out: I64 = (self._d[0] % np.uint64(len(INDUSTRIES))).astype(np.int64)
        return out

    @cached_property
    def industry(self) -> list[str]:
        return [INDUSTRIES[i][0] for i in self.industry_i.tolist()]

    @cached_property
    def name(self) -> list[str]:
        w = len(ENT_WORDS)
        w1 = (self._d[1] % np.uint64(w)).astype(np.int64).tolist()
        w2 = (self._d[2] % np.uint64(w)).astype(np.int64).tolist()
        out = []
        for k92, a, i, x, y in zip(
            self.kind92.tolist(),
            self.district.tolist(),
            self.industry_i.tolist(),
            w1,
            w2,
            strict=True,
        ):
            word = ENT_WORDS[x] + ENT_WORDS[y]
            _, company, shop = INDUSTRIES[i]
            out.append(f"广州市{_AREA_NAMES[a]}{word}{shop}" if k92 else f"广州{word}{company}")
        return out

    @cached_property
    def entity_type(self) -> list[str]:
        kinds = (self._d[3] % np.uint64(len(COMPANY_TYPES))).astype(np.int64).tolist()
        return [
            "个体工商户" if k92 else COMPANY_TYPES[t]
            for k92, t in zip(self.kind92.tolist(), kinds, strict=True)
        ]

    @cached_property
    def capital(self) -> list[int]:
        shop = 1 + (self._d[3] % np.uint64(50)).astype(np.int64)
        company = np.array([10, 50, 100, 200, 500, 1000, 5000])[
            (self._d[4] % np.uint64(7)).astype(np.int64)
        ]
        out: list[int] = np.where(self.kind92, shop, company).tolist()
        return out

    @cached_property
    def founded(self) -> I64:
        """Founding-day ordinals."""
        lo = np.where(
            self.modern, dt.date(2015, 10, 1).toordinal(), dt.date(1985, 1, 1).toordinal()
        )
        hi = np.where(
            self.modern, dt.date(2024, 12, 20).toordinal(), dt.date(2015, 9, 30).toordinal()
        )
        return prng_arrays.between(self._at(0), lo, hi)

    @cached_property
    def address(self) -> list[str]:
        _, bare = street_tables()
        counts = bulk.lookup_tables()["street_counts"][self.district]
        street = (self._at(1) % counts).astype(np.int64).tolist()
        road = (self._at(2) % np.uint64(len(ROADS))).astype(np.int64).tolist()
        no1 = (1 + (self._at(3) % np.uint64(999)).astype(np.int64)).tolist()
        no2 = (1 + (self._at(4) % np.uint64(20)).astype(np.int64)).tolist()
        no3 = (1 + (self._at(5) % np.uint64(9)).astype(np.int64)).tolist()
        return [
            f"广州市{_AREA_NAMES[a]}{bare[a][s]}{ROADS[r]}{x}号{y}0{z}室"
            for a, s, r, x, y, z in zip(
                self.district.tolist(), street, road, no1, no2, no3, strict=True
            )
        ]

    @cached_property
    def legal_rep_people(self) -> tuple[I64, People, I64]:
        """Each enterprise's legal representative (-1: none), those people (each once)
        and each enterprise's position among them."""
        reps = bulk_enterprises.legal_reps(self.city, self.e)
        found = np.unique(reps[reps >= 0])
        return reps, People(self.city, found), np.searchsorted(found, reps)

    @cached_property
    def legal_rep(self) -> tuple[list[str | None], list[str | None]]:
        """(name, ID number) of each enterprise's legal representative (``None``: none)."""
        reps = bulk_enterprises.legal_reps(self.city, self.e)
        found = np.unique(reps[reps >= 0])
        people = People(self.city, found)
        pos = np.searchsorted(found, reps)
        who, idn = people.name, people.id_number
        rep_names: list[str | None] = []
        rep_ids: list[str | None] = []
        for r, p in zip(reps.tolist(), pos.tolist(), strict=True):
            rep_names.append(who[p] if r >= 0 else None)
            rep_ids.append(idn[p] if r >= 0 else None)
        return rep_names, rep_ids

    @cached_property
    def business_scope(self) -> list[str]:
        return [
            f"{INDUSTRIES[i][0]}相关业务(依法须经批准的项目,经相关部门批准后方可开展经营活动)"
            for i in self.industry_i.tolist()
        ]
