"""What happens in the city: each kind of life or business event and the records it changes.

An event reads the city as it is now (the derived records with the :class:`Overlay`'s
changes on top), picks its subject with its own PRNG, and returns the record changes it
makes, department by department: a death deregisters the person at public security, adds a
cremation record at civil affairs, ends medical insurance, social insurance, subsistence
assistance and the provident-fund account, and passes real estate and vehicles on to a
surviving spouse (or locks the vehicles until the heirs transfer them); a marriage adds both
spouses' registrations and moves the wife into her husband's household. Changes are written
by the caller (:mod:`.changes`), so an event that finds no subject (after a bounded number
of draws) changes nothing.

Each kind is registered by one department (its ``owner``): its rate is set in that
department's ``services/`` definition. Rates are per 1,000 of the base (residents or
enterprises) per year; the defaults and their reasons are in :data:`KINDS`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeGuard

from exchange import ids
from exchange.departments import names
from exchange.departments.city import City
from exchange.departments.overlay import Overlay, Record
from exchange.departments.prng import Rng
from exchange.departments.records import LICENCE_TYPES
from exchange.departments.vocabulary import ENT_WORDS, INDUSTRIES, ROADS, STREETS

__all__ = ["KINDS", "Change", "Kind", "World"]

_TRIES = 64
_BEIJING = dt.timedelta(hours=8)
_DISTRICT_OF_STREET = {s: d for d, streets in STREETS.items() for s in streets}
_HOSPITALS = (
    "广州市妇女儿童医疗中心",
    "中山大学附属第一医院",
    "广东省人民医院",
    "南方医科大学南方医院",
    "广州市第一人民医院",
)
_FUNERAL_HOMES = ("广州市殡仪馆", "番禺区殡仪馆", "增城区殡仪馆")
_ACTIVE = "存续(在业)"


@dataclass(frozen=True, slots=True)
class Change:
    """One record's change: which generator's record, its source row and key, the record
    after the change (``None``: removed) and the domain kind published with it."""

    generator: str
    row: int
    key: str
    record: Record | None
    kind: str


class World:
    """The city as it is now, and the bookkeeping of what was added to it."""

    def __init__(self, city: City, overlay: Overlay) -> None:
        self.city = city
        self.overlay = overlay
        #: credit codes of enterprises registered since the start, by row
        self.new_enterprises: dict[int, str] = {}
        #: (birth day, area) -> last sequence half given to a newborn
        self._sequences: dict[tuple[dt.date, str], int] = {}

    def current(self, generator: str, key: str) -> Record | None:
        return self.overlay.current(generator, key)

    def person_key(self, r: Rng) -> tuple[int, str]:
        """A resident of the derived city: (index, ID number)."""
        i = r.below(self.city.population)
        return i, self.city.id_number_of(i)

    def enterprise_key(self, r: Rng) -> tuple[int, str]:
        """An enterprise, the ones registered since the start included: (row, credit code)."""
        total = self.city.enterprises + len(self.new_enterprises)
        e = r.below(total)
        if e >= self.city.enterprises:
            return e, self.new_enterprises[e]
        return e, self.city.credit_code_of(e)

    def next_sequence(self, day: dt.date, area: str, female: bool) -> int | None:
        """An unused ID-number sequence for a newborn of ``day`` in ``area`` (None: all used)."""
        h = self._sequences.get((day, area), -1)
        while h + 1 < 499:
            h += 1
            seq = 2 * h + 2 if female else 2 * h + 1
            # A derived resident can hold the number only if the day is inside the city's
            # birth range (a clock put back before mid-2024); skip it then.
            if self.city.index_of_id_number(ids.make_id_number(area, day, seq)) is None:
                self._sequences[(day, area)] = h
                return seq
        self._sequences[(day, area)] = h
        return None


def beijing_day(when: dt.datetime) -> dt.date:
    """The platform's calendar day (Beijing time) of an instant."""
    return (when + _BEIJING).date()


def _age_on(birth_iso: str, day: dt.date) -> int:
    b = dt.date.fromisoformat(birth_iso)
    return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


def _alive(rec: Record | None) -> TypeGuard[Record]:
    return rec is not None and rec["status"] == "正常"


