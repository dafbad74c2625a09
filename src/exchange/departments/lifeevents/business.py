"""Enterprises: registrations, changes, deregistrations and tax payments."""

from __future__ import annotations

import datetime as dt

from exchange import ids
from exchange.departments.lifeevents.world import (
    ACTIVE,
    TRIES,
    Change,
    World,
    age_on,
    beijing_day,
    is_alive,
    new_address,
    with_changes,
)
from exchange.departments.overlay import Record
from exchange.departments.prng import Rng
from exchange.departments.records import LICENCE_TYPES
from exchange.departments.vocabulary import ENT_WORDS, INDUSTRIES


def active_enterprise(w: World, r: Rng) -> tuple[int, str, Record] | None:
    for _ in range(TRIES):
        e, code = w.enterprise_key(r)
        rec = w.current("enterprise_registration", code)
        if rec is not None and rec["status"] == ACTIVE:
            return e, code, rec
    return None


def current_licences(w: World, e: int, code: str) -> list[Record]:
    """The e-licences enterprise ``e`` holds now (changed or derived), in type order."""
    return [
        rec for rec in w.overlay.row_records("e_licence", e) if rec["holder_credit_code"] == code
    ]


def enterprise_registration(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """设立登记 (market regulation): a new enterprise with a fresh credit code, its tax
    registration and its business licence (营业执照) in the e-licence library."""
    city, day = w.city, beijing_day(when)
    rep = None
    for _ in range(TRIES):
        _, key = w.person_key(r)
        rec = w.current("household_registration", key)
        if is_alive(rec) and 22 <= age_on(rec["birth_date"], day) <= 70:
            rep = rec
            break
    if rep is None:
        return []
    template = city.enterprise(r.below(city.enterprises))
    district = city.residence_district(r.next())
    kind = "92" if r.chance(0.3) else "91"
    code = city.unused_credit_code(kind, district, r.next())
    row = city.enterprises + w.overlay.enterprises_added
    w.overlay.enterprises_added += 1
    w.new_enterprises[row] = code
    address = new_address(r, district)[0]
    word = r.pick(ENT_WORDS) + r.pick(ENT_WORDS)
    dname = ids.AREA_NAMES[district]
    company, shop = next((c, s) for ind, c, s in INDUSTRIES if ind == template.industry)
    name = f"广州市{dname}{word}{shop}" if kind == "92" else f"广州{word}{company}"
    firm = {
        "credit_code": code,
        "name": name,
        "entity_type": "个体工商户" if kind == "92" else template.entity_type,
        "legal_representative": rep["name"],
        "legal_representative_id_number": rep["id_number"],
        "industry": template.industry,
        "address": address,
        "registered_capital": template.registered_capital,
        "founded_on": day.isoformat(),
        "registration_authority": f"广州市{dname}市场监督管理局",
        "status": ACTIVE,
        "business_scope": template.business_scope,
    }
    tax = {
        "credit_code": code,
        "taxpayer_name": name,
        "registration_type": "个体经营" if kind == "92" else "私营有限责任公司",
        "taxpayer_qualification": "小规模纳税人",
        "tax_authority": f"国家税务总局广州市{dname}税务局",
        "credit_rating": "M",  # new taxpayers are rated M until their first evaluation
        "registered_on": day.isoformat(),
        "status": "正常",
    }
    serial = f"{city.licence_feistel(0).forward(row):012d}"
    licence = {
        "licence_number": "YZ" + serial + ids.luhn_digit(serial),
        "licence_type": LICENCE_TYPES[0][1],
        "holder_name": name,
        "holder_credit_code": code,
        "issuing_authority": f"广州市{dname}{LICENCE_TYPES[0][2]}",
        "issued_on": day.isoformat(),
        "valid_until": "长期",
        "status": "有效",
    }
    credit = {
        "credit_code": code,
        "name": name,
        "licensing_count": 1,
        "penalty_count": 0,
        "latest_penalty_number": None,
        "latest_penalty_reason": None,
        "latest_penalty_date": None,
        "latest_penalty_amount": None,
        "list_status": "无",
    }
    return [
        Change("enterprise_registration", row, code, firm, "enterprise_registered"),
        Change("tax_registration", row, code, tax, "enterprise_registered"),
        Change("e_licence", row, licence["licence_number"], licence, "licence_issued"),
        Change("credit_publicity", row, code, credit, "enterprise_registered"),
    ]


def enterprise_change(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """变更登记 (market regulation): a new address, more registered capital or a new legal
    representative."""
    day = beijing_day(when)
    found = active_enterprise(w, r)
    if found is None:
        return []
    e, code, rec = found
    z = r.below(3)
    if z == 0:
        district = w.city.residence_district(r.next())
        new = with_changes(rec, address=new_address(r, district)[0])
    elif z == 1:
        new = with_changes(rec, registered_capital=int(rec["registered_capital"]) * r.between(2, 5))
    else:
        _, key = w.person_key(r)
        rep = w.current("household_registration", key)
        if not is_alive(rep) or age_on(rep["birth_date"], day) < 22:
            return []
        new = with_changes(
            rec, legal_representative=rep["name"], legal_representative_id_number=key
        )
    return [Change("enterprise_registration", e, code, new, "enterprise_changed")]


def enterprise_deregistration(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """注销登记 (market regulation): the enterprise, its tax registration and its licences."""
    del when
    found = active_enterprise(w, r)
    if found is None:
        return []
    e, code, rec = found
    changes = [
        Change(
            "enterprise_registration",
            e,
            code,
            with_changes(rec, status="注销"),
            "enterprise_deregistered",
        )
    ]
    tax = w.current("tax_registration", code)
    if tax is not None:
        changes.append(
            Change(
                "tax_registration",
                e,
                code,
                with_changes(tax, status="注销"),
                "enterprise_deregistered",
            )
        )
    for lic in current_licences(w, e, code):
        if lic["status"] != "注销":
            changes.append(
                Change(
                    "e_licence",
                    e,
                    lic["licence_number"],
                    with_changes(lic, status="注销"),
                    "licence_revoked",
                )
            )
    return changes


def tax_payment(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """纳税申报缴款 (taxation): a VAT and income-tax payment added to the year's total."""
    year = beijing_day(when).year
    found = active_enterprise(w, r)
    if found is None:
        return []
    e, code, firm = found
    rec = w.current("tax_paid", code) or {
        "credit_code": code,
        "taxpayer_name": firm["name"],
        "tax_year": year,
        "vat_paid": 0.0,
        "income_tax_paid": 0.0,
        "total_paid": 0.0,
        "arrears": 0.0,
    }
    if rec["tax_year"] != year:  # the first payment of a new year starts its total
        rec = with_changes(rec, tax_year=year, vat_paid=0.0, income_tax_paid=0.0, total_paid=0.0)
    scale = int(firm["registered_capital"]) * 100
    vat = round(r.between(0, scale * 8) / 10, 2)
    cit = round(r.between(0, scale * 3) / 10, 2)
    new = with_changes(
        rec,
        vat_paid=round(rec["vat_paid"] + vat, 2),
        income_tax_paid=round(rec["income_tax_paid"] + cit, 2),
        total_paid=round(rec["total_paid"] + vat + cit, 2),
        arrears=0.0,
    )
    return [Change("tax_paid", e, code, new, "tax_paid")]
