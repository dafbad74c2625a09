"""The people's exportable topics in bulk (household registration, medical insurance,
real estate, marriage registration): each the bulk twin of its record generator in
:mod:`exchange.departments.records`, derived as columns (see :mod:`.tables`)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np

from exchange import ids
from exchange.departments import json_columns as jc
from exchange.departments import jsonbytes, prng_arrays
from exchange.departments.city import City
from exchange.departments.columns import (
    REF_ORD,
    draws,
    street_tables,
    years_of,
)
from exchange.departments.ndjson import Table
from exchange.departments.people import AREAS
from exchange.departments.people_columns import People
from exchange.departments.prng_arrays import I64

__all__ = [
    "AREA_CODES",
    "household_registration",
    "marriage_registration",
    "medical_insurance",
    "people_block",
    "real_estate",
    "row_span",
]

_AREA_NAMES = [ids.AREA_NAMES[a] for a in AREAS]
#: district codes by area index (string content)
AREA_CODES = jsonbytes.Vocab(list(AREAS))


def row_span(start: int, stop: int, limit: int) -> I64:
    """The source rows ``[start, stop)`` clipped to ``[0, limit)``."""
    return np.arange(max(0, start), min(stop, limit), dtype=np.int64)


def people_block(city: City, start: int, stop: int) -> People:
    """The persons of source rows ``[start, stop)`` (clipped to the population)."""
    return People(city, row_span(start, stop, city.population))


# -- people ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _police_stations() -> jsonbytes.Vocab:
    """Each street's police station, by ``json_columns.street_key``."""
    streets, _ = street_tables()
    width = max(len(row) for row in streets)
    return jsonbytes.Vocab(
        [
            f"广州市公安局{_AREA_NAMES[a]}分局{row[s].removesuffix('街道').removesuffix('镇')}派出所"
            if s < len(row)
            else ""
            for a, row in enumerate(streets)
            for s in range(width)
        ]
    )


def household_registration(city: City, start: int, stop: int) -> Table:
    p = people_block(city, start, stop)
    n = p.n
    hh_id, district, street, _, _, _, _ = p.household_arrays
    key = jc.street_key(district, street)
    status, relation = jc.HOUSEHOLD
    spouse = p.together & p.female & (p.husband_death < 0)
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "name": jc.name(p),
            "sex": jc.SEX.take(p.female.astype(np.int64)),
            "birth_date": jsonbytes.iso_dates(p.birth),
            "ethnicity": jc.ethnicities().take(p.ethnicity_i),
            "household_number": jsonbytes.text(n, jsonbytes.digits(440100000000 + hh_id, 12)),
            "relation_to_head": relation.take(spouse.astype(np.int64)),
            "registered_address": jc.address(p),
            "registered_street": jc.streets().take(key),
            "police_station": _police_stations().take(key),
            "status": status.take(p.alive.astype(np.int64)),
            "photo_ref": jsonbytes.text(
                n, b"gaj-photo/", p.id_chars[:, :6], b"/", jsonbytes.digits(p.index, 9), b".jpg"
            ),
        },
    )


_CATEGORY = jsonbytes.Vocab(["城乡居民基本医疗保险", "职工基本医疗保险"])


def medical_insurance(city: City, start: int, stop: int) -> Table:
    p = people_block(city, start, stop)
    employed = p.employer >= 0
    d = draws(city, "medical", 2, p.index)
    # Only the unemployed spend a draw on whether they are enrolled at all.
    keep = p.alive & (employed | prng_arrays.chance(d[0], 0.9))
    p, employed = p.take(keep), employed[keep]
    days = np.where(employed, d[0][keep], d[1][keep]) % np.uint64(901)
    enrolled = np.maximum(p.birth, dt.date(2008, 1, 1).toordinal()) + days.astype(np.int64)
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "name": jc.name(p),
            "insurance_category": _CATEGORY.take(employed.astype(np.int64)),
            "status": jsonbytes.repeat("正常参保", p.n),
            "enrolled_on": jsonbytes.iso_dates(np.minimum(enrolled, REF_ORD)),
        },
    )


_ESTATES = ("花园", "雅苑", "名苑", "新村")
_ESTATE_NAMES = jsonbytes.Vocab(list(_ESTATES))
_CO_OWNERSHIP = jsonbytes.Vocab(["单独所有", "共同共有"])