def _married(rec: Record | None) -> bool:
    return rec is not None and rec["registration_type"] == "结婚登记"


def _address(r: Rng, district: str) -> tuple[str, str, str]:
    """(address, street, police station) of a new home in ``district``."""
    street = r.pick(STREETS[district])
    address = (
        f"广州市{ids.AREA_NAMES[district]}{street.removesuffix('街道')}"
        f"{r.pick(ROADS)}{r.between(1, 899)}号{r.between(1, 30)}0{r.between(1, 8)}房"
    )
    station = street.removesuffix("街道").removesuffix("镇") + "派出所"
    return address, street, f"广州市公安局{ids.AREA_NAMES[district]}分局{station}"


def _with(rec: Record, **changes: object) -> Record:
    out = dict(rec)
    out.update(changes)
    return out


# -- people ---------------------------------------------------------------------------------


def birth(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """出生登记: a married couple's child, born today in the mother's district; the hospital's
    birth medical certificate (health) and the household registration (public security)."""
    city, day = w.city, beijing_day(when)
    for _ in range(_TRIES):
        u = r.below(city.units)
        if 2 * u + 1 >= city.population:
            continue
        man, woman = city.id_number_of(2 * u), city.id_number_of(2 * u + 1)
        hm, hw = (
            w.current("household_registration", man),
            w.current("household_registration", woman),
        )
        if not (_alive(hm) and _alive(hw)):
            continue
        if not _married(w.current("marriage_registration", woman)):
            continue
        if not 20 <= _age_on(hw["birth_date"], day) <= 42:
            continue
        break
    else:
        return []
    female = r.chance(0.485)  # about 106 boys to 100 girls, as China records at birth
    area = _DISTRICT_OF_STREET[hw["registered_street"]]
    seq = w.next_sequence(day, area, female)
    if seq is None:
        return []
    id_number = ids.make_id_number(area, day, seq)
    row = city.population + w.overlay.people_added
    w.overlay.people_added += 1
    chars = names.FEMALE_CHARS if female else names.MALE_CHARS
    given = r.pick(chars) + (r.pick(names.NEUTRAL_CHARS) if r.chance(0.8) else "")
    name = city.surname_of(2 * u) + given
    household = {
        "id_number": id_number,
        "name": name,
        "sex": "女" if female else "男",
        "birth_date": day.isoformat(),
        "ethnicity": hm["ethnicity"],
        "household_number": hw["household_number"],
        "relation_to_head": "女" if female else "子",
        "registered_address": hw["registered_address"],
        "registered_street": hw["registered_street"],
        "police_station": hw["police_station"],
        "status": "正常",
        "photo_ref": f"gaj-photo/{id_number[:6]}/{row:09d}.jpg",
    }
    certificate = {
        "id_number": id_number,
        "certificate_number": f"{chr(ord('A') + day.year % 26)}44{row:08d}",
        "child_name": name,
        "sex": household["sex"],
        "birth_date": day.isoformat(),
        "birth_place": r.pick(_HOSPITALS),
        "mother_name": hw["name"],
        "mother_id_number": woman,
        "father_name": hm["name"],
        "father_id_number": man,
    }
    return [
        Change("birth_certificate", row, id_number, certificate, "birth"),
        Change("household_registration", row, id_number, household, "birth"),
    ]


def death(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """死亡注销: deregistered at public security after the cremation (civil affairs); medical
    and social insurance end, the provident-fund account is closed, subsistence assistance
    stops, and what the person owned passes on (see :func:`died`)."""
    day = beijing_day(when)
    for _ in range(_TRIES):
        i, key = w.person_key(r)
        rec = w.current("household_registration", key)
        if not _alive(rec):
            continue
        assert rec is not None
        age = _age_on(rec["birth_date"], day)
        # Deaths concentrate in old age: accept the draw more often the older the person.
        if r.chance(min(1.0, max(0.01, (age - 45) / 40))):
            break
    else:
        return []
    return died(w, r, i, key, rec, day)


#: Vehicle status while a deceased owner's heirs have not yet had it transferred: the
#: registration is locked (锁定) so it cannot be sold or re-registered in the dead's name.
VEHICLE_LOCKED = "锁定"
#: Subsistence assistance stopped (停保): it is paid to the living only.
ASSISTANCE_STOPPED = "停保"
#: Estate record of a deceased owner whose property passed to heirs (继承转移登记).
ESTATE_INHERITED = "继承转移"


def _surviving_spouse(w: World, i: int, key: str) -> tuple[int, str, Record] | None:
    """The person's spouse (index, ID number, household record), when married and alive.
    Couples of the city are the neighbours ``2u`` and ``2u + 1``."""
    if not _married(w.current("marriage_registration", key)):
        return None
    j = i ^ 1
    if j >= w.city.population:
        return None
    spouse = w.city.id_number_of(j)
    rec = w.current("household_registration", spouse)
    return (j, spouse, rec) if _alive(rec) else None


def died(w: World, r: Rng, i: int, key: str, rec: Record, day: dt.date) -> list[Change]:
    """Every record change of resident ``i``'s death, registered on ``day``.

    Beyond the registers of the person (household, cremation, insurance, provident fund):
    subsistence assistance (低保) in their name stops; their real estate passes by
    inheritance (继承转移登记): a surviving spouse becomes sole owner of the jointly held
    home and the deceased's record holds no property any more; their vehicles are
    transferred to a surviving spouse, or locked until the heirs have them transferred.
    """
    died_on = day - dt.timedelta(days=r.between(5, 12))
    cremated = died_on + dt.timedelta(days=r.between(2, 4))
    changes = [
        Change(
            "cremation",
            i,
            key,
            {
                "id_number": key,
                "name": rec["name"],
                "sex": rec["sex"],
                "death_date": died_on.isoformat(),
                "cremated_on": cremated.isoformat(),
                "funeral_home": r.pick(_FUNERAL_HOMES),
                "certificate_number": f"HH{died_on.year}{r.between(1, 999999):06d}",
            },
            "cremation",
        ),
        Change("household_registration", i, key, _with(rec, status="死亡注销"), "death"),
    ]
    for generator, status in (
        ("medical_insurance", "终止参保"),
        ("social_insurance_enrolment", "终止参保"),
        ("social_assistance", ASSISTANCE_STOPPED),
    ):
        current = w.current(generator, key)
        if current is not None and current["status"] != status:
            changes.append(Change(generator, i, key, _with(current, status=status), "death"))
    fund = w.current("provident_fund", key)
    if fund is not None and fund["status"] != "销户":
        # Heirs withdraw the balance and the account is closed.
        changes.append(
            Change("provident_fund", i, key, _with(fund, status="销户", balance=0.0), "death")
        )
    spouse = _surviving_spouse(w, i, key)
    estate = w.current("real_estate", key)
    if estate is not None and estate["property_count"]:
        changes.append(
            Change(
                "real_estate",
                i,
                key,
                _with(estate, property_count=0, co_ownership=ESTATE_INHERITED),
                "death",
            )
        )
        if spouse is not None:
            j, spouse_key, _ = spouse
            theirs = w.current("real_estate", spouse_key)
            if theirs is not None and theirs["co_ownership"] == "共同共有":
                changes.append(
                    Change(
                        "real_estate",
                        j,
                        spouse_key,
                        _with(theirs, co_ownership="单独所有", registered_on=day.isoformat()),
                        "inheritance",
                    )
                )
    person = w.city.person(i)
    for k in range(w.city.vehicle_count(person)):
        plate = w.city.plate_of(i, k)
        vehicle = w.current("vehicle_registration", plate)
        if vehicle is None or vehicle["owner_id_number"] != key:
            continue
        if spouse is not None:
            _, spouse_key, spouse_rec = spouse
            after = _with(
                vehicle,
                owner_name=spouse_rec["name"],
                owner_id_number=spouse_key,
                registered_on=day.isoformat(),
            )
            changes.append(Change("vehicle_registration", i, plate, after, "inheritance"))
        elif vehicle["status"] != VEHICLE_LOCKED:
            changes.append(
                Change(
                    "vehicle_registration", i, plate, _with(vehicle, status=VEHICLE_LOCKED), "death"
                )
            )
    return changes


def _marriage_record(
    kind: Literal["结婚登记", "离婚登记"],
    key: str,
    name: str,
    man: Record,
    woman: Record,
    day: dt.date,
    number: str,
) -> Record:
    office = _DISTRICT_OF_STREET[man["registered_street"]]
    return {
        "id_number": key,
        "name": name,
        "registration_type": kind,
        "registered_on": day.isoformat(),
        "certificate_number": number,
        "registration_office": f"广州市{ids.AREA_NAMES[office]}民政局婚姻登记处",
        "man_name": man["name"],
        "man_id_number": man["id_number"],
        "woman_name": woman["name"],
        "woman_id_number": woman["id_number"],
    }


def _couple(
    w: World, r: Rng, fits: Callable[[Record, Record], bool]
) -> tuple[int, Record, Record] | None:
    city = w.city
    for _ in range(_TRIES):
        u = r.below(city.units)
        if 2 * u + 1 >= city.population:
            continue
        hm = w.current("household_registration", city.id_number_of(2 * u))
        hw = w.current("household_registration", city.id_number_of(2 * u + 1))
        if _alive(hm) and _alive(hw) and fits(hm, hw):
            return u, hm, hw
    return None


def marriage(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """结婚登记 (civil affairs): both spouses' registrations; the wife's household moves into
    her husband's (public security)."""
    day = beijing_day(when)

    def fits(hm: Record, hw: Record) -> bool:
        return (
            22 <= _age_on(hm["birth_date"], day) <= 60
            and 20 <= _age_on(hw["birth_date"], day) <= 55
            and w.current("marriage_registration", hm["id_number"]) is None
            and w.current("marriage_registration", hw["id_number"]) is None
        )

    found = _couple(w, r, fits)
    if found is None:
        return []
    u, hm, hw = found
    office = _DISTRICT_OF_STREET[hm["registered_street"]]
    number = f"J{office}-{day.year}-{r.between(1, 99999):06d}"
    moved = _with(
        hw,
        household_number=hm["household_number"],
        relation_to_head="配偶",
        registered_address=hm["registered_address"],
        registered_street=hm["registered_street"],
        police_station=hm["police_station"],
    )
    return [
        Change(
            "marriage_registration",
            2 * u,
            hm["id_number"],
            _marriage_record("结婚登记", hm["id_number"], hm["name"], hm, hw, day, number),
            "marriage",
        ),
        Change(
            "marriage_registration",
            2 * u + 1,
            hw["id_number"],
            _marriage_record("结婚登记", hw["id_number"], hw["name"], hm, hw, day, number),
            "marriage",
        ),
        Change("household_registration", 2 * u + 1, hw["id_number"], moved, "marriage"),
    ]


def divorce(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """离婚登记 (civil affairs): both registrations; the wife heads a household of her own."""
    day = beijing_day(when)

    def fits(_hm: Record, hw: Record) -> bool:
        return _married(w.current("marriage_registration", hw["id_number"]))

    found = _couple(w, r, fits)
    if found is None:
        return []
    u, hm, hw = found
    office = _DISTRICT_OF_STREET[hm["registered_street"]]
    number = f"L{office}-{day.year}-{r.between(1, 99999):06d}"
    own = _with(hw, household_number=f"{440100000000 + 2 * u + 1:012d}", relation_to_head="户主")
    return [
        Change(
            "marriage_registration",
            2 * u,
            hm["id_number"],
            _marriage_record("离婚登记", hm["id_number"], hm["name"], hm, hw, day, number),
            "divorce",
        ),
        Change(
            "marriage_registration",
            2 * u + 1,
            hw["id_number"],
            _marriage_record("离婚登记", hw["id_number"], hw["name"], hm, hw, day, number),
            "divorce",
        ),
        Change("household_registration", 2 * u + 1, hw["id_number"], own, "divorce"),
    ]


def household_move(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """户籍迁移 within the city: a household head moves, with a spouse in the same household."""
    day = beijing_day(when)
    for _ in range(_TRIES):
        i, key = w.person_key(r)
        rec = w.current("household_registration", key)
        if (
            _alive(rec)
            and rec["relation_to_head"] == "户主"
            and _age_on(rec["birth_date"], day) >= 18
        ):
            break
    else:
        return []
    address, street, station = _address(r, w.city.residence_district(r.next()))
    moved = {"registered_address": address, "registered_street": street, "police_station": station}
    changes = [Change("household_registration", i, key, _with(rec, **moved), "household_move")]
    spouse = w.city.id_number_of(i ^ 1) if (i ^ 1) < w.city.population else None
    if spouse is not None:
        other = w.current("household_registration", spouse)
        if (
            _alive(other)
            and other is not None
            and other["household_number"] == rec["household_number"]
        ):
            changes.append(
                Change(
                    "household_registration", i ^ 1, spouse, _with(other, **moved), "household_move"
                )
            )
    return changes


def social_insurance_change(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """社保参保变更 (human resources): a new employer, a contribution base adjusted, or
    contributions suspended."""
    day = beijing_day(when)
    for _ in range(_TRIES):
        i, key = w.person_key(r)
        rec = w.current("social_insurance_enrolment", key)
        if rec is not None and rec["status"] == "参保缴费":
            break
    else:
        return []
    z = r.below(10)
    if z < 5:
        e, code = w.enterprise_key(r)
        firm = w.current("enterprise_registration", code)
        if firm is None or firm["status"] != _ACTIVE:
            return []
        new = _with(
            rec, employer_credit_code=code, employer_name=firm["name"], enrolled_on=day.isoformat()
        )
        del e
    elif z < 8:
        new = _with(rec, contribution_base=r.between(5284, 26421))
    else:
        new = _with(rec, status="暂停缴费")
    return [Change("social_insurance_enrolment", i, key, new, "social_insurance_change")]


def provident_fund_change(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """住房公积金变更 (provident fund): a withdrawal (rent, purchase) or a base adjustment."""
    del when
    for _ in range(_TRIES):
        i, key = w.person_key(r)
        rec = w.current("provident_fund", key)
        if rec is not None and rec["status"] == "正常":
            break
    else:
        return []
    if r.chance(0.6):
        taken = round(rec["balance"] * r.between(10, 90) / 100, 2)
        new = _with(rec, balance=round(rec["balance"] - taken, 2))
    else:
        base = r.between(5284, 26421)
        new = _with(
            rec, deposit_base=base, monthly_deposit=round(base * rec["deposit_rate"] * 2, 2)
        )
    return [Change("provident_fund", i, key, new, "provident_fund_change")]


# -- enterprises ----------------------------------------------------------------------------


def _active_enterprise(w: World, r: Rng) -> tuple[int, str, Record] | None:
    for _ in range(_TRIES):
        e, code = w.enterprise_key(r)
        rec = w.current("enterprise_registration", code)
        if rec is not None and rec["status"] == _ACTIVE:
            return e, code, rec
    return None


def _licences(w: World, e: int, code: str) -> list[Record]:
    """The e-licences enterprise ``e`` holds now (changed or derived), in type order."""
    return [
        rec for rec in w.overlay.row_records("e_licence", e) if rec["holder_credit_code"] == code
    ]


def enterprise_registration(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """设立登记 (market regulation): a new enterprise with a fresh credit code, its tax
    registration and its business licence (营业执照) in the e-licence library."""
    city, day = w.city, beijing_day(when)
    rep = None
    for _ in range(_TRIES):
        _, key = w.person_key(r)
        rec = w.current("household_registration", key)
        if _alive(rec) and 22 <= _age_on(rec["birth_date"], day) <= 70:
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
    address = _address(r, district)[0]
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
        "status": _ACTIVE,
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
    found = _active_enterprise(w, r)
    if found is None:
        return []
    e, code, rec = found
    z = r.below(3)
    if z == 0:
        district = w.city.residence_district(r.next())
        new = _with(rec, address=_address(r, district)[0])
    elif z == 1:
        new = _with(rec, registered_capital=int(rec["registered_capital"]) * r.between(2, 5))
    else:
        _, key = w.person_key(r)
        rep = w.current("household_registration", key)
        if not _alive(rep) or _age_on(rep["birth_date"], day) < 22:
            return []
        new = _with(rec, legal_representative=rep["name"], legal_representative_id_number=key)
    return [Change("enterprise_registration", e, code, new, "enterprise_changed")]


def enterprise_deregistration(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """注销登记 (market regulation): the enterprise, its tax registration and its licences."""
    del when
    found = _active_enterprise(w, r)
    if found is None:
        return []
    e, code, rec = found
    changes = [
        Change(
            "enterprise_registration", e, code, _with(rec, status="注销"), "enterprise_deregistered"
        )
    ]
    tax = w.current("tax_registration", code)
    if tax is not None:
        changes.append(
            Change(
                "tax_registration", e, code, _with(tax, status="注销"), "enterprise_deregistered"
            )
        )
    for lic in _licences(w, e, code):
        if lic["status"] != "注销":
            changes.append(
                Change(
                    "e_licence",
                    e,
                    lic["licence_number"],
                    _with(lic, status="注销"),
                    "licence_revoked",
                )
            )
    return changes


def tax_payment(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """纳税申报缴款 (taxation): a VAT and income-tax payment added to the year's total."""
    year = beijing_day(when).year
    found = _active_enterprise(w, r)
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
        rec = _with(rec, tax_year=year, vat_paid=0.0, income_tax_paid=0.0, total_paid=0.0)
    scale = int(firm["registered_capital"]) * 100
    vat = round(r.between(0, scale * 8) / 10, 2)
    cit = round(r.between(0, scale * 3) / 10, 2)
    new = _with(
        rec,
        vat_paid=round(rec["vat_paid"] + vat, 2),
        income_tax_paid=round(rec["income_tax_paid"] + cit, 2),
        total_paid=round(rec["total_paid"] + vat + cit, 2),
        arrears=0.0,
    )
    return [Change("tax_paid", e, code, new, "tax_paid")]


def _credit(w: World, code: str, firm: Record) -> Record:
    return w.current("credit_publicity", code) or {
        "credit_code": code,
        "name": firm["name"],
        "licensing_count": 0,
        "penalty_count": 0,
        "latest_penalty_number": None,
        "latest_penalty_reason": None,
        "latest_penalty_date": None,
        "latest_penalty_amount": None,
        "list_status": "无",
    }


def permit(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """行政许可 published for double publicity (双公示)."""
    del when
    found = _active_enterprise(w, r)
    if found is None:
        return []
    e, code, firm = found
    rec = _credit(w, code, firm)
    new = _with(rec, licensing_count=int(rec["licensing_count"]) + 1)
    return [Change("credit_publicity", e, code, new, "permit_granted")]


_PENALTY_REASONS = (
    "未按规定公示年度报告",
    "发布虚假广告",
    "未取得许可从事经营活动",
    "违反价格管理规定",
)


def penalty(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """行政处罚 published for double publicity; a third penalty puts the firm on the black list."""
    day = beijing_day(when)
    found = _active_enterprise(w, r)
    if found is None:
        return []
    e, code, firm = found
    rec = _credit(w, code, firm)
    count = int(rec["penalty_count"]) + 1
    new = _with(
        rec,
        penalty_count=count,
        latest_penalty_number=f"穗市监处罚〔{day.year}〕{r.between(1, 9999)}号",
        latest_penalty_reason=r.pick(_PENALTY_REASONS),
        latest_penalty_date=day.isoformat(),
        latest_penalty_amount=r.between(1, 200) * 500,
        list_status="黑名单" if count >= 3 else rec["list_status"],
    )
    return [Change("credit_publicity", e, code, new, "penalty_decided")]


def licence_issue(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """发证/换证 (e-licence library): an expired licence renewed, or a valid one re-issued."""
    day = beijing_day(when)
    found = _active_enterprise(w, r)
    if found is None:
        return []
    e, code, _ = found
    held = _licences(w, e, code)
    if not held:
        return []
    expired = [lic for lic in held if lic["status"] == "过期"]
    lic = expired[0] if expired else held[r.below(len(held))]
    valid = (
        "长期" if lic["valid_until"] == "长期" else (day + dt.timedelta(days=5 * 365)).isoformat()
    )
    new = _with(lic, issued_on=day.isoformat(), valid_until=valid, status="有效")
    return [Change("e_licence", e, lic["licence_number"], new, "licence_issued")]


def licence_revocation(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """吊销 (e-licence library): a permit revoked; revoking the business licence itself
    also marks the enterprise revoked at market regulation."""
    del when
    found = _active_enterprise(w, r)
    if found is None:
        return []
    e, code, firm = found
    valid = [lic for lic in _licences(w, e, code) if lic["status"] == "有效"]
    if not valid:
        return []
    permits = [lic for lic in valid if not lic["licence_number"].startswith("YZ")]
    lic = permits[0] if permits else valid[0]
    changes = [
        Change("e_licence", e, lic["licence_number"], _with(lic, status="吊销"), "licence_revoked")
    ]
    if lic["licence_number"].startswith("YZ"):
        changes.append(
            Change(
                "enterprise_registration",
                e,
                code,
                _with(firm, status="吊销,未注销"),
                "licence_revoked",
            )
        )
    return changes


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of event: who registers it, over which base, how often by default, and why."""

    name: str
    owner: str
    base: Literal["people", "enterprises"]
    #: events per 1,000 of the base per year
    rate: float
    why: str
    make: Callable[[World, Rng, dt.datetime], list[Change]]


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "birth",
            "gaj",
            "people",
            9.0,
            "China's crude birth rate was 6.4 per 1,000 in 2023; Guangzhou, a young city, "
            "reports about 9-12",
            birth,
        ),
        Kind(
            "death",
            "gaj",
            "people",
            5.0,
            "China 7.9 per 1,000 in 2023; Guangzhou's younger population about 5",
            death,
        ),
        Kind(
            "marriage",
            "mzj",
            "people",
            5.4,
            "couples per 1,000 residents: 7.68 M marriages over 1.41 bn people in 2023",
            marriage,
        ),
        Kind(
            "divorce",
            "mzj",
            "people",
            1.8,
            "couples per 1,000 residents: 2.59 M divorces in 2023",
            divorce,
        ),
        Kind(
            "household_move",
            "gaj",
            "people",
            15.0,
            "moves of registration within the city (户籍迁移), about 1.5 % of residents a year",
            household_move,
        ),
        Kind(
            "social_insurance_change",
            "rsj",
            "people",
            40.0,
            "job changes, base adjustments and suspensions of the ~60 % of residents insured "
            "through an employer",
            social_insurance_change,
        ),
        Kind(
            "provident_fund_change",
            "gjj",
            "people",
            30.0,
            "withdrawals (rent, purchase) and base adjustments of fund depositors",
            provident_fund_change,
        ),
        Kind(
            "enterprise_registration",
            "scjgj",
            "enterprises",
            120.0,
            "new market entities are ~12-15 % of the stock a year in Guangzhou",
            enterprise_registration,
        ),
        Kind(
            "enterprise_change",
            "scjgj",
            "enterprises",
            100.0,
            "changes of address, capital or legal representative",
            enterprise_change,
        ),
        Kind(
            "enterprise_deregistration",
            "scjgj",
            "enterprises",
            50.0,
            "deregistrations run at about a third to a half of new registrations",
            enterprise_deregistration,
        ),
        Kind(
            "tax_payment",
            "swj",
            "enterprises",
            4000.0,
            "quarterly VAT and income-tax filings: four payments per enterprise a year",
            tax_payment,
        ),
        Kind(
            "permit",
            "zsj",
            "enterprises",
            300.0,
            "administrative permits published for double publicity",
            permit,
        ),
        Kind(
            "penalty",
            "zsj",
            "enterprises",
            30.0,
            "administrative penalties: about a tenth of the permits",
            penalty,
        ),
        Kind(
            "licence_issue",
            "zsj",
            "enterprises",
            60.0,
            "licences renewed or re-issued",
            licence_issue,
        ),
        Kind(
            "licence_revocation", "zsj", "enterprises", 5.0, "licences revoked", licence_revocation
        ),
    )
}
