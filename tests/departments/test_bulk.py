"""The bulk (NumPy) derivation of people agrees with the one-at-a-time definition, and
every topic's export agrees with its single lookups record by record."""

from __future__ import annotations

import numpy as np
import pytest

from exchange.departments import bulk, bulk_enterprises, native
from exchange.departments.city import City
from exchange.departments.prng import Feistel, Rng
from exchange.departments.prng import mix as scalar_mix
from exchange.departments.prng_arrays import (
    distinct,
    feistel_forward,
    feistel_inverse,
    mix,
    splitmix_draws,
)
from exchange.departments.records import GENERATORS, PEOPLE_BLOCK


@pytest.mark.parametrize(
    ("seed", "population", "start", "stop"),
    [
        (2020, 100_000, 0, 1_500),  # the default city's first rows
        (2020, 100_000, 50_001, 51_200),  # starts at a wife: her husband is derived too
        (7, 3_001, 2_400, 3_001),  # odd population: the last man has no wife
        (99, 20_000_000, 19_999_000, 20_000_000),  # a city of Guangzhou's size, its end
        (5, 200_000, 0, 200_000),  # every person of a city, both sexes, all ages
    ],
    ids=["start", "odd-start", "odd-population", "large-city", "whole-city"],
)
def test_people_in_bulk_equal_people_one_at_a_time(
    seed: int, population: int, start: int, stop: int
) -> None:
    city = City(seed, population, 1_000)
    got = bulk.people(city, start, stop)
    step = 1 if stop - start <= 2_000 else 97  # the whole city: every 97th, not 200,000
    for i in range(start, stop, step):
        assert got[i - start] == city.person(i), i
    assert [p.index for p in got] == list(range(start, min(stop, population)))


def test_people_in_bulk_cover_every_branch_of_the_scalar_rules() -> None:
    """Divorces, deaths before marriage, retired district codes, spouse-headed homes:
    the sample above must exercise each rule the bulk code re-implements."""
    city = City(5, 200_000, 1_000)
    got = bulk.people(city, 0, 200_000)
    assert any(p.divorced_on is not None for p in got)
    assert any(p.death_date is not None and p.spouse_index is not None for p in got)
    assert {p.id_area for p in got} >= {"440102", "440107", "440116"}
    assert any(p.relation == "配偶" for p in got)
    assert any(p.birth_date.month == 2 and p.birth_date.day == 29 and p.married_on for p in got)


def test_out_of_range_requests_are_clipped() -> None:
    city = City(1, 10, 5)
    assert bulk.people(city, 8, 50) == [city.person(8), city.person(9)]
    assert bulk.people(city, 10, 20) == []
    assert bulk.people(city, -5, 1) == [city.person(0)]


def test_key_pools_in_bulk_equal_the_scalar_samples() -> None:
    city = City(2020, 100_000, 20_000)
    assert bulk.sample_id_numbers(city, 3_000, 2021) == city.sample_id_numbers(3_000, 2021)
    assert bulk_enterprises.sample_credit_codes(city, 3_000, 2021) == city.sample_credit_codes(
        3_000, 2021
    )


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_topics_export_equals_its_single_lookups(name: str) -> None:
    """The export path (bulk) and the lookup path (one key, scalar) give the same record
    for every key, and rows come in order, across a block boundary."""
    gen = GENERATORS[name]
    city = City(11, 6_000, 700)
    start = PEOPLE_BLOCK - 300 if gen.key_type in ("id_number", "plate_number") else 0
    stop = min(start + 600, gen.rows(city))
    exported = list(gen.export_rows(city, start, stop))
    assert exported, name
    rows = [row for row, _ in exported]
    assert rows == sorted(rows)
    assert all(start <= row < stop for row in rows)
    for _, record in exported:
        assert gen.lookup(city, record[gen.key_field]) == record
    # Paging never changes a record: row by row gives the same as one call.
    one_by_one = [rec for row in range(start, stop) for rec in gen.export(city, row, row + 1)]
    assert one_by_one == [rec for _, rec in exported]


