"""Record generators at the edges of the city's dates (regressions found under load)."""

from __future__ import annotations

import pytest

from exchange.departments.city import City
from exchange.departments.records import GENERATORS

# People of the default city (seed 2020, 100,000 people) who turned 18 in the last days
# before the reference date: their enrolment and vehicle dates once had an empty range.
CAME_OF_AGE_LATE = ("440103200612198250", "440105200612198536")


@pytest.mark.parametrize("id_number", CAME_OF_AGE_LATE)
def test_every_person_generator_answers_for_people_who_just_came_of_age(id_number: str) -> None:
    city = City(2020, 100_000, 20_000)
    person = city.person_by_id_number(id_number)
    assert person is not None
    assert person.birth_date.isoformat() == "2006-12-19"
    for gen in GENERATORS.values():
        if gen.key_type == "id_number":
            record = gen.lookup(city, id_number)
            assert record is None or record[gen.key_field] == id_number


def test_every_generator_exports_a_small_city_without_error() -> None:
    city = City(7, 3_000, 400)
    for gen in GENERATORS.values():
        records = list(gen.export(city, 0, gen.rows(city)))
        assert all(gen.key_field in r for r in records), gen.name
        assert records, f"{gen.name} produced no records in a city of 3,000"
