"""Public security: household registration and vehicles (with their VINs)."""

from __future__ import annotations

import datetime as dt

from exchange import ids
from exchange.departments.city import REFERENCE_DATE, City, Person
from exchange.departments.records.generator import Record, Rows, from_age, people_of

HOUSEHOLD_FIELDS = (
    "id_number",
    "name",
    "sex",
    "birth_date",
    "ethnicity",
    "household_number",
    "relation_to_head",
    "registered_address",
    "registered_street",
    "police_station",
    "status",
    "photo_ref",
)


def household_registration(_city: City, p: Person) -> Record:
    """户籍登记信息: the source of every person.* element."""
    station = p.street.removesuffix("街道").removesuffix("镇") + "派出所"
    return {
        "id_number": p.id_number,
        "name": p.name,
        "sex": p.sex,
        "birth_date": p.birth_date.isoformat(),
        "ethnicity": p.ethnicity,
        "household_number": p.household_number,
        "relation_to_head": p.relation,
        "registered_address": p.address,
        "registered_street": p.street,
        "police_station": f"广州市公安局{ids.AREA_NAMES[p.district]}分局{station}",
        "status": "正常" if p.alive else "死亡注销",
        "photo_ref": f"gaj-photo/{p.id_number[:6]}/{p.index:09d}.jpg",
    }


VEHICLE_FIELDS = (
    "plate_number",
    "plate_type",
    "vehicle_type",
    "brand",
    "vin",
    "owner_name",
    "owner_id_number",
    "registered_on",
    "status",
)
BRANDS = ("广汽丰田", "广汽本田", "比亚迪", "广汽埃安", "东风日产", "小鹏", "一汽-大众", "吉利")
VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


def vin_with_check(vin: str) -> str:
    """Set the 9th character of a 17-character VIN to its ISO 3779 check character."""
    total = sum(VIN_VALUES[c] * w for c, w in zip(vin, VIN_WEIGHTS, strict=True))
    check = "X" if total % 11 == 10 else str(total % 11)
    return vin[:8] + check + vin[9:]


def _vehicle(city: City, owner: Person, k: int) -> Record:
    r = city.rng("vehicle", owner.index, k)
    wmi = ("LVG", "LHG", "LGX", "LNB", "LGB", "L1N", "LFV", "LB3")[
        BRANDS.index(b := r.pick(BRANDS))
    ]
    body = "".join(r.pick(VIN_CHARS) for _ in range(14))
    first = from_age(owner.birth_date, 18, dt.date(1995, 1, 1))
    return {
        "plate_number": city.plate_of(owner.index, k),
        "plate_type": "小型汽车",
        "vehicle_type": "小型普通客车" if r.chance(0.85) else "小型越野客车",
        "brand": b,
        "vin": vin_with_check(wmi + body),
        "owner_name": owner.name,
        "owner_id_number": owner.id_number,
        "registered_on": dt.date.fromordinal(
            r.between(first, REFERENCE_DATE.toordinal())
        ).isoformat(),
        "status": "正常" if r.chance(0.9) else "抵押",
    }


def vehicle_lookup(city: City, key: str) -> Record | None:
    found = city.vehicle_by_plate(key)
    return None if found is None else _vehicle(city, *found)


def vehicle_export(city: City, start: int, stop: int) -> Rows:
    for p in people_of(city, start, stop):
        for k in range(city.vehicle_count(p)):
            yield p.index, _vehicle(city, p, k)
