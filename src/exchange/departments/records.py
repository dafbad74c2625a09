"""Record generators: how each kind of department record is derived from the city.

A services/ definition names a generator and picks fields from it; the generator owns the
maths. Generators only read the city, so every department sees the same person and the same
enterprise. Values are JSON-ready (dates as ISO strings, amounts as numbers).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from exchange import ids
from exchange.departments import bulk
from exchange.departments.city import REFERENCE_DATE, City, Enterprise, Person, Rng

__all__ = ["GENERATORS", "KEY_TYPES", "Generator", "KeyType", "key_problem"]

Record = dict[str, Any]
Rows = Iterator[tuple[int, Record]]
# People derived per NumPy pass in an export: large enough that the per-pass cost vanishes,
# small enough that an export page of a few rows does not derive thousands.
PEOPLE_BLOCK = 2_048
KeyType = Literal["id_number", "credit_code", "plate_number", "licence_number"]
KEY_TYPES: tuple[KeyType, ...] = ("id_number", "credit_code", "plate_number", "licence_number")

_PLATE_RE = re.compile(
    r"^[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z][A-HJ-NP-Z0-9]{5,6}$"
)
_LICENCE_RE = re.compile(r"^[A-Z]{2}\d{13}$")


def key_problem(key_type: KeyType, key: str) -> str | None:
    """Why ``key`` is malformed for ``key_type``, or ``None`` when well-formed."""
    if key_type == "id_number":
        return ids.id_number_problem(key)
    if key_type == "credit_code":
        return ids.credit_code_problem(key)
    if key_type == "plate_number":
        return None if _PLATE_RE.match(key) else "a plate is a province, a letter, 5-6 characters"
    if not _LICENCE_RE.match(key):
        return "a licence number is two letters and 13 digits"
    if ids.luhn_digit(key[2:14]) != key[14]:
        return f"check digit is {key[14]}, expected {ids.luhn_digit(key[2:14])}"
    return None


@dataclass(frozen=True, slots=True)
class Generator:
    """One kind of record: its key, the fields it can produce and how to derive them."""

    name: str
    key_type: KeyType
    key_field: str
    fields: tuple[str, ...]
    #: record for a well-formed key, or None when the city has no such record
    lookup: Callable[[City, str], Record | None]
    #: number of source rows an export pages over
    rows: Callable[[City], int]
    #: (source row, record) of source rows [start, stop), in order, skipping rows without
    #: a record (a row may have several: a person's vehicles)
    export_rows: Callable[[City, int, int], Rows]

    def export(self, city: City, start: int, stop: int) -> Iterator[Record]:
        """Records of source rows [start, stop), in order."""
        return (rec for _, rec in self.export_rows(city, start, stop))


def _firms_of(city: City, start: int, stop: int) -> Iterator[Enterprise]:
    """Enterprises in index order, their legal representatives derived in bulk."""
    stop = min(stop, city.enterprises)
    for block in range(max(0, start), stop, PEOPLE_BLOCK):
        yield from bulk.enterprises(city, block, min(block + PEOPLE_BLOCK, stop))


def _people_of(city: City, start: int, stop: int) -> Iterator[Person]:
    """People in index order, derived in bulk (:mod:`exchange.departments.bulk`)."""
    stop = min(stop, city.population)
    for block in range(max(0, start), stop, PEOPLE_BLOCK):
        yield from bulk.people(city, block, min(block + PEOPLE_BLOCK, stop))


def _from_age(birth: dt.date, years: int, earliest: dt.date) -> int:
    """Ordinal of the later of ``birth``'s ``years``-th birthday and ``earliest``, capped at
    the reference date, as the low bound of a date drawn up to the reference date.

    ``years * 366`` days overshot the birthday by up to two weeks, which put the low bound
    after the reference date for people who came of age in its last days (and divided by
    zero in ``between``).
    """
    try:
        birthday = birth.replace(year=birth.year + years)
    except ValueError:  # born on 29 February
        birthday = dt.date(birth.year + years, 3, 1)
    return min(max(birthday, earliest), REFERENCE_DATE).toordinal()


def _d(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _people(
    build: Callable[[City, Person], Record | None],
) -> tuple[
    Callable[[City, str], Record | None],
    Callable[[City], int],
    Callable[[City, int, int], Rows],
]:
    """Lookup/rows/export for a generator whose records belong to one person each."""

    def lookup(city: City, key: str) -> Record | None:
        p = city.person_by_id_number(key)
        return None if p is None else build(city, p)

    def export(city: City, start: int, stop: int) -> Rows:
        for p in _people_of(city, start, stop):
            rec = build(city, p)
            if rec is not None:
                yield p.index, rec

    return lookup, lambda city: city.population, export


def _firms(
    build: Callable[[City, Enterprise], Record | None],
) -> tuple[
    Callable[[City, str], Record | None],
    Callable[[City], int],
    Callable[[City, int, int], Rows],
]:
    """Lookup/rows/export for a generator whose records belong to one enterprise each."""

    def lookup(city: City, key: str) -> Record | None:
        e = city.enterprise_by_credit_code(key)
        return None if e is None else build(city, e)

    def export(city: City, start: int, stop: int) -> Rows:
        for e in _firms_of(city, start, stop):
            rec = build(city, e)
            if rec is not None:
                yield e.index, rec

    return lookup, lambda city: city.enterprises, export


# -- public security ----------------------------------------------------------------------

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
_BRANDS = ("广汽丰田", "广汽本田", "比亚迪", "广汽埃安", "东风日产", "小鹏", "一汽-大众", "吉利")
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


def vin_with_check(vin: str) -> str:
    """Set the 9th character of a 17-character VIN to its ISO 3779 check character."""
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    check = "X" if total % 11 == 10 else str(total % 11)
    return vin[:8] + check + vin[9:]


def _vehicle(city: City, owner: Person, k: int) -> Record:
    r = city.rng("vehicle", owner.index, k)
    wmi = ("LVG", "LHG", "LGX", "LNB", "LGB", "L1N", "LFV", "LB3")[
        _BRANDS.index(b := r.pick(_BRANDS))
    ]
    body = "".join(r.pick(_VIN_CHARS) for _ in range(14))
    first = _from_age(owner.birth_date, 18, dt.date(1995, 1, 1))
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


def _vehicle_lookup(city: City, key: str) -> Record | None:
    found = city.vehicle_by_plate(key)
    return None if found is None else _vehicle(city, *found)


def _vehicle_export(city: City, start: int, stop: int) -> Rows:
    for p in _people_of(city, start, stop):
        for k in range(city.vehicle_count(p)):
            yield p.index, _vehicle(city, p, k)


# -- market regulation --------------------------------------------------------------------

ENTERPRISE_FIELDS = (
    "credit_code",
    "name",
    "entity_type",
    "legal_representative",
    "legal_representative_id_number",
    "industry",
    "address",
    "registered_capital",
    "founded_on",
    "registration_authority",
    "status",
    "business_scope",
)


def enterprise_registration(_city: City, e: Enterprise) -> Record:
    """商事主体基础信息: the source of every enterprise.* element."""
    return {
        "credit_code": e.credit_code,
        "name": e.name,
        "entity_type": e.entity_type,
        "legal_representative": e.legal_rep_name,
        "legal_representative_id_number": e.legal_rep_id_number,
        "industry": e.industry,
        "address": e.address,
        "registered_capital": e.registered_capital,
        "founded_on": e.founded_on.isoformat(),
        "registration_authority": f"广州市{ids.AREA_NAMES[e.district]}市场监督管理局",
        "status": e.status,
        "business_scope": e.business_scope,
    }


# -- civil affairs ------------------------------------------------------------------------

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


# -- human resources and social security -------------------------------------------------

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


def _contribution_base(city: City, p: Person) -> int:
    # Guangzhou 2024 bounds: 5,284 .. 26,421 yuan/month (deterministic per person).
    return city.rng("wage", p.index).between(5284, 26421)


def _enrolled_on(city: City, p: Person, e: Enterprise) -> dt.date:
    first = _from_age(p.birth_date, 18, e.founded_on)
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
        "enrolled_on": _enrolled_on(city, p, e).isoformat(),
        "contribution_base": _contribution_base(city, p),
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
    base = _contribution_base(city, p)
    enrolled = _enrolled_on(city, p, e)
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
    first = _from_age(p.birth_date, 20, dt.date(1995, 1, 1))
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


# -- housing provident fund ----------------------------------------------------------------

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
    base = _contribution_base(city, p)
    rate = r.pick(("0.05", "0.08", "0.10", "0.12"))
    monthly = round(base * float(rate) * 2, 2)
    opened = _enrolled_on(city, p, e)
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


# -- planning and natural resources --------------------------------------------------------

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


# -- taxation -----------------------------------------------------------------------------

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


# -- health ---------------------------------------------------------------------------------

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
_HOSPITALS = (
    "广州市妇女儿童医疗中心",
    "中山大学附属第一医院",
    "广东省人民医院",
    "南方医科大学南方医院",
    "广州市第一人民医院",
    "广州医科大学附属第三医院",
    "广州市番禺区何贤纪念医院",
)
_BIRTH_CERTS_FROM = dt.date(1996, 1, 1)


def birth_certificate(city: City, p: Person) -> Record | None:
    """出生医学证明信息: residents born since 1996; parents are other residents."""
    if p.birth_date < _BIRTH_CERTS_FROM:
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
        "birth_place": r.pick(_HOSPITALS),
        "mother_name": None if mother is None else mother.name,
        "mother_id_number": None if mother is None else mother.id_number,
        "father_name": None if father is None else father.name,
        "father_id_number": None if father is None else father.id_number,
    }


# -- medical security -------------------------------------------------------------------------

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


# -- platform operator: e-licences and double publicity ------------------------------------

LICENCE_FIELDS = (
    "licence_number",
    "licence_type",
    "holder_name",
    "holder_credit_code",
    "issuing_authority",
    "issued_on",
    "valid_until",
    "status",
)
# (code, name, issuer, who holds one: industry prefix or "" for everyone)
LICENCE_TYPES: tuple[tuple[str, str, str, str], ...] = (
    ("YZ", "营业执照", "市场监督管理局", ""),
    ("JY", "食品经营许可证", "市场监督管理局", "住宿和餐饮业"),
    ("YS", "道路运输经营许可证", "交通运输局", "交通运输"),
)


def _licence(city: City, e: Enterprise, t: int) -> Record | None:
    code, name, issuer, industry = LICENCE_TYPES[t]
    if industry and not e.industry.startswith(industry):
        return None
    serial = f"{city.licence_feistel(t).forward(e.index):012d}"
    r = city.rng("licence", e.index, t)
    issued = e.founded_on + dt.timedelta(days=r.between(0, 60) if t else 0)
    valid = "长期" if t == 0 else (issued + dt.timedelta(days=5 * 365)).isoformat()
    if not e.status.startswith("存续"):
        status = "注销"
    elif valid != "长期" and valid < REFERENCE_DATE.isoformat():
        status = "过期"
    else:
        status = "有效"
    return {
        "licence_number": code + serial + ids.luhn_digit(serial),
        "licence_type": name,
        "holder_name": e.name,
        "holder_credit_code": e.credit_code,
        "issuing_authority": f"广州市{issuer}"
        if t
        else f"广州市{ids.AREA_NAMES[e.district]}{issuer}",
        "issued_on": issued.isoformat(),
        "valid_until": valid,
        "status": status,
    }


def _licence_lookup(city: City, key: str) -> Record | None:
    t = next((i for i, lt in enumerate(LICENCE_TYPES) if lt[0] == key[:2]), None)
    if t is None:
        return None
    e = city.licence_feistel(t).inverse(int(key[2:14]))
    if e >= city.enterprises:
        return None
    return _licence(city, city.enterprise(e), t)


def _licence_export(city: City, start: int, stop: int) -> Rows:
    for e in _firms_of(city, start, stop):
        for t in range(len(LICENCE_TYPES)):
            rec = _licence(city, e, t)
            if rec is not None:
                yield e.index, rec


def licences_of(city: City, e: int) -> list[Record]:
    """The e-licence records enterprise ``e`` holds, in type order."""
    ent = city.enterprise(e)
    return [rec for t in range(len(LICENCE_TYPES)) if (rec := _licence(city, ent, t)) is not None]


def licence_numbers_of(city: City, e: int) -> list[str]:
    """Licence numbers an enterprise holds (for tests and demos)."""
    ent = city.enterprise(e)
    out = []
    for t in range(len(LICENCE_TYPES)):
        rec = _licence(city, ent, t)
        if rec is not None:
            out.append(str(rec["licence_number"]))
    return out


CREDIT_FIELDS = (
    "credit_code",
    "name",
    "licensing_count",
    "penalty_count",
    "latest_penalty_number",
    "latest_penalty_reason",
    "latest_penalty_date",
    "latest_penalty_amount",
    "list_status",
)
_PENALTY_REASONS = (
    "未按规定公示年度报告",
    "销售不符合食品安全标准的食品",
    "发布虚假广告",
    "未取得许可从事经营活动",
    "未按规定办理税务登记变更",
    "违反价格管理规定",
)


def credit_publicity(city: City, e: Enterprise) -> Record:
    """双公示信息: licensing and penalty decisions about the enterprise, and its list status."""
    r = city.rng("credit", e.index)
    licences = sum(1 for t in range(len(LICENCE_TYPES)) if _licence(city, e, t) is not None)
    penalties = 0 if r.chance(0.85) else r.between(1, 4)
    latest: dt.date | None = None
    if penalties:
        latest = dt.date.fromordinal(
            r.between(e.founded_on.toordinal(), REFERENCE_DATE.toordinal())
        )
    black = penalties >= 3 or e.status.startswith("吊销")
    red = not penalties and r.chance(0.03)
    return {
        "credit_code": e.credit_code,
        "name": e.name,
        "licensing_count": licences + r.between(0, 3),
        "penalty_count": penalties,
        "latest_penalty_number": None
        if latest is None
        else f"穗市监处罚〔{latest.year}〕{r.between(1, 9999)}号",
        "latest_penalty_reason": None if latest is None else r.pick(_PENALTY_REASONS),
        "latest_penalty_date": _d(latest),
        "latest_penalty_amount": None if latest is None else r.between(1, 200) * 500,
        "list_status": "黑名单" if black else "红名单" if red else "无",
    }


def _person_gen(
    name: str, fields: tuple[str, ...], build: Callable[[City, Person], Record | None]
) -> Generator:
    return Generator(name, "id_number", "id_number", fields, *_people(build))


def _firm_gen(
    name: str, fields: tuple[str, ...], build: Callable[[City, Enterprise], Record | None]
) -> Generator:
    return Generator(name, "credit_code", "credit_code", fields, *_firms(build))


GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in (
        _person_gen("household_registration", HOUSEHOLD_FIELDS, household_registration),
        Generator(
            "vehicle_registration",
            "plate_number",
            "plate_number",
            VEHICLE_FIELDS,
            _vehicle_lookup,
            lambda city: city.population,
            _vehicle_export,
        ),
        _firm_gen("enterprise_registration", ENTERPRISE_FIELDS, enterprise_registration),
        _person_gen("marriage_registration", MARRIAGE_FIELDS, marriage_registration),
        _person_gen("social_assistance", ASSISTANCE_FIELDS, social_assistance),
        _person_gen("cremation", CREMATION_FIELDS, cremation),
        _person_gen("social_insurance_enrolment", INSURANCE_FIELDS, social_insurance_enrolment),
        _person_gen("social_insurance_payments", PAYMENT_FIELDS, social_insurance_payments),
        _person_gen("professional_qualification", QUALIFICATION_FIELDS, professional_qualification),
        _person_gen("provident_fund", FUND_FIELDS, provident_fund),
        _person_gen("real_estate", ESTATE_FIELDS, real_estate),
        _firm_gen("tax_registration", TAX_FIELDS, tax_registration),
        _firm_gen("tax_paid", TAX_PAID_FIELDS, tax_paid),
        _person_gen("birth_certificate", BIRTH_FIELDS, birth_certificate),
        _person_gen("medical_insurance", MEDICAL_FIELDS, medical_insurance),
        Generator(
            "e_licence",
            "licence_number",
            "licence_number",
            LICENCE_FIELDS,
            _licence_lookup,
            lambda city: city.enterprises,
            _licence_export,
        ),
        _firm_gen("credit_publicity", CREDIT_FIELDS, credit_publicity),
    )
}
