"""Civil affairs: marriages, social assistance, cremations."""

from __future__ import annotations

import datetime as dt

from exchange import ids
from exchange.departments.city import REFERENCE_DATE, City, Person
from exchange.departments.records.generator import Record

MARRIAGE_FIELDS = (
    "id_number",
    "name",
    "registration_type",
    "registered_on",
    "certificate_number",
    "registration_office",
    "man_name",
    "man_id_number",
    "woman_name",
    "woman_id_number",
)


def marriage_registration(city: City, p: Person) -> Record | None:
    """婚姻登记信息: the person's latest marriage or divorce registration."""
    if p.spouse_index is None or p.married_on is None:
        return None
    man = p if p.sex == "男" else city.person(p.spouse_index)
    woman = city.person(man.index + 1)
    divorced = p.divorced_on is not None
    day = p.divorced_on if p.divorced_on is not None else p.married_on
    office = man.district
    r = city.rng("marriage", man.index)
    prefix = "L" if divorced else "J"
    return {
        "id_number": p.id_number,
        "name": p.name,
        "registration_type": "离婚登记" if divorced else "结婚登记",
        "registered_on": day.isoformat(),
        "certificate_number": f"{prefix}{office}-{day.year}-{r.between(1, 99999):06d}",
        "registration_office": f"广州市{ids.AREA_NAMES[office]}民政局婚姻登记处",
        "man_name": man.name,
        "man_id_number": man.id_number,
        "woman_name": woman.name,
        "woman_id_number": woman.id_number,
    }


ASSISTANCE_FIELDS = (
    "id_number",
    "name",
    "household_size",
    "monthly_amount",
    "street",
    "approved_on",
    "status",
)
MINIMUM_LIVING_STANDARD = 1190  # yuan per person per month, Guangzhou 2024


def owns_real_estate(city: City, p: Person) -> int:
    """How many properties ``p`` holds (a couple living together hold theirs jointly)."""
    if p.age < 20:
        return 0
    together = p.spouse_index is not None and p.divorced_on is None
    owner_key = (p.index >> 1) * 2 if together else p.index
    r = city.rng("estate", owner_key)
    z = r.below(100)
    return 0 if z < 40 else 1 if z < 85 else 2 if z < 97 else 3


def social_assistance(city: City, p: Person) -> Record | None:
    """最低生活保障信息: only for households with no job, property or vehicle."""
    if not p.alive or p.age < 18 or p.relation != "户主":
        return None
    if city.employer_of(p) is not None or owns_real_estate(city, p) or city.vehicle_count(p):
        return None
    r = city.rng("assistance", p.index)
    if not r.chance(0.06):
        return None
    together = p.spouse_index is not None and p.divorced_on is None
    size = (2 if together else 1) + r.below(3)
    income = r.between(0, 400)
    return {
        "id_number": p.id_number,
        "name": p.name,
        "household_size": size,
        "monthly_amount": size * (MINIMUM_LIVING_STANDARD - income),
        "street": p.street,
        "approved_on": dt.date.fromordinal(
            r.between(dt.date(2015, 1, 1).toordinal(), REFERENCE_DATE.toordinal())
        ).isoformat(),
        "status": "在保",
    }


CREMATION_FIELDS = (
    "id_number",
    "name",
    "sex",
    "death_date",
    "cremated_on",
    "funeral_home",
    "certificate_number",
)
_FUNERAL_HOMES = ("广州市殡仪馆", "广州市银河革命公墓殡仪服务部", "番禺区殡仪馆", "增城区殡仪馆")


def cremation(city: City, p: Person) -> Record | None:
    """殡葬(火化)信息: for residents who have died."""
    if p.death_date is None:
        return None
    r = city.rng("cremation", p.index)
    return {
        "id_number": p.id_number,
        "name": p.name,
        "sex": p.sex,
        "death_date": p.death_date.isoformat(),
        "cremated_on": (p.death_date + dt.timedelta(days=r.between(2, 9))).isoformat(),
        "funeral_home": r.pick(_FUNERAL_HOMES),
        "certificate_number": f"HH{p.death_date.year}{r.between(1, 999999):06d}",
    }
