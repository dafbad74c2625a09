"""The synthetic city: determinism, bijective keys, and consistency across departments."""

from __future__ import annotations

import time
from collections import Counter

from exchange.departments.city import City
from exchange.departments.records import GENERATORS, licence_numbers_of


def _rec(city: City, generator: str, key: str) -> dict[str, object] | None:
    return GENERATORS[generator].lookup(city, key)


def test_construction_is_instant_even_for_twenty_million() -> None:
    started = time.perf_counter()
    big = City(seed=1, population=20_000_000, enterprises=2_000_000)
    assert time.perf_counter() - started < 0.05
    last = big.person(19_999_999)
    assert big.person_by_id_number(last.id_number) == last
    assert big.index_of_id_number(big.id_number_of(12_345_678)) == 12_345_678


def test_same_seed_same_city_other_seed_other_city(city: City) -> None:
    again = City(seed=2020, population=100_000, enterprises=20_000)
    other = City(seed=2021, population=100_000, enterprises=20_000)
    for i in (0, 1, 777, 99_999):
        assert again.person(i) == city.person(i)
    assert [other.id_number_of(i) for i in range(5)] != [city.id_number_of(i) for i in range(5)]
    assert again.enterprise(42) == city.enterprise(42)


def test_index_and_id_number_are_a_bijection(city: City) -> None:
    numbers = [city.id_number_of(i) for i in range(5000)]
    assert len(set(numbers)) == len(numbers)
    assert all(city.index_of_id_number(n) == i for i, n in enumerate(numbers))


def test_well_formed_id_outside_the_city_is_absent(city: City) -> None:
    assert city.person_by_id_number("11010519491231002X") is None
    assert city.person_by_id_number("440524188001010014") is None
    assert city.enterprise_by_credit_code("91110108551385082Q") is None


def test_samples_exist_and_are_distinct(city: City) -> None:
    keys = city.sample_id_numbers(500, seed=9)
    assert len(set(keys)) == 500
    assert all(city.person_by_id_number(k) is not None for k in keys)
    codes = city.sample_credit_codes(500, seed=9)
    assert all(city.enterprise_by_credit_code(c) is not None for c in codes)


def test_surnames_follow_a_guangdong_distribution(city: City) -> None:
    counts = Counter(city.person(i).name[0] for i in range(6000))
    top = [s for s, _ in counts.most_common(3)]
    assert top[0] == "陈"
    assert {"李", "黄"} & set(top)
    assert len(counts) > 60


def test_a_person_is_the_same_person_in_every_department(city: City) -> None:
    checked = Counter[str]()
    for i in city.sample_indices(1500, seed=5):
        p = city.person(i)
        hh = _rec(city, "household_registration", p.id_number)
        assert hh is not None
        assert (hh["name"], hh["sex"], hh["birth_date"]) == (
            p.name,
            p.sex,
            p.birth_date.isoformat(),
        )
        for gen in (
            "marriage_registration",
            "social_insurance_enrolment",
            "provident_fund",
            "real_estate",
            "social_insurance_payments",
            "medical_insurance",
        ):
            rec = _rec(city, gen, p.id_number)
            if rec is not None:
                assert (rec["id_number"], rec["name"]) == (p.id_number, p.name), gen
                checked[gen] += 1
        birth = _rec(city, "birth_certificate", p.id_number)
        if birth is not None:
            assert (birth["child_name"], birth["sex"], birth["birth_date"]) == (
                hh["name"],
                hh["sex"],
                hh["birth_date"],
            )
            checked["birth"] += 1
        for k in range(city.vehicle_count(p)):
            car = _rec(city, "vehicle_registration", city.plate_of(i, k))
            assert car is not None
            assert (car["owner_name"], car["owner_id_number"]) == (p.name, p.id_number)
            checked["vehicle"] += 1
    # The sample must actually exercise every department, not vacuously pass.
    assert min(checked.values()) > 20, checked
    assert len(checked) == 8


def test_spouses_agree_and_have_plausible_ages(city: City) -> None:
    couples = 0
    for u in range(2000):
        husband = city.person(2 * u)
        if husband.spouse_index is None:
            continue
        wife = city.person(husband.spouse_index)
        couples += 1
        assert wife.spouse_index == husband.index
        assert wife.sex == "女"
        assert husband.sex == "男"
        assert wife.married_on == husband.married_on
        assert husband.married_on is not None
        assert husband.age_on(husband.married_on) >= 22
        assert wife.age_on(wife.married_on) >= 20
        m1 = _rec(city, "marriage_registration", husband.id_number)
        m2 = _rec(city, "marriage_registration", wife.id_number)
        assert m1 is not None
        assert m2 is not None
        assert m1["certificate_number"] == m2["certificate_number"]
        assert (m1["man_id_number"], m1["woman_id_number"]) == (husband.id_number, wife.id_number)
        assert m1["woman_name"] == wife.name
        if husband.divorced_on is None and husband.alive:
            assert wife.household_number == husband.household_number
            assert wife.address == husband.address
    assert couples > 800


def test_enterprises_have_real_legal_representatives_and_employees(city: City) -> None:
    with_staff = 0
    for e in city.sample_enterprise_indices(400, seed=2):
        ent = city.enterprise(e)
        assert ent.legal_rep_index is not None
        rep = city.person(ent.legal_rep_index)
        assert (rep.name, rep.id_number) == (ent.legal_rep_name, ent.legal_rep_id_number)
        assert rep.age >= 22
        staff = city.employees_of(e)
        for i in staff:
            enrolment = _rec(city, "social_insurance_enrolment", city.id_number_of(i))
            assert enrolment is not None
            assert enrolment["employer_credit_code"] == ent.credit_code
            assert enrolment["employer_name"] == ent.name
        with_staff += bool(staff)
    assert with_staff > 100


def test_employee_enrolment_points_back_to_the_employer(city: City) -> None:
    for i in city.sample_indices(800, seed=4):
        e = city.employer_of(city.person(i))
        if e is not None:
            assert i in city.employees_of(e, limit=10_000)


def test_licences_and_credit_records_belong_to_real_enterprises(city: City) -> None:
    for e in city.sample_enterprise_indices(200, seed=8):
        ent = city.enterprise(e)
        numbers = licence_numbers_of(city, e)
        assert numbers
        assert numbers[0].startswith("YZ")
        for number in numbers:
            lic = _rec(city, "e_licence", number)
            assert lic is not None
            assert (lic["holder_credit_code"], lic["holder_name"]) == (ent.credit_code, ent.name)
        credit = _rec(city, "credit_publicity", ent.credit_code)
        assert credit is not None
        assert credit["name"] == ent.name
        tax = _rec(city, "tax_registration", ent.credit_code)
        assert tax is not None
        assert tax["taxpayer_name"] == ent.name


def test_assistance_recipients_own_nothing_and_the_dead_are_deregistered(city: City) -> None:
    recipients = deaths = 0
    for i in range(30_000):
        p = city.person(i)
        if p.death_date is not None:
            deaths += 1
            hh = _rec(city, "household_registration", p.id_number)
            assert hh is not None
            assert hh["status"] == "死亡注销"
            assert _rec(city, "cremation", p.id_number) is not None
            assert _rec(city, "social_insurance_enrolment", p.id_number) is None
        if _rec(city, "social_assistance", p.id_number) is not None:
            recipients += 1
            assert _rec(city, "real_estate", p.id_number) is None
            assert _rec(city, "social_insurance_enrolment", p.id_number) is None
            assert city.vehicle_count(p) == 0
    assert recipients > 10
    assert deaths > 100
