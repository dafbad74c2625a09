"""Identifier maths against the standards' test vectors, and every generated identifier."""

from __future__ import annotations

import pytest

from exchange import ids
from exchange.departments.city import City
from exchange.departments.records import GENERATORS, key_problem, licence_numbers_of, vin_with_check

ID_VECTORS = ["11010519491231002X", "440524188001010014"]
CREDIT_VECTOR = "91110108551385082Q"


@pytest.mark.parametrize("value", ID_VECTORS)
def test_id_vectors_are_valid(value: str) -> None:
    assert ids.id_number_problem(value) is None
    assert ids.id_check_char(value[:17]) == value[17]


def test_credit_vector_is_valid() -> None:
    assert ids.credit_code_problem(CREDIT_VECTOR) is None
    assert ids.credit_check_char(CREDIT_VECTOR[:17]) == "Q"
    assert ids.org_code_problem(CREDIT_VECTOR[8:17]) is None


def _corruptions(value: str, alphabet: str) -> list[str]:
    out = []
    for i, c in enumerate(value):
        for r in alphabet:
            if r != c:
                out.append(value[:i] + r + value[i + 1 :])
    return out


@pytest.mark.parametrize("value", ID_VECTORS)
def test_every_single_character_change_of_an_id_is_rejected(value: str) -> None:
    rejected = 0
    for bad in _corruptions(value, "0123456789X"):
        # A change may land on another valid ID only if the check char changes with it.
        if ids.id_number_problem(bad) is None:
            pytest.fail(f"{bad} accepted")
        rejected += 1
    assert rejected == 18 * 10


def test_every_single_character_change_of_a_credit_code_is_rejected() -> None:
    for bad in _corruptions(CREDIT_VECTOR, ids.CREDIT_ALPHABET):
        assert ids.credit_code_problem(bad) is not None, bad


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("44010619900230001X", "not a real birth date"),
        ("440106199013010011", "not a real birth date"),
        ("11010519491231002x", "upper case"),
        ("1101051949123100", "18 characters"),
        ("11010519491231002A", "digit or X"),
        ("11010519491231003X", "check character"),
    ],
)
def test_malformed_ids_say_why(value: str, reason: str) -> None:
    problem = ids.id_number_problem(value)
    assert problem is not None
    assert reason in problem


def test_generated_ids_in_two_city_sizes_are_valid_and_guangzhou(city: City) -> None:
    allowed = set(ids.CURRENT_AREAS) | set(ids.RETIRED_AREAS)
    big = City(2020, 20_000_000, 1_000_000)
    for c in (city, big):
        for i in c.sample_indices(3000, seed=7):
            p = c.person(i)
            assert ids.id_number_problem(p.id_number) is None, p.id_number
            assert p.id_number[:6] in allowed
            assert p.id_number[6:14] == f"{p.birth_date:%Y%m%d}"
            assert int(p.id_number[16]) % 2 == (1 if p.sex == "男" else 0)


def test_some_older_residents_carry_retired_area_codes(city: City) -> None:
    codes = {city.id_number_of(i)[:6] for i in range(20_000)}
    assert set(ids.RETIRED_AREAS) <= codes
    for i in range(20_000):
        number = city.id_number_of(i)
        if number[:6] in ("440102", "440107"):
            assert number[6:10] < "2005"


def test_generated_credit_codes_and_org_codes_are_valid(city: City) -> None:
    for code in city.sample_credit_codes(3000, seed=3):
        assert ids.credit_code_problem(code) is None, code
        assert ids.org_code_problem(code[8:17]) is None
        assert code[:2] in ("91", "92")
        assert code[2:6] == "4401"


def test_generated_plates_licences_and_vins_are_valid(city: City) -> None:
    vehicles = GENERATORS["vehicle_registration"]
    seen = 0
    for rec in vehicles.export(city, 0, 3000):
        assert key_problem("plate_number", rec["plate_number"]) is None
        assert vin_with_check(rec["vin"]) == rec["vin"]
        seen += 1
    assert seen > 500
    for e in city.sample_enterprise_indices(500, seed=1):
        for number in licence_numbers_of(city, e):
            assert key_problem("licence_number", number) is None, number


def test_luhn_rejects_a_changed_digit() -> None:
    number = "YZ" + "123456789012" + ids.luhn_digit("123456789012")
    assert key_problem("licence_number", number) is None
    bad = number[:5] + str((int(number[5]) + 1) % 10) + number[6:]
    assert key_problem("licence_number", bad) is not None