@pytest.mark.parametrize(
    ("seed", "population", "enterprises"),
    [
        (2020, 100_000, 20_000),  # the default city: few candidates, most reps drawn
        (11, 60_000, 700),  # many employees per enterprise: reps found by the scan
        (3, 3_001, 400),
    ],
)
def test_enterprises_in_bulk_equal_enterprises_one_at_a_time(
    seed: int, population: int, enterprises: int
) -> None:
    city = City(seed, population, enterprises)
    got = bulk_enterprises.enterprises(city, 0, 400)
    scalar = City(seed, population, enterprises)  # no cache shared with the bulk path
    assert got == [scalar.enterprise(e) for e in range(400)]
    reps = [e.legal_rep_index for e in got]
    assert any(r is not None for r in reps)
    assert bulk_enterprises.enterprises(city, enterprises - 3, enterprises + 5) == [
        scalar.enterprise(e) for e in range(enterprises - 3, enterprises)
    ]


@pytest.fixture(params=["compiled", "numpy"])
def kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each array function both ways: through the compiled kernels (the built package) and
    in NumPy (an install without a C compiler)."""
    if request.param == "numpy":
        monkeypatch.setattr(native, "KERNELS", None)
    return str(request.param)


@pytest.mark.parametrize("domain", [1, 2, 5, 100_000, 131_073])
def test_the_feistel_arrays_are_the_scalar_permutation_both_ways(domain: int, kernels: str) -> None:
    """Every element, those inside the domain after one pass and those walked again, is
    the scalar :class:`Feistel`'s image (and pre-image); an empty array stays empty."""
    perm = Feistel(0x5EED, domain)
    x = np.arange(min(domain, 5_000), dtype=np.uint64)
    forward = feistel_forward(perm, x)
    assert forward.tolist() == [perm.forward(int(v)) for v in x]
    assert feistel_inverse(perm, forward).tolist() == x.tolist()
    assert feistel_inverse(perm, x).tolist() == [perm.inverse(int(v)) for v in x]
    assert len(feistel_forward(perm, np.zeros(0, dtype=np.uint64))) == 0


def test_the_hash_and_the_draws_over_arrays_are_the_scalar_ones(kernels: str) -> None:
    """``mix`` of ints and arrays (negative ones too, and a part past 64 bits, taken modulo
    2**64 as the scalar code takes them) and every stream's first draws, element by
    element."""
    rng = np.random.default_rng(5)
    a = rng.integers(0, 2**63, 300, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(-(2**40), 2**40, 300, dtype=np.int64)
    got = mix(300, 2020, a, -7, b.astype(np.uint64), 2**70 + 3)
    assert got.tolist() == [
        scalar_mix(2020, int(x), -7, int(y), 2**70 + 3) for x, y in zip(a, b, strict=True)
    ]
    assert len(mix(0, 1, np.zeros(0, dtype=np.uint64))) == 0
    drawn = splitmix_draws(got, 7)
    assert drawn.shape == (7, 300)
    for i in range(0, 300, 37):
        stream = Rng(int(got[i]))
        assert drawn[:, i].tolist() == [stream.next() for _ in range(7)]
    assert splitmix_draws(np.zeros(0, dtype=np.uint64), 3).shape == (3, 0)


@pytest.mark.parametrize(
    ("size", "spread"), [(0, 10), (1, 10), (2, 1), (3_000, 50_000), (5_000, 200), (10_000, 2**62)]
)
def test_distinct_is_numpys_unique(size: int, spread: int) -> None:
    values = np.random.default_rng(size).integers(-spread, spread, size, dtype=np.int64)
    found = distinct(values)
    assert found.dtype == np.int64
    assert np.array_equal(found, np.unique(values))
    assert np.array_equal(distinct(np.sort(values)), found)  # in order already: no sort
    assert np.array_equal(values, np.random.default_rng(size).integers(-spread, spread, size))
