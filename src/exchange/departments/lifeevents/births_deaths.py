"""Births and deaths: a newborn registered with public security and health, and a death's
records across every department (cremation, insurance, assistance, estate, vehicles)."""

from __future__ import annotations

import datetime as dt

from exchange import ids
from exchange.departments import names
from exchange.departments.lifeevents.world import (
    DISTRICT_OF_STREET,
    FUNERAL_HOMES,
    HOSPITALS,
    TRIES,
    Change,
    World,
    age_on,
    beijing_day,
    is_alive,
    is_married,
    with_changes,
)
from exchange.departments.overlay import Record
from exchange.departments.prng import Rng


def birth(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """出生登记: a married couple's child, born today in the mother's district; the hospital's
    birth medical certificate (health) and the household registration (public security)."""
    city, day = w.city, beijing_day(when)
    for _ in range(TRIES):
        u = r.below(city.units)
        if 2 * u + 1 >= city.population:
            continue
        man, woman = city.id_number_of(2 * u), city.id_number_of(2 * u + 1)
        hm, hw = (
            w.current("household_registration", man),
            w.current("household_registration", woman),
        )
        if not (is_alive(hm) and is_alive(hw)):
            continue
        if not is_married(w.current("marriage_registration", woman)):
            continue
        if not 20 <= age_on(hw["birth_date"], day) <= 42:
            continue
        break
    else:
        return []
    female = r.chance(0.485)  # about 106 boys to 100 girls, as China records at birth
    area = DISTRICT_OF_STREET[hw["registered_street"]]
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
        "birth_place": r.pick(HOSPITALS),
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
    for _ in range(TRIES):
        i, key = w.person_key(r)
        rec = w.current("household_registration", key)
        if not is_alive(rec):
            continue
        assert rec is not None
        age = age_on(rec["birth_date"], day)
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


def surviving_spouse(w: World, i: int, key: str) -> tuple[int, str, Record] | None:
    """The person's spouse (index, ID number, household record), when married and alive.
    Couples of the city are the neighbours ``2u`` and ``2u + 1``."""
    if not is_married(w.current("marriage_registration", key)):
        return None
    j = i ^ 1
    if j >= w.city.population:
        return None
    spouse = w.city.id_number_of(j)
    rec = w.current("household_registration", spouse)
    return (j, spouse, rec) if is_alive(rec) else None


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
                "funeral_home": r.pick(FUNERAL_HOMES),
                "certificate_number": f"HH{died_on.year}{r.between(1, 999999):06d}",
            },
            "cremation",
        ),
        Change("household_registration", i, key, with_changes(rec, status="死亡注销"), "death"),
    ]
    for generator, status in (
        ("medical_insurance", "终止参保"),
        ("social_insurance_enrolment", "终止参保"),
        ("social_assistance", ASSISTANCE_STOPPED),
    ):
        current = w.current(generator, key)
        if current is not None and current["status"] != status:
            changes.append(Change(generator, i, key, with_changes(current, status=status), "death"))
    fund = w.current("provident_fund", key)
    if fund is not None and fund["status"] != "销户":
        # Heirs withdraw the balance and the account is closed.
        changes.append(
            Change(
                "provident_fund", i, key, with_changes(fund, status="销户", balance=0.0), "death"
            )
        )
    spouse = surviving_spouse(w, i, key)
    estate = w.current("real_estate", key)
    if estate is not None and estate["property_count"]:
        changes.append(
            Change(
                "real_estate",
                i,
                key,
                with_changes(estate, property_count=0, co_ownership=ESTATE_INHERITED),
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
                        with_changes(
                            theirs, co_ownership="单独所有", registered_on=day.isoformat()
                        ),
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
            after = with_changes(
                vehicle,
                owner_name=spouse_rec["name"],
                owner_id_number=spouse_key,
                registered_on=day.isoformat(),
            )
            changes.append(Change("vehicle_registration", i, plate, after, "inheritance"))
        elif vehicle["status"] != VEHICLE_LOCKED:
            changes.append(
                Change(
                    "vehicle_registration",
                    i,
                    plate,
                    with_changes(vehicle, status=VEHICLE_LOCKED),
                    "death",
                )
            )
    return changes
