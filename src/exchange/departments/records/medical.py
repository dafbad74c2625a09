"""Medical security: medical insurance."""

from __future__ import annotations

import datetime as dt

from exchange.departments.city import REFERENCE_DATE, City, Person
from exchange.departments.records.generator import Record

MEDICAL_FIELDS = ("id_number", "name", "insurance_category", "status", "enrolled_on")


def medical_insurance(city: City, p: Person) -> Record | None:
    """基本医疗保险参保信息: employees in the staff scheme, other living residents in the
    urban-rural residents' scheme."""
    if not p.alive:
        return None
    e = city.employer_of(p)
    r = city.rng("medical", p.index)
    if e is None and not r.chance(0.9):
        return None
    enrolled = max(p.birth_date, dt.date(2008, 1, 1)) + dt.timedelta(days=r.between(0, 900))
    return {
        "id_number": p.id_number,
        "name": p.name,
        "insurance_category": "职工基本医疗保险" if e is not None else "城乡居民基本医疗保险",
        "status": "正常参保",
        "enrolled_on": min(enrolled, REFERENCE_DATE).isoformat(),
    }
