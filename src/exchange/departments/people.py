"""The city's people: who each index is (ID number, name, birth, household, marriage,
death), derived on demand.

Each person is an index ``0 <= i < population``; a keyed Feistel permutation maps the index
to an ID-number *slot* (birth day, district, sequence), so ``index -> ID number`` and
``ID number -> index`` are both a few integer operations, and a well-formed Guangzhou ID
number that no index maps to is simply not in the city.

People come in pairs: indices ``2u`` (male) and ``2u + 1`` (female) form *unit* ``u``. The
female's slot is a fixed bijection of the male's (a few years younger, maybe another district),
which is what lets marriages pair people of plausible ages without any lookup table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from exchange import ids
from exchange.departments import names
from exchange.departments.prng import (
    T_COUPLE,
    T_DEATH,
    T_HOUSE,
    T_PEOPLE_PERM,
    T_PERSON,
    T_TAU,
    Feistel,
    Rng,
    mix,
)
from exchange.departments.vocabulary import RESIDENCE_TABLE, ROADS, STREETS

__all__ = [
    "AREAS",
    "BASE_ORD",
    "DAYS",
    "DISPLAY_TO_AREA",
    "LUOGANG_FROM",
    "LUOGANG_TO",
    "N_AREAS",
    "REFERENCE_DATE",
    "RETIRE_2005",
    "SEQ_HALVES",
    "UNIT_SLOTS",
    "People",
    "Person",
]

# The city's "today": fixed so that ages, statuses and balances never drift between runs.
REFERENCE_DATE = dt.date(2024, 12, 31)
_FIRST_BIRTH = dt.date(1930, 1, 1)
_LAST_BIRTH = dt.date(2024, 6, 30)
BASE_ORD = _FIRST_BIRTH.toordinal()
DAYS = _LAST_BIRTH.toordinal() - BASE_ORD + 1
AREAS = ids.CURRENT_AREAS
N_AREAS = len(AREAS)
# Sequence halves: male sequence 2h+1 (001..997), female 2h+2 (002..998).
SEQ_HALVES = 499
UNIT_SLOTS = DAYS * N_AREAS * SEQ_HALVES

RETIRE_2005 = dt.date(2005, 1, 1)
LUOGANG_FROM, LUOGANG_TO = dt.date(2005, 4, 28), dt.date(2014, 2, 12)


@dataclass(frozen=True, slots=True)
class Person:
    """One resident, as public security registers them; other facts hang off the index."""

    index: int
    id_number: str
    name: str
    sex: str  # 男 / 女
    birth_date: dt.date
    id_area: str  # area code printed in the ID number (may be a retired one)
    ethnicity: str
    household_number: str
    relation: str  # 户主 / 配偶
    district: str  # current residence district code
    street: str
    address: str
    death_date: dt.date | None
    spouse_index: int | None
    married_on: dt.date | None
    divorced_on: dt.date | None

    def age_on(self, day: dt.date) -> int:
        """Completed years of age on ``day``."""
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))

    @property
    def age(self) -> int:
        """Age on the city's reference date."""
        return self.age_on(REFERENCE_DATE)

    @property
    def alive(self) -> bool:
        return self.death_date is None


def _day_to_date(day: int) -> dt.date:
    return dt.date.fromordinal(BASE_ORD + day)


def _id_area(area: str, birth: dt.date, h: int) -> str:
    """The area code printed on the ID: some older residents carry a retired district's."""
    if birth < RETIRE_2005 and h % 3 == 0:
        if area == "440104":
            return "440102"
        if area == "440103":
            return "440107"
    if area == "440112" and LUOGANG_FROM <= birth < LUOGANG_TO and h % 2 == 0:
        return "440116"
    return area


DISPLAY_TO_AREA = {"440102": "440104", "440107": "440103", "440116": "440112"}
_AREA_INDEX = {a: i for i, a in enumerate(AREAS)}


