"""Taxation: tax registration, ratings and taxes paid."""

from __future__ import annotations

import datetime as dt

from exchange import ids
from exchange.departments.city import REFERENCE_DATE, City, Enterprise, Rng
from exchange.departments.records.generator import Record

TAX_FIELDS = (
    "credit_code",
    "taxpayer_name",
    "registration_type",
    "taxpayer_qualification",
    "tax_authority",
    "credit_rating",
    "registered_on",
    "status",
)


def _tax_draws(city: City, index: int, kind: str) -> tuple[Rng, bool, str]:
    r = city.rng("tax", index)
    general = kind == "91" and r.chance(0.35)
    return r, general, r.pick(("A", "B", "B", "M", "C", "D"))


def tax_rating(city: City, index: int, kind: str) -> str:
    """纳税信用等级 of enterprise ``index`` (``kind``: its credit code's type, 91 or 92),
    without deriving the whole enterprise: the credit lists ask it of 1,000 codes at once."""
    return _tax_draws(city, index, kind)[2]


def tax_registration(city: City, e: Enterprise) -> Record:
    """税务登记信息: every market entity registers with its district tax bureau."""
    r, general, rating = _tax_draws(city, e.index, e.kind)
    return {
        "credit_code": e.credit_code,
        "taxpayer_name": e.name,
        "registration_type": "个体经营" if e.kind == "92" else "私营有限责任公司",
        "taxpayer_qualification": "增值税一般纳税人" if general else "小规模纳税人",
        "tax_authority": f"国家税务总局广州市{ids.AREA_NAMES[e.district]}税务局",
        "credit_rating": rating,
        "registered_on": (e.founded_on + dt.timedelta(days=r.between(3, 30))).isoformat(),
        "status": "正常" if e.status.startswith("存续") else "非正常",
    }


TAX_PAID_FIELDS = (
    "credit_code",
    "taxpayer_name",
    "tax_year",
    "vat_paid",
    "income_tax_paid",
    "total_paid",
    "arrears",
)


def tax_paid(city: City, e: Enterprise) -> Record:
    """涉税信息(纳税额): amounts paid in the last full year; confidential by law."""
    r = city.rng("tax-paid", e.index)
    scale = e.registered_capital * 100
    vat = round(r.between(0, scale * 30) / 10, 2)
    cit = round(r.between(0, scale * 10) / 10, 2)
    return {
        "credit_code": e.credit_code,
        "taxpayer_name": e.name,
        "tax_year": REFERENCE_DATE.year - 1,
        "vat_paid": vat,
        "income_tax_paid": cit,
        "total_paid": round(vat + cit, 2),
        "arrears": round(r.between(0, scale) / 10, 2) if r.chance(0.05) else 0.0,
    }
