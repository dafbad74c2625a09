"""Planning and natural resources: real estate."""

from __future__ import annotations

import datetime as dt

from exchange import ids
from exchange.departments.city import REFERENCE_DATE, City, Person
from exchange.departments.records.civil_affairs import owns_real_estate
from exchange.departments.records.generator import Record

ESTATE_FIELDS = (
    "id_number",
    "name",
    "property_count",
    "unit_number",
    "certificate_number",
    "location",
    "floor_area",
    "usage",
    "right_type",
    "co_ownership",
    "registered_on",
)


def real_estate(city: City, p: Person) -> Record | None:
    """不动产登记信息: the person's first property and how many they hold."""
    count = owns_real_estate(city, p)
    if count == 0 or not p.alive:
        return None
    together = p.spouse_index is not None and p.divorced_on is None
    owner_key = (p.index >> 1) * 2 if together else p.index
    r = city.rng("estate-unit", owner_key)
    district = r.pick(tuple(city_districts()))
    registered = dt.date.fromordinal(
        r.between(dt.date(2000, 1, 1).toordinal(), REFERENCE_DATE.toordinal())
    )
    return {
        "id_number": p.id_number,
        "name": p.name,
        "property_count": count,
        "unit_number": f"{district}{r.between(1, 999):03d}{r.between(1, 999):03d}"
        f"GB{r.between(1, 99999):05d}F{r.between(1, 9999):04d}{r.between(1, 9999):04d}",
        "certificate_number": f"粤({registered.year})广州市不动产权第{r.between(1, 9999999):07d}号",
        "location": f"广州市{ids.AREA_NAMES[district]}{r.pick(('花园', '雅苑', '名苑', '新村'))}"
        f"{r.between(1, 40)}栋{r.between(1, 33)}0{r.between(1, 6)}房",
        "floor_area": round(r.between(3500, 16000) / 100, 2),
        "usage": "住宅",
        "right_type": "国有建设用地使用权/房屋所有权",
        "co_ownership": "共同共有" if together else "单独所有",
        "registered_on": registered.isoformat(),
    }


def city_districts() -> tuple[str, ...]:
    """Guangzhou's current district codes."""
    return ids.CURRENT_AREAS
