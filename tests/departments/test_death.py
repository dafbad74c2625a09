"""A death in the living city reaches every register that held the person: subsistence
assistance stops, real estate and vehicles pass to a surviving spouse or wait for the
heirs (locked), besides household, cremation, insurance and provident fund."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from exchange.departments.city import City, Rng
from exchange.departments.lifeevents import (
    ASSISTANCE_STOPPED,
    ESTATE_INHERITED,
    VEHICLE_LOCKED,
    Change,
    World,
    died,
)
from exchange.departments.overlay import Overlay, Record

DAY = dt.date(2026, 12, 1)


def _world(city: City) -> World:
    return World(city, Overlay(city, chunk=1000))


def _find(city: City, w: World, wanted: Callable[[int, str], bool]) -> tuple[int, str, Record]:
    """The first living resident for whom ``wanted`` holds (the derived city is fixed)."""
    for i in range(city.population):
        key = city.id_number_of(i)
        rec = w.current("household_registration", key)
        if rec is not None and rec["status"] == "正常" and wanted(i, key):
            return i, key, rec
    raise AssertionError("no such resident in the test city")


def _apply(w: World, changes: list[Change]) -> None:
    for c in changes:
        w.overlay.put(c.generator, c.row, c.key, c.record)


def _married(w: World, key: str) -> bool:
    rec = w.current("marriage_registration", key)
    return rec is not None and rec["registration_type"] == "结婚登记"


def test_a_married_owner_leaves_home_and_car_to_the_spouse(city: City) -> None:
    w = _world(city)

    def wanted(i: int, key: str) -> bool:
        estate = w.current("real_estate", key)
        return (
            _married(w, key)
            and estate is not None
            and estate["co_ownership"] == "共同共有"
            and city.vehicle_count(city.person(i)) > 0
            and (i ^ 1) < city.population
        )

    i, key, rec = _find(city, w, wanted)
    spouse = city.id_number_of(i ^ 1)
    spouse_name = w.current("household_registration", spouse)
    assert spouse_name is not None
    plate = city.plate_of(i, 0)
    changes = died(w, Rng(7), i, key, rec, DAY)
    _apply(w, changes)
    estate = w.current("real_estate", key)
    assert estate is not None
    assert estate["property_count"] == 0
    assert estate["co_ownership"] == ESTATE_INHERITED
    theirs = w.current("real_estate", spouse)
    assert theirs is not None
    assert theirs["co_ownership"] == "单独所有"
    car = w.current("vehicle_registration", plate)
    assert car is not None
    assert car["owner_id_number"] == spouse
    assert car["owner_name"] == spouse_name["name"]
    kinds = {(c.generator, c.key): c.kind for c in changes}
    assert kinds[("vehicle_registration", plate)] == "inheritance"
    assert kinds[("real_estate", key)] == "death"
    # Published under the record's key, so the vehicle topic's subscribers see the plate.
    assert ("vehicle_registration", plate) in kinds


def test_an_owner_without_a_spouse_has_the_cars_locked(city: City) -> None:
    w = _world(city)

    def wanted(i: int, key: str) -> bool:
        return not _married(w, key) and city.vehicle_count(city.person(i)) > 0

    i, key, rec = _find(city, w, wanted)
    plates = [city.plate_of(i, k) for k in range(city.vehicle_count(city.person(i)))]
    _apply(w, died(w, Rng(7), i, key, rec, DAY))
    for plate in plates:
        car = w.current("vehicle_registration", plate)
        assert car is not None
        assert car["status"] == VEHICLE_LOCKED
        assert car["owner_id_number"] == key


def test_subsistence_assistance_stops(city: City) -> None:
    w = _world(city)

    def wanted(_i: int, key: str) -> bool:
        assistance = w.current("social_assistance", key)
        return assistance is not None and assistance["status"] == "在保"

    i, key, rec = _find(city, w, wanted)
    changes = died(w, Rng(7), i, key, rec, DAY)
    _apply(w, changes)
    assistance = w.current("social_assistance", key)
    assert assistance is not None
    assert assistance["status"] == ASSISTANCE_STOPPED
    household = w.current("household_registration", key)
    assert household is not None
    assert household["status"] == "死亡注销"
    assert {c.generator for c in changes} >= {"cremation", "household_registration"}