class People:
    """The people of a city of ``population`` (the base of :class:`~.city.City`)."""

    def __init__(self, seed: int, population: int, enterprises: int) -> None:
        self.seed = seed
        self.population = population
        self.enterprises = enterprises
        self.units = (population + 1) // 2
        self._people = Feistel(mix(seed, T_PEOPLE_PERM), UNIT_SLOTS)
        self._tau_key = mix(seed, T_TAU)
        # Per-instance caches: a module-level cache would leak between cities of other seeds.
        self.person = lru_cache(maxsize=131_072)(self._person)  # type: ignore[method-assign]

    # -- people: slots ---------------------------------------------------------------

    def _tau_params(self, h: int) -> tuple[int, int]:
        """(area shift, key) for sequence half ``h``; the shift alone keeps areas bijective."""
        z = mix(self._tau_key, h)
        # The wife lives in her husband's birth district a third of the time.
        shift = 0 if z % 3 == 0 else 1 + (z >> 8) % (N_AREAS - 1)
        return shift, z

    @staticmethod
    def _tau_delta(z: int, wife_area_i: int) -> int:
        # Wife 3 years older .. 8 years younger, varied by her district.
        return int(mix(z, wife_area_i) % (11 * 365)) - 3 * 365

    def _slot_parts(self, index: int) -> tuple[int, int, int]:
        """(day, area index, sequence half) of person ``index``."""
        mslot = self._people.forward(index >> 1)
        h = mslot % SEQ_HALVES
        rest = mslot // SEQ_HALVES
        area_i = rest % N_AREAS
        day = rest // N_AREAS
        if index & 1:
            shift, z = self._tau_params(h)
            area_i = (area_i + shift) % N_AREAS
            day = (day + self._tau_delta(z, area_i)) % DAYS
        return day, area_i, h

    def _index_of_parts(self, day: int, area_i: int, h: int, female: bool) -> int:
        if female:
            shift, z = self._tau_params(h)
            day = (day - self._tau_delta(z, area_i)) % DAYS
            area_i = (area_i - shift) % N_AREAS
        mslot = (day * N_AREAS + area_i) * SEQ_HALVES + h
        return self._people.inverse(mslot) * 2 + int(female)

    def birth_date_of(self, index: int) -> dt.date:
        """Birth date of person ``index`` without deriving the whole person."""
        return _day_to_date(self._slot_parts(index)[0])

    def id_number_of(self, index: int) -> str:
        """The resident ID number of person ``index``."""
        day, area_i, h = self._slot_parts(index)
        birth = _day_to_date(day)
        seq = 2 * h + 2 if index & 1 else 2 * h + 1
        return ids.make_id_number(_id_area(AREAS[area_i], birth, h), birth, seq)

    def index_of_id_number(self, id_number: str) -> int | None:
        """The person index of a well-formed ID number, or ``None`` if not in the city."""
        shown = id_number[:6]
        area = DISPLAY_TO_AREA.get(shown, shown)
        area_i = _AREA_INDEX.get(area)
        if area_i is None:
            return None
        try:
            birth = dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
        except ValueError:
            return None
        day = birth.toordinal() - BASE_ORD
        if not 0 <= day < DAYS:
            return None
        seq = int(id_number[14:17])
        female = seq % 2 == 0
        h = (seq - 2) // 2 if female else (seq - 1) // 2
        if not 0 <= h < SEQ_HALVES or _id_area(area, birth, h) != shown:
            return None
        index = self._index_of_parts(day, area_i, h, female)
        if not 0 <= index < self.population:
            return None
        return index

    # -- people: facts ---------------------------------------------------------------

    def _death_date(self, index: int, birth: dt.date) -> dt.date | None:
        age = REFERENCE_DATE.year - birth.year
        if age < 55:
            return None
        r = Rng(mix(self.seed, T_DEATH, index))
        if not r.chance(min(0.6, (age - 55) / 70)):
            return None
        first = max(birth.toordinal() + 55 * 365, dt.date(1995, 1, 1).toordinal())
        last = REFERENCE_DATE.toordinal()
        if first > last:
            return None
        return dt.date.fromordinal(r.between(first, last))

    def _couple(self, unit: int) -> tuple[dt.date, dt.date | None] | None:
        """(married on, divorced on) of unit ``unit``'s two people, or ``None``."""
        wife = 2 * unit + 1
        if wife >= self.population:
            return None
        hd, _, hh = self._slot_parts(2 * unit)
        wd, wa, _ = self._slot_parts(wife)
        if wd != hd + self._tau_delta(
            self._tau_params(hh)[1], wa
        ):  # wrapped around the birth range: an implausible pair
            return None
        hb, wb = _day_to_date(hd), _day_to_date(wd)
        r = Rng(mix(self.seed, T_COUPLE, unit))
        if not r.chance(0.72):
            return None
        try:
            start = max(hb.replace(year=hb.year + 22), wb.replace(year=wb.year + 20))
        except ValueError:  # 29 February
            start = max(dt.date(hb.year + 22, 3, 1), dt.date(wb.year + 20, 3, 1))
        start = max(start, dt.date(1950, 5, 1))
        end = min(REFERENCE_DATE, start + dt.timedelta(days=15 * 365))
        if start > end:
            return None
        married = dt.date.fromordinal(r.between(start.toordinal(), end.toordinal()))
        for i, b in ((2 * unit, hb), (wife, wb)):
            died = self._death_date(i, b)
            if died is not None and died <= married:
                return None
        divorced = None
        if r.chance(0.09) and married.toordinal() + 400 < REFERENCE_DATE.toordinal():
            divorced = dt.date.fromordinal(
                r.between(married.toordinal() + 365, REFERENCE_DATE.toordinal())
            )
        return married, divorced

    def _person(self, index: int) -> Person:
        if not 0 <= index < self.population:
            raise IndexError(f"person index {index} is outside 0..{self.population - 1}")
        day, area_i, h = self._slot_parts(index)
        birth = _day_to_date(day)
        female = bool(index & 1)
        area = AREAS[area_i]
        id_area = _id_area(area, birth, h)
        id_number = ids.make_id_number(id_area, birth, 2 * h + 2 if female else 2 * h + 1)
        r = Rng(mix(self.seed, T_PERSON, index))
        surname = names.pick_surname(r.next())
        chars = names.FEMALE_CHARS if female else names.MALE_CHARS
        given = r.pick(chars)
        if r.chance(0.78):
            given += r.pick(chars if r.chance(0.6) else names.NEUTRAL_CHARS)
        ethnicity = names.pick_ethnicity(r.next())
        death = self._death_date(index, birth)
        unit = index >> 1
        couple = self._couple(unit)
        spouse = married = divorced = None
        if couple is not None:
            married, divorced = couple
            spouse = index ^ 1
        together = couple is not None and divorced is None
        head_alive = self._death_date(2 * unit, self.birth_date_of(2 * unit)) is None
        hh_id = 2 * unit if together else index
        relation = "配偶" if together and female and head_alive else "户主"
        hr = Rng(mix(self.seed, T_HOUSE, hh_id))
        district = RESIDENCE_TABLE[hr.below(len(RESIDENCE_TABLE))]
        street = hr.pick(STREETS[district])
        address = (
            f"广州市{ids.AREA_NAMES[district]}{street.removesuffix('街道')}"
            f"{hr.pick(ROADS)}{hr.between(1, 899)}号{hr.between(1, 30)}0{hr.between(1, 8)}房"
        )
        return Person(
            index=index,
            id_number=id_number,
            name=surname + given,
            sex="女" if female else "男",
            birth_date=birth,
            id_area=id_area,
            ethnicity=ethnicity,
            household_number=f"{440100000000 + hh_id:012d}",
            relation=relation,
            district=district,
            street=street,
            address=address,
            death_date=death,
            spouse_index=spouse,
            married_on=married,
            divorced_on=divorced,
        )

    def surname_of(self, index: int) -> str:
        """The surname of person ``index`` (a newborn takes a parent's)."""
        return names.pick_surname(Rng(mix(self.seed, T_PERSON, index)).next())

    @staticmethod
    def residence_district(draw: int) -> str:
        """A district code drawn with the city's residence weights."""
        return RESIDENCE_TABLE[draw % len(RESIDENCE_TABLE)]

    def person(self, index: int) -> Person:
        """Person ``index`` (0-based); raises ``IndexError`` outside the population."""
        return self._person(index)

    def person_by_id_number(self, id_number: str) -> Person | None:
        """The person with this (well-formed) ID number, or ``None`` if not in the city."""
        index = self.index_of_id_number(id_number)
        return None if index is None else self.person(index)

    def sample_indices(self, n: int, seed: int = 0) -> list[int]:
        """``n`` distinct person indices chosen deterministically from ``seed``."""
        n = min(n, self.population)
        picker = Feistel(mix(self.seed, seed, 0x5A3), self.population)
        return [picker.forward(k) for k in range(n)]

    def sample_id_numbers(self, n: int, seed: int = 0) -> list[str]:
        """``n`` distinct ID numbers of people in the city (for load tests and demos)."""
        return [self.id_number_of(i) for i in self.sample_indices(n, seed)]

    def iter_people(self, start: int = 0, stop: int | None = None) -> Iterator[Person]:
        """People in index order, deriving each on the fly (no caching)."""
        stop = self.population if stop is None else min(stop, self.population)
        for i in range(max(0, start), stop):
            yield self._person(i)
