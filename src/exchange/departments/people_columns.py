"""People of the city as columns: what an export derives of a person, one array per fact.

:mod:`exchange.departments.bulk` derives people in bulk but then builds one :class:`Person`
object each; an export then built each record in Python from that object, asking the city
again (scalar, ~10-100 µs a call) for an employer, a spouse or a parent. Here every fact a
record needs is a NumPy column over the block's indices, computed on first use (a block of
the medical topic never derives an address). The scalar code in
:mod:`exchange.departments.city` stays the definition; the tests compare each exported
record with the single lookup of its key.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from exchange import ids
from exchange.departments import (
    bulk,
    bulk_enterprises,
    calendar_arrays,
    jsonbytes,
    names,
    prng_arrays,
)
from exchange.departments.city import City
from exchange.departments.columns import AREA_NAMES as _AREA_NAMES
from exchange.departments.columns import street_tables
from exchange.departments.people import BASE_ORD, REFERENCE_DATE
from exchange.departments.prng import T_ENT, T_HOUSE, T_PERSON, T_WORK
from exchange.departments.prng_arrays import BOOL, I64, distinct, mix, splitmix_draws
from exchange.departments.vocabulary import (
    RESIDENCE_TABLE,
    ROADS,
)

__all__ = ["NameTables", "People", "name_tables"]


@lru_cache(maxsize=1)
def _id_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """ASCII of the ID numbers' parts: each printed area code, each birth day's YYYYMMDD
    (by day index) and each check character."""
    t = bulk.lookup_tables()
    areas = np.array([list(a.encode()) for a in t["id_areas"]], dtype=np.uint8)
    days = np.frombuffer("".join(t["ymd"]).encode(), dtype=np.uint8).reshape(-1, 8)
    return areas, days, np.frombuffer(ids.ID_CHECK.encode(), dtype=np.uint8)


class NameTables(NamedTuple):
    """The characters names are made of: the given-name characters (male, then female,
    then neutral), each surname's (two columns, 0 after a one-character surname) and its
    length, and the UTF-8 of each (a given character's three bytes, with a last row of
    NULs for "none"; a surname's six, NUL after a one-character one)."""

    given: npt.NDArray[np.uint32]
    surname: npt.NDArray[np.uint32]
    surname_len: I64
    given_utf8: npt.NDArray[np.uint8]
    surname_utf8: npt.NDArray[np.uint8]


@lru_cache(maxsize=1)
def name_tables() -> NameTables:
    given = np.array([ord(c) for c in _GIVEN], dtype=np.uint32)
    sur = np.zeros((len(names.SURNAMES), 2), dtype=np.uint32)
    sur_utf8 = np.zeros((len(names.SURNAMES), 6), dtype=np.uint8)
    for i, (s, _) in enumerate(names.SURNAMES):
        sur[i, : len(s)] = [ord(c) for c in s]
        encoded = s.encode()
        sur_utf8[i, : len(encoded)] = np.frombuffer(encoded, dtype=np.uint8)
    given_utf8 = np.zeros((len(_GIVEN) + 1, 3), dtype=np.uint8)
    given_utf8[:-1] = np.frombuffer(_GIVEN.encode(), dtype=np.uint8).reshape(-1, 3)
    return NameTables(
        given,
        sur,
        np.array([len(s) for s, _ in names.SURNAMES], dtype=np.int64),
        given_utf8,
        sur_utf8,
    )


_GIVEN = names.MALE_CHARS + names.FEMALE_CHARS + names.NEUTRAL_CHARS
# Where the female and the neutral characters start in ``_GIVEN``.
_FEMALE_AT = len(names.MALE_CHARS)
_NEUTRAL_AT = _FEMALE_AT + len(names.FEMALE_CHARS)


#: Columns :meth:`People.take` carries over when made (the rest are made again if asked).
_CARRIED = ("death", "married", "divorced", "husband_death", "employer", "together", "alive")


def _units(index: I64) -> I64:
    """The couples of these persons, each once, in order (``np.unique(index >> 1)``)."""
    return distinct(index >> 1)


class People:
    """Columns of the persons at ``index`` (any order, each ``0 <= i < population``).

    Each person's slot comes from their couple's (one permutation for both partners);
    every other column is made on first use: the couple's marriage, which needs both
    partners' deaths, only for the tables that write it (a birth certificate's parents or
    an enterprise's legal representative need a name and an ID number, nothing more).
    """

    day: I64
    area_i: I64
    h: I64

    def __init__(self, city: City, index: I64) -> None:
        self.city = city
        index = np.asarray(index, dtype=np.int64)
        self.index = index
        self.n = n = len(index)
        self.female: BOOL = (index & 1).astype(np.bool_)
        #: (couples, each person's position among them, their bulk.couple_slots)
        self._couples: tuple[I64, I64, tuple[I64, I64, I64, I64, I64]] | None = None
        if not n:
            self.day = self.area_i = self.h = np.zeros(0, dtype=np.int64)
            return
        if bulk.register(city) is not None:
            # Each person's slot gathered from the register: no couples to derive first.
            self.day, self.area_i, self.h = bulk.slots(city, index)
            return
        units = _units(index)
        unit_of = np.searchsorted(units, index >> 1)
        slots = bulk.couple_slots(city, units)
        day_h, area_h, h_u, day_w, area_w = slots
        fem = self.female
        self.day = np.where(fem, day_w[unit_of], day_h[unit_of])
        self.area_i = np.where(fem, area_w[unit_of], area_h[unit_of])
        self.h = h_u[unit_of]
        self._couples = (units, unit_of, slots)

    def take(self, pos: I64 | BOOL) -> People:
        """The people at positions (or where a mask is true) of this block, without deriving
        them again (the columns made so far of :data:`_CARRIED` are carried over)."""
        out = People.__new__(People)
        out.city = self.city
        out.index = self.index[pos]
        out.n = len(out.index)
        out.female = self.female[pos]
        out.day, out.area_i, out.h = self.day[pos], self.area_i[pos], self.h[pos]
        out._couples = None
        for name in _CARRIED:
            if name in self.__dict__:
                out.__dict__[name] = self.__dict__[name][pos]
        return out

    # -- the couple ----------------------------------------------------------------------

    @cached_property
    def death(self) -> I64:
        """Death-day ordinals (-1: alive)."""
        return bulk.deaths(self.city, self.index, self.day)

    @cached_property
    def _marriage(self) -> I64:
        """(married, divorced, husband's death) of each person's couple, a (3, n) array:
        derived only for the tables that need it (household, marriage, real estate), as
        it needs both partners' deaths."""
        city = self.city
        reg = bulk.register(city)
        if reg is not None:
            unit = self.index >> 1
            return np.stack([reg.married[unit], reg.divorced[unit], reg.death[unit, 0]]).astype(
                np.int64
            )
        if self._couples is None:
            units = _units(self.index)
            unit_of = np.searchsorted(units, self.index >> 1)
            slots = bulk.couple_slots(city, units)
        else:
            units, unit_of, slots = self._couples
        married, divorced, death = bulk.marriages(city, units, slots)
        return np.stack([married[unit_of], divorced[unit_of], death[unit_of, 0]])

    @cached_property
    def married(self) -> I64:
        """Marriage-day ordinals of each person's couple (-1: never married)."""
        out: I64 = self._marriage[0]
        return out

    @cached_property
    def divorced(self) -> I64:
        out: I64 = self._marriage[1]
        return out

    @cached_property
    def husband_death(self) -> I64:
        """Death of the husband of each person's couple: whether the household's head
        lives."""
        out: I64 = self._marriage[2]
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
            e = bulk.jobs(city, self.index[who]) % city.enterprises
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
        # Gathered straight into the row's columns (``mode="clip"``: not through a
        # buffer; every index is in range): a gather and then a copy cost ~40 % more.
        np.take(areas, shown, axis=0, out=chars[:, :6], mode="clip")
        np.take(days, self.day, axis=0, out=chars[:, 6:14], mode="clip")
        # The sequence's three digits gathered (jsonbytes' table of them), where dividing
        # each out (int64 division, NumPy's slowest arithmetic) cost more than the rest.
        chars[:, 14:17] = jsonbytes.digits(seq, 3)
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
    def person_draws(self) -> npt.NDArray[np.uint64]:
        """The first six draws of each person's Rng: the name's, then the ethnicity's."""
        return splitmix_draws(
            mix(self.n, self.city.seed, T_PERSON, self.index.astype(np.uint64)), 6
        )

    @cached_property
    def name_picks(self) -> tuple[I64, I64, I64]:
        """(surname, first given character, second given character or -1: none) of each
        name, as rows of :func:`name_tables`' surnames and given characters."""
        t = bulk.lookup_tables()
        d = self.person_draws
        surname = np.searchsorted(t["surname_cum"], d[0] % np.uint64(names.SURNAME_TOTAL), "right")
        two = prng_arrays.chance(d[2], 0.78)
        own = prng_arrays.chance(d[3], 0.6)
        fem = self.female
        n_male, n_female = _FEMALE_AT, _NEUTRAL_AT - _FEMALE_AT
        n_neutral = len(_GIVEN) - _NEUTRAL_AT

        def pick(draw: npt.NDArray[np.uint64], size: int) -> I64:
            out: I64 = (draw % np.uint64(size)).astype(np.int64)
            return out

        first = np.where(fem, _FEMALE_AT + pick(d[1], n_female), pick(d[1], n_male))
        own_set = np.where(fem, _FEMALE_AT + pick(d[4], n_female), pick(d[4], n_male))
        second = np.where(own, own_set, _NEUTRAL_AT + pick(d[4], n_neutral))
        return surname, first, np.where(two, second, -1)

    @cached_property
    def name_points(self) -> npt.NDArray[np.uint32]:
        """Code points of each name, a (n, 4) array (0 after a short name)."""
        surname, first, second = self.name_picks
        t = name_tables()
        cp = np.zeros((self.n, 4), dtype=np.uint32)
        cp[:, :2] = t.surname[surname]
        rows = np.arange(self.n)
        at = t.surname_len[surname]
        cp[rows, at] = t.given[first]
        cp[rows, at + 1] = np.where(second >= 0, t.given[second], 0)
        return cp

    @cached_property
    def sex(self) -> list[str]:
        return ["女" if f else "男" for f in self.female.tolist()]

    @cached_property
    def ethnicity_i(self) -> I64:
        """Index of each person's ethnicity in ``names.ETHNICITIES``."""
        t = bulk.lookup_tables()
        d = self.person_draws
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
