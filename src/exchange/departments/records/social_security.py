"""Human resources and social security: insurance enrolment and payments, professional
qualifications."""

from __future__ import annotations

import datetime as dt

from exchange.departments.city import REFERENCE_DATE, City, Enterprise, Person
from exchange.departments.records.generator import Record, from_age

INSURANCE_FIELDS = (
    "id_number",
    "name",
    "employer_credit_code",
    "employer_name",
    "insurance_types",
    "status",
    "enrolled_on",
    "contribution_base",
)


def contribution_base(city: City, p: Person) -> int:
    # Guangzhou 2024 bounds: 5,284 .. 26,421 yuan/month (deterministic per person).
    return city.rng("wage", p.index).between(5284, 26421)


def enrolled_on(city: City, p: Person, e: Enterprise) -> dt.date:
    first = from_age(p.birth_date, 18, e.founded_on)
    return dt.date.fromordinal(
        city.rng("enrol", p.index).between(first, REFERENCE_DATE.toordinal())
    )


def social_insurance_enrolment(city: City, p: Person) -> Record | None:
    """社会保险参保信息: employees of city enterprises, through their employer."""
    e_index = city.employer_of(p)
    if e_index is None:
        return None
    e = city.enterprise(e_index)
    return {
        "id_number": p.id_number,
        "name": p.name,
        "employer_credit_code": e.credit_code,
        "employer_name": e.name,
        "insurance_types": "养老,医疗,失业,工伤,生育",
        "status": "参保缴费",
        "enrolled_on": enrolled_on(city, p, e).isoformat(),
        "contribution_base": contribution_base(city, p),
    }


PAYMENT_FIELDS = (
    "id_number",
    "name",
    "period",
    "contribution_base",
    "personal_amount",
    "employer_amount",
    "months_paid",
)


def social_insurance_payments(city: City, p: Person) -> Record | None:
    """社会保险缴费信息: the latest month's pension contributions and the months paid."""
    e_index = city.employer_of(p)
    if e_index is None:
        return None
    e = city.enterprise(e_index)
    base = contribution_base(city, p)
    enrolled = enrolled_on(city, p, e)
    months = (REFERENCE_DATE.year - enrolled.year) * 12 + REFERENCE_DATE.month - enrolled.month + 1
    return {
        "id_number": p.id_number,
        "name": p.name,
        "period": f"{REFERENCE_DATE:%Y-%m}",
        "contribution_base": base,
        "personal_amount": round(base * 0.08, 2),
        "employer_amount": round(base * 0.15, 2),
        "months_paid": months,
    }


QUALIFICATION_FIELDS = (
    "id_number",
    "name",
    "certificate_number",
    "qualification",
    "level",
    "issued_on",
    "issuing_authority",
)
_QUALIFICATIONS = (
    ("电工", "高级工"),
    ("育婴员", "四级"),
    ("会计专业技术资格", "中级"),
    ("焊工", "中级工"),
    ("执业药师", "—"),
    ("人力资源管理师", "二级"),
    ("中式烹调师", "高级工"),
    ("保育师", "五级"),
)


def professional_qualification(city: City, p: Person) -> Record | None:
    """专业技术人员/职业资格信息: about one adult in six holds one."""
    if p.age < 20:
        return None
    r = city.rng("qualification", p.index)
    if not r.chance(0.16):
        return None
    q, level = _QUALIFICATIONS[r.below(len(_QUALIFICATIONS))]
    first = from_age(p.birth_date, 20, dt.date(1995, 1, 1))
    issued = dt.date.fromordinal(
        r.between(min(first, REFERENCE_DATE.toordinal()), REFERENCE_DATE.toordinal())
    )
    return {
        "id_number": p.id_number,
        "name": p.name,
        "certificate_number": f"{issued.year}44010{r.between(0, 99999999):08d}",
        "qualification": q,
        "level": level,
        "issued_on": issued.isoformat(),
        "issuing_authority": "广州市人力资源和社会保障局",
    }