def real_estate(city: City, start: int, stop: int) -> Table:
    p = people_block(city, start, stop)
    owner = np.where(p.together, (p.index >> 1) * 2, p.index)
    z = draws(city, "estate", 1, owner)[0] % np.uint64(100)
    count = np.select([z < 40, z < 85, z < 97], [0, 1, 2], 3)
    count = np.where(p.age < 20, 0, count)
    keep = (count > 0) & p.alive
    p, owner, count, together = p.take(keep), owner[keep], count[keep], p.together[keep]
    n = p.n
    r = draws(city, "estate-unit", 13, owner)

    def num(row: int, hi: int) -> I64:
        out: I64 = 1 + (r[row] % np.uint64(hi)).astype(np.int64)
        return out

    digits, text = jsonbytes.digits, jsonbytes.text
    district = (r[0] % np.uint64(len(AREAS))).astype(np.int64)
    registered = prng_arrays.between(
        r[1], np.full(n, dt.date(2000, 1, 1).toordinal()), np.full(n, REF_ORD)
    )
    place = (r[8] % np.uint64(len(_ESTATES))).astype(np.int64)
    area = 3500 + (r[12] % np.uint64(12501)).astype(np.int64)
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "name": jc.name(p),
            "property_count": digits(count),
            "unit_number": text(
                n,
                AREA_CODES.inner(district),
                digits(num(2, 999), 3),
                digits(num(3, 999), 3),
                b"GB",
                digits(num(4, 99999), 5),
                b"F",
                digits(num(5, 9999), 4),
                digits(num(6, 9999), 4),
            ),
            "certificate_number": text(
                n,
                "粤(".encode(),
                digits(years_of(registered)),
                ")广州市不动产权第".encode(),
                digits(num(7, 9999999), 7),
                "号".encode(),
            ),
            "location": text(
                n,
                "广州市".encode(),
                jc.AREA_NAMES.inner(district),
                _ESTATE_NAMES.inner(place),
                digits(num(9, 40)),
                "栋".encode(),
                digits(num(10, 33)),
                b"0",
                digits(num(11, 6)),
                "房".encode(),
            ),
            "floor_area": jsonbytes.hundredths(area),
            "usage": jsonbytes.repeat("住宅", n),
            "right_type": jsonbytes.repeat("国有建设用地使用权/房屋所有权", n),
            "co_ownership": _CO_OWNERSHIP.take(together.astype(np.int64)),
            "registered_on": jsonbytes.iso_dates(registered),
        },
    )


_MARRIAGE_TYPE = jsonbytes.Vocab(["结婚登记", "离婚登记"])
_MARRIAGE_LETTER = jsonbytes.Vocab(["J", "L"])


def marriage_registration(city: City, start: int, stop: int) -> Table:
    start, stop = max(0, start), min(stop, city.population)
    # Whole couples: each record names both partners.
    lo, hi = start & ~1, min(stop + (stop & 1), city.population)
    p = People(city, np.arange(lo, hi, dtype=np.int64))
    pos = np.arange(start - lo, stop - lo, dtype=np.int64)
    pos = pos[p.married[pos] >= 0]
    man = pos & ~1
    divorced = p.divorced[pos] >= 0
    day = np.where(divorced, p.divorced[pos], p.married[pos])
    man_index = p.index[man]
    serial = 1 + (draws(city, "marriage", 1, man_index)[0] % np.uint64(99999)).astype(np.int64)
    office = p.district[man]
    idn, who = jc.id_number(p), jc.name(p)
    n = len(pos)
    kind = divorced.astype(np.int64)
    return Table(
        p.index[pos].tolist(),
        {
            "id_number": idn[pos],
            "name": who[pos],
            "registration_type": _MARRIAGE_TYPE.take(kind),
            "registered_on": jsonbytes.iso_dates(day),
            "certificate_number": jsonbytes.text(
                n,
                _MARRIAGE_LETTER.inner(kind),
                AREA_CODES.inner(office),
                b"-",
                jsonbytes.digits(years_of(day)),
                b"-",
                jsonbytes.digits(serial, 6),
            ),
            "registration_office": jsonbytes.text(
                n, "广州市".encode(), jc.AREA_NAMES.inner(office), "民政局婚姻登记处".encode()
            ),
            "man_name": who[man],
            "man_id_number": idn[man],
            "woman_name": who[man + 1],
            "woman_id_number": idn[man + 1],
        },
    )
