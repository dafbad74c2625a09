"""Marriages, divorces and household moves: the civil-affairs and public-security records
they change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Literal

from exchange import ids
from exchange.departments.lifeevents.world import (
    DISTRICT_OF_STREET,
    TRIES,
    Change,
    World,
    age_on,
    beijing_day,
    is_alive,
    is_married,
    new_address,
    with_changes,
)
from exchange.departments.overlay import Record
from exchange.departments.prng import Rng


def _marriage_record(
    kind: Literal["结婚登记", "离婚登记"],
    key: str,
    name: str,
    man: Record,
    woman: Record,
    day: dt.date,
    number: str,
) -> Record:
    office = DISTRICT_OF_STREET[man["registered_street"]]
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
    for _ in range(TRIES):
        u = r.below(city.units)
        if 2 * u + 1 >= city.population:
            continue
        hm = w.current("household_registration", city.id_number_of(2 * u))
        hw = w.current("household_registration", city.id_number_of(2 * u + 1))
        if is_alive(hm) and is_alive(hw) and fits(hm, hw):
            return u, hm, hw
    return None


def marriage(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """结婚登记 (civil affairs): both spouses' registrations; the wife's household moves into
    her husband's (public security)."""
    day = beijing_day(when)

    def fits(hm: Record, hw: Record) -> bool:
        return (
            22 <= age_on(hm["birth_date"], day) <= 60
            and 20 <= age_on(hw["birth_date"], day) <= 55
            and w.current("marriage_registration", hm["id_number"]) is None
            and w.current("marriage_registration", hw["id_number"]) is None
        )

    found = _couple(w, r, fits)
    if found is None:
        return []
    u, hm, hw = found
    office = DISTRICT_OF_STREET[hm["registered_street"]]
    number = f"J{office}-{day.year}-{r.between(1, 99999):06d}"
    moved = with_changes(
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
        return is_married(w.current("marriage_registration", hw["id_number"]))

    found = _couple(w, r, fits)
    if found is None:
        return []
    u, hm, hw = found
    office = DISTRICT_OF_STREET[hm["registered_street"]]
    number = f"L{office}-{day.year}-{r.between(1, 99999):06d}"
    own = with_changes(
        hw, household_number=f"{440100000000 + 2 * u + 1:012d}", relation_to_head="户主"
    )
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
    for _ in range(TRIES):
        i, key = w.person_key(r)
        rec = w.current("household_registration", key)
        if (
            is_alive(rec)
            and rec["relation_to_head"] == "户主"
            and age_on(rec["birth_date"], day) >= 18
        ):
            break
    else:
        return []
    address, street, station = new_address(r, w.city.residence_district(r.next()))
    moved = {"registered_address": address, "registered_street": street, "police_station": station}
    changes = [
        Change("household_registration", i, key, with_changes(rec, **moved), "household_move")
    ]
    spouse = w.city.id_number_of(i ^ 1) if (i ^ 1) < w.city.population else None
    if spouse is not None:
        other = w.current("household_registration", spouse)
        if (
            is_alive(other)
            and other is not None
            and other["household_number"] == rec["household_number"]
        ):
            changes.append(
                Change(
                    "household_registration",
                    i ^ 1,
                    spouse,
                    with_changes(other, **moved),
                    "household_move",
                )
            )
    return changes


def emigration(w: World, r: Rng, when: dt.datetime) -> list[Change]:
    """户口迁出市外: an adult resident's registration moves to another city, so the city's
    household register (public security) no longer holds them: their record is removed
    there. The records other departments keep (insurance, provident fund, property) stay
    with them, as a person who moved their registration may still work or own here."""
    day = beijing_day(when)
    for _ in range(TRIES):
        i, key = w.person_key(r)
        rec = w.current("household_registration", key)
        if is_alive(rec) and age_on(rec["birth_date"], day) >= 18:
            # Published as the generic ``deleted``: the exchange takes a change without
            # the record after it only as a deletion (distribution.records).
            return [Change("household_registration", i, key, None, "deleted")]
    return []
