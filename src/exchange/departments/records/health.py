"""Health: birth certificates."""

from __future__ import annotations

import datetime as dt

from exchange.departments.city import City, Person
from exchange.departments.records.generator import Record

BIRTH_FIELDS = (
    "id_number",
    "certificate_number",
    "child_name",
    "sex",
    "birth_date",
    "birth_place",
    "mother_name",
    "mother_id_number",
    "father_name",
    "father_id_number",
)
HOSPITALS = (
    "广州市妇女儿童医疗中心",
    "中山大学附属第一医院",
    "广东省人民医院",
    "南方医科大学南方医院",
    "广州市第一人民医院",
    "广州医科大学附属第三医院",
    "广州市番禺区何贤纪念医院",
)
BIRTH_CERTS_FROM = dt.date(1996, 1, 1)


def birth_certificate(city: City, p: Person) -> Record | None:
    """出生医学证明信息: residents born since 1996; parents are other residents."""
    if p.birth_date < BIRTH_CERTS_FROM:
        return None
    r = city.rng("birth", p.index)
    mother = father = None
    for _ in range(24):
        u = r.below(city.units)
        if 2 * u + 1 >= city.population:
            continue
        w = city.person(2 * u + 1)
        if w.married_on is None or not 20 <= w.age_on(p.birth_date) <= 42:
            continue
        mother = w
        husband = city.person(2 * u)
        if husband.married_on is not None and husband.married_on <= p.birth_date:
            father = husband
        break
    return {
        "id_number": p.id_number,
        "certificate_number": f"{chr(ord('A') + p.birth_date.year % 26)}44{p.index:08d}",
        "child_name": p.name,
        "sex": p.sex,
        "birth_date": p.birth_date.isoformat(),
        "birth_place": r.pick(HOSPITALS),
        "mother_name": None if mother is None else mother.name,
        "mother_id_number": None if mother is None else mother.id_number,
        "father_name": None if father is None else father.name,
        "father_id_number": None if father is None else father.id_number,
    }
