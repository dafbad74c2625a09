"""The housing provident fund."""

from __future__ import annotations

from exchange.departments.city import REFERENCE_DATE, City, Person
from exchange.departments.records.generator import Record
from exchange.departments.records.social_security import contribution_base, enrolled_on

FUND_FIELDS = (
    "id_number",
    "name",
    "account_number",
    "employer_credit_code",
    "employer_name",
    "deposit_base",
    "deposit_rate",
    "monthly_deposit",
    "balance",
    "status",
    "opened_on",
)


def provident_fund(city: City, p: Person) -> Record | None:
    """住房公积金缴存信息: most employees; base equals the social-insurance base."""
    e_index = city.employer_of(p)
    if e_index is None:
        return None
    r = city.rng("fund", p.index)
    if not r.chance(0.82):
        return None
    e = city.enterprise(e_index)
    base = contribution_base(city, p)
    rate = r.pick(("0.05", "0.08", "0.10", "0.12"))
    monthly = round(base * float(rate) * 2, 2)
    opened = enrolled_on(city, p, e)
    months = (REFERENCE_DATE.year - opened.year) * 12 + REFERENCE_DATE.month - opened.month + 1
    withdrawn = r.between(0, 60) / 100
    return {
        "id_number": p.id_number,
        "name": p.name,
        "account_number": f"1100{p.index:010d}",
        "employer_credit_code": e.credit_code,
        "employer_name": e.name,
        "deposit_base": base,
        "deposit_rate": float(rate),
        "monthly_deposit": monthly,
        "balance": round(monthly * months * (1 - withdrawn), 2),
        "status": "正常",
        "opened_on": opened.isoformat(),
    }
