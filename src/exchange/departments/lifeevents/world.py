"""The world an event reads and what it returns: the city as it is now (derived records
with the overlay's changes on top), one record's change, and the helpers events share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeGuard

from exchange import ids
from exchange.days import beijing_day
from exchange.departments.city import City
from exchange.departments.overlay import Overlay, Record
from exchange.departments.prng import Rng
from exchange.departments.vocabulary import ROADS, STREETS

__all__ = [
    "ACTIVE",
    "DISTRICT_OF_STREET",
    "FUNERAL_HOMES",
    "HOSPITALS",
    "TRIES",
    "Change",
    "World",
    "age_on",
    "beijing_day",
    "is_alive",
    "is_married",
    "new_address",
    "with_changes",
]

TRIES = 64
DISTRICT_OF_STREET = {s: d for d, streets in STREETS.items() for s in streets}
HOSPITALS = (
    "广州市妇女儿童医疗中心",
    "中山大学附属第一医院",
    "广东省人民医院",
    "南方医科大学南方医院",
    "广州市第一人民医院",
)
FUNERAL_HOMES = ("广州市殡仪馆", "番禺区殡仪馆", "增城区殡仪馆")
ACTIVE = "存续(在业)"


@dataclass(frozen=True, slots=True)
class Change:
    """One record's change: which generator's record, its source row and key, the record
    after the change (``None``: removed) and the domain kind published with it."""

    generator: str
    row: int
    key: str
    record: Record | None
    kind: str


class World:
    """The city as it is now, and the bookkeeping of what was added to it."""

    def __init__(self, city: City, overlay: Overlay) -> None:
        self.city = city
        self.overlay = overlay
        #: credit codes of enterprises registered since the start, by row
        self.new_enterprises: dict[int, str] = {}
        #: (birth day, area) -> last sequence half given to a newborn
        self._sequences: dict[tuple[dt.date, str], int] = {}

    def current(self, generator: str, key: str) -> Record | None:
        return self.overlay.current(generator, key)

    def person_key(self, r: Rng) -> tuple[int, str]:
        """A resident of the derived city: (index, ID number)."""
        i = r.below(self.city.population)
        return i, self.city.id_number_of(i)

    def enterprise_key(self, r: Rng) -> tuple[int, str]:
        """An enterprise, the ones registered since the start included: (row, credit code)."""
        total = self.city.enterprises + len(self.new_enterprises)
        e = r.below(total)
        if e >= self.city.enterprises:
            return e, self.new_enterprises[e]
        return e, self.city.credit_code_of(e)

    def next_sequence(self, day: dt.date, area: str, female: bool) -> int | None:
        """An unused ID-number sequence for a newborn of ``day`` in ``area`` (None: all used)."""
        h = self._sequences.get((day, area), -1)
        while h + 1 < 499:
            h += 1
            seq = 2 * h + 2 if female else 2 * h + 1
            # A derived resident can hold the number only if the day is inside the city's
            # birth range (a clock put back before mid-2024); skip it then.
            if self.city.index_of_id_number(ids.make_id_number(area, day, seq)) is None:
                self._sequences[(day, area)] = h
                return seq
        self._sequences[(day, area)] = h
        return None


def age_on(birth_iso: str, day: dt.date) -> int:
    b = dt.date.fromisoformat(birth_iso)
    return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


def is_alive(rec: Record | None) -> TypeGuard[Record]:
    return rec is not None and rec["status"] == "正常"


def is_married(rec: Record | None) -> bool:
    return rec is not None and rec["registration_type"] == "结婚登记"


def new_address(r: Rng, district: str) -> tuple[str, str, str]:
    """(address, street, police station) of a new home in ``district``."""
    street = r.pick(STREETS[district])
    address = (
        f"广州市{ids.AREA_NAMES[district]}{street.removesuffix('街道')}"
        f"{r.pick(ROADS)}{r.between(1, 899)}号{r.between(1, 30)}0{r.between(1, 8)}房"
    )
    station = street.removesuffix("街道").removesuffix("镇") + "派出所"
    return address, street, f"广州市公安局{ids.AREA_NAMES[district]}分局{station}"


def with_changes(rec: Record, **changes: object) -> Record:
    out = dict(rec)
    out.update(changes)
    return out
