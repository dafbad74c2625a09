"""A record generator: the key types, how one record is looked up by key and how a
topic's records are exported in source-row order, for records of one person or one
enterprise each."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from exchange import ids
from exchange.departments import bulk, bulk_enterprises
from exchange.departments.city import REFERENCE_DATE, City, Enterprise, Person

__all__ = [
    "KEY_TYPES",
    "PEOPLE_BLOCK",
    "Generator",
    "KeyType",
    "Record",
    "Rows",
    "firm_generator",
    "firms_of",
    "from_age",
    "iso",
    "key_problem",
    "people_of",
    "person_generator",
]

Record = dict[str, Any]
Rows = Iterator[tuple[int, Record]]
# People derived per NumPy pass in an export: large enough that the per-pass cost vanishes,
# small enough that an export page of a few rows does not derive thousands.
PEOPLE_BLOCK = 2_048
KeyType = Literal["id_number", "credit_code", "plate_number", "licence_number"]
KEY_TYPES: tuple[KeyType, ...] = ("id_number", "credit_code", "plate_number", "licence_number")

_PLATE_RE = re.compile(
    r"^[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z][A-HJ-NP-Z0-9]{5,6}$"
)
_LICENCE_RE = re.compile(r"^[A-Z]{2}\d{13}$")


def key_problem(key_type: KeyType, key: str) -> str | None:
    """Why ``key`` is malformed for ``key_type``, or ``None`` when well-formed."""
    if key_type == "id_number":
        return ids.id_number_problem(key)
    if key_type == "credit_code":
        return ids.credit_code_problem(key)
    if key_type == "plate_number":
        return None if _PLATE_RE.match(key) else "a plate is a province, a letter, 5-6 characters"
    if not _LICENCE_RE.match(key):
        return "a licence number is two letters and 13 digits"
    if ids.luhn_digit(key[2:14]) != key[14]:
        return f"check digit is {key[14]}, expected {ids.luhn_digit(key[2:14])}"
    return None


@dataclass(frozen=True, slots=True)
class Generator:
    """One kind of record: its key, the fields it can produce and how to derive them."""

    name: str
    key_type: KeyType
    key_field: str
    fields: tuple[str, ...]
    #: record for a well-formed key, or None when the city has no such record
    lookup: Callable[[City, str], Record | None]
    #: number of source rows an export pages over
    rows: Callable[[City], int]
    #: (source row, record) of source rows [start, stop), in order, skipping rows without
    #: a record (a row may have several: a person's vehicles)
    export_rows: Callable[[City, int, int], Rows]

    def export(self, city: City, start: int, stop: int) -> Iterator[Record]:
        """Records of source rows [start, stop), in order."""
        return (rec for _, rec in self.export_rows(city, start, stop))


def firms_of(city: City, start: int, stop: int) -> Iterator[Enterprise]:
    """Enterprises in index order, their legal representatives derived in bulk."""
    stop = min(stop, city.enterprises)
    for block in range(max(0, start), stop, PEOPLE_BLOCK):
        yield from bulk_enterprises.enterprises(city, block, min(block + PEOPLE_BLOCK, stop))


def people_of(city: City, start: int, stop: int) -> Iterator[Person]:
    """People in index order, derived in bulk (:mod:`exchange.departments.bulk`)."""
    stop = min(stop, city.population)
    for block in range(max(0, start), stop, PEOPLE_BLOCK):
        yield from bulk.people(city, block, min(block + PEOPLE_BLOCK, stop))


def from_age(birth: dt.date, years: int, earliest: dt.date) -> int:
    """Ordinal of the later of ``birth``'s ``years``-th birthday and ``earliest``, capped at
    the reference date, as the low bound of a date drawn up to the reference date.

    ``years * 366`` days overshot the birthday by up to two weeks, which put the low bound
    after the reference date for people who came of age in its last days (and divided by
    zero in ``between``).
    """
    try:
        birthday = birth.replace(year=birth.year + years)
    except ValueError:  # born on 29 February
        birthday = dt.date(birth.year + years, 3, 1)
    return min(max(birthday, earliest), REFERENCE_DATE).toordinal()


def iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _people(
    build: Callable[[City, Person], Record | None],
) -> tuple[
    Callable[[City, str], Record | None],
    Callable[[City], int],
    Callable[[City, int, int], Rows],
]:
    """Lookup/rows/export for a generator whose records belong to one person each."""

    def lookup(city: City, key: str) -> Record | None:
        p = city.person_by_id_number(key)
        return None if p is None else build(city, p)

    def export(city: City, start: int, stop: int) -> Rows:
        for p in people_of(city, start, stop):
            rec = build(city, p)
            if rec is not None:
                yield p.index, rec

    return lookup, lambda city: city.population, export


def _firms(
    build: Callable[[City, Enterprise], Record | None],
) -> tuple[
    Callable[[City, str], Record | None],
    Callable[[City], int],
    Callable[[City, int, int], Rows],
]:
    """Lookup/rows/export for a generator whose records belong to one enterprise each."""

    def lookup(city: City, key: str) -> Record | None:
        e = city.enterprise_by_credit_code(key)
        return None if e is None else build(city, e)

    def export(city: City, start: int, stop: int) -> Rows:
        for e in firms_of(city, start, stop):
            rec = build(city, e)
            if rec is not None:
                yield e.index, rec

    return lookup, lambda city: city.enterprises, export


def person_generator(
    name: str, fields: tuple[str, ...], build: Callable[[City, Person], Record | None]
) -> Generator:
    return Generator(name, "id_number", "id_number", fields, *_people(build))


def firm_generator(
    name: str, fields: tuple[str, ...], build: Callable[[City, Enterprise], Record | None]
) -> Generator:
    return Generator(name, "credit_code", "credit_code", fields, *_firms(build))
