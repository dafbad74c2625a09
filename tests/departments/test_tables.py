"""The column-built export (:mod:`exchange.departments.tables`) agrees with the scalar
definition record by record: with the single lookups, with the record-at-a-time export,
byte for byte in NDJSON, and with the living city's changes spliced in."""

from __future__ import annotations

import datetime as dt
import pickle
from collections.abc import AsyncIterator

import httpx
import numpy as np
import orjson
import pytest
from tests.departments.conftest import OPERATOR_KEY, PROVIDER_SECRET
from tests.signing import ExchangeSigned

from exchange.config import Settings
from exchange.departments import bulk, employer_tables, native
from exchange.departments.app import DepartmentsApp, create_departments_app
from exchange.departments.blocks import Block
from exchange.departments.city import City
from exchange.departments.definitions import DepartmentDefinition
from exchange.departments.exporter import build_chunk, build_span, project, project_block
from exchange.departments.faults import FaultProfile
from exchange.departments.lifeevents import KINDS
from exchange.departments.ndjson import Table
from exchange.departments.records import GENERATORS, PEOPLE_BLOCK
from exchange.departments.tables import TABLES

BLOCK = PEOPLE_BLOCK


def _whole(city: City, name: str) -> list[tuple[int, dict[str, object]]]:
    """Every record of a generator's table, built block by block as an export does."""
    out: list[tuple[int, dict[str, object]]] = []
    for start in range(0, GENERATORS[name].rows(city), BLOCK):
        out.extend(TABLES[name](city, start, start + BLOCK).records())
    return out


def test_every_exportable_topic_has_a_table(definitions: dict[str, DepartmentDefinition]) -> None:
    exported = {t.generator for d in definitions.values() for t in d.topics if t.export}
    assert exported <= set(TABLES)


@pytest.mark.parametrize("name", sorted(TABLES))
@pytest.mark.parametrize(
    ("seed", "population", "enterprises"),
    [
        (11, 6_000, 700),  # many employees per firm: legal reps found among them
        (7, 3_001, 400),  # odd population: the last man has no wife
    ],
    ids=["dense", "odd"],
)
@pytest.mark.parametrize("register", [True, False], ids=["register", "derived"])
def test_the_whole_table_equals_the_scalar_export_and_the_lookups(
    name: str,
    seed: int,
    population: int,
    enterprises: int,
    register: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the city's register kept (as an export worker keeps it) and without (a city
    past its cap): the same records."""
    gen = GENERATORS[name]
    city = City(seed, population, enterprises)
    monkeypatch.setattr(bulk, "_kept", None)
    if register:
        assert bulk.keep_register(city) is not None
    assert (bulk.register(city) is not None) is register
    got = _whole(city, name)
    scalar = City(seed, population, enterprises)  # no cache shared with the bulk path
    expected = list(gen.export_rows(scalar, 0, gen.rows(scalar)))
    assert got == expected
    # The same field order too: the NDJSON of an unprojected record follows it.
    assert all(list(a) == list(b) for (_, a), (_, b) in zip(got, expected, strict=True))
    for _, record in got:
        assert gen.lookup(scalar, str(record[gen.key_field])) == record


def test_the_register_is_each_couples_derivation_and_kept_for_one_city(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bulk, "_kept", None)
    city = City(7, 3_001, 400)  # odd: the last couple has no wife
    reg = bulk.keep_register(city)
    assert reg is not None
    assert bulk.register(city) is reg
    assert bulk.keep_register(city) is reg  # made once
    assert bulk.register(City(7, 3_001, 400)) is None  # another city: derived
    unit = np.arange(city.units, dtype=np.int64)
    monkeypatch.setattr(bulk, "_kept", None)
    derived = bulk.couple_slots(city, unit)
    married, divorced, death = bulk.marriages(city, unit, derived)
    monkeypatch.setattr(bulk, "_kept", (city, reg))
    gathered = bulk.couple_slots(city, unit)
    for a, b in zip(gathered, derived, strict=True):
        assert a.dtype == np.int64
        assert np.array_equal(a, b)
    for a, b in zip(bulk.marriages(city, unit, gathered), (married, divorced, death), strict=True):
        assert np.array_equal(a, b)
    assert death[-1, 1] == -1
    assert (married >= 0).any()
    assert (divorced >= 0).any()
    people = np.arange(city.population, dtype=np.int64)
    assert np.array_equal(bulk.jobs(city, people), reg.job)
    assert np.array_equal(bulk.staff(city, reg.job.astype(np.int64)), people)
    monkeypatch.setattr(bulk, "_kept", None)
    assert np.array_equal(bulk.jobs(city, people), reg.job)  # derived: the same slots
    assert np.array_equal(bulk.staff(city, people), reg.staff)
    monkeypatch.setattr(bulk, "_kept", (city, reg))
    day, _, _ = bulk.slots(city, people)
    for person in (0, 1, 1_234, city.population - 1):
        p = city.person(person)
        assert bulk.deaths(city, people[person : person + 1], day[person : person + 1])[0] == (
            -1 if p.death_date is None else p.death_date.toordinal()
        )


def test_a_city_past_the_cap_keeps_no_register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "_kept", None)
    monkeypatch.setattr(bulk, "REGISTER_MAX_PEOPLE", 3_000)
    city = City(7, 3_001, 400)
    assert bulk.keep_register(city) is None
    assert bulk.register(city) is None


@pytest.mark.parametrize("name", sorted(TABLES))
def test_a_slice_of_the_default_city_equals_its_lookups(name: str, city: City) -> None:
    """The default city (100,000 people, 20,000 enterprises), a block from its middle."""
    gen = GENERATORS[name]
    start = 40_001 if gen.key_type in ("id_number", "plate_number") else 9_001
    table = TABLES[name](city, start, start + 700)
    assert len(table) > 0
    assert all(start <= row < start + 700 for row in table.rows)
    fresh = City(city.seed, city.population, city.enterprises)
    for _, record in table.records():
        assert gen.lookup(fresh, str(record[gen.key_field])) == record


@pytest.mark.parametrize("name", sorted(TABLES))
@pytest.mark.parametrize("assembly", ["compiled", "numpy"])
def test_lines_are_the_bytes_a_lookup_serialises(
    name: str, assembly: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The NDJSON is the same whether the compiled kernels derive and assemble it (the
    built package) or NumPy does (one installed without a C compiler)."""
    if assembly == "numpy":
        monkeypatch.setattr(native, "KERNELS", None)
    gen = GENERATORS[name]
    city = City(3, 3_000, 300)
    table = TABLES[name](city, 500, 900)
    some = tuple(reversed(gen.fields[:3]))  # a grant of fewer items, in another order
    for fields in (gen.fields, some):
        lines = table.lines(fields)
        assert len(lines) == len(table)
        for line, (_, record) in zip(lines, table.records(), strict=True):
            looked_up = gen.lookup(city, str(record[gen.key_field]))
            assert looked_up is not None
            assert line == orjson.dumps(project(looked_up, fields)) + b"\n"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_a_span_derived_at_once_is_its_chunks_derived_alone(name: str) -> None:
    """What an export worker derives in one call, cut at the chunks' first rows, is each
    chunk as derived alone (whole records, and cut to a grant's fields); past the city's
    end the chunks are empty."""
    gen = GENERATORS[name]
    city = City(7, 3_001, 400)
    chunk = 300
    start = gen.rows(city) - 2 * chunk - 17  # the span runs off the end of the table
    for fields in (gen.fields, tuple(reversed(gen.fields[:3]))):
        span = build_span(city, name, fields, 0.0, 0, start, 4, chunk)
        alone = [
            build_chunk(city, name, fields, 0.0, 0, at, at + chunk)
            for at in range(start, start + 4 * chunk, chunk)
        ]
        assert span == alone
        assert [b.row_list for b in span] == [b.row_list for b in alone]
        assert [b.lines for b in span] == [b.lines for b in alone]
        assert len(span[-1]) == 0
        assert span[-1].blob == b""
        assert sum(len(block) for block in span) > 0


@pytest.mark.parametrize("name", sorted(TABLES))
def test_ranges_are_clipped_to_the_city(name: str) -> None:
    city = City(7, 3_001, 400)
    gen = GENERATORS[name]
    rows = gen.rows(city)
    assert len(TABLES[name](city, rows, rows + BLOCK)) == 0
    assert len(TABLES[name](city, rows + 5, rows + 9)) == 0
    assert len(TABLES[name](city, 10, 10)) == 0
    tail = TABLES[name](city, rows - 3, rows + 50)
    assert list(tail.records()) == list(gen.export_rows(city, rows - 3, rows))
    odd = TABLES[name](city, 1, 8)  # starts at a wife: her husband is derived too
    assert list(odd.records()) == list(gen.export_rows(city, 1, 8))


# -- with the living city's changes ---------------------------------------------------------


class _Clock:
    def __call__(self) -> dt.datetime:
        return dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def small_living(
    settings: Settings, definitions: dict[str, DepartmentDefinition]
) -> DepartmentsApp:
    clean = {c: d.model_copy(update={"faults": FaultProfile()}) for c, d in definitions.items()}
    return create_departments_app(
        settings, definitions=clean, city=City(11, 6_000, 700), now=_Clock()
    )


@pytest.fixture
async def small_client(small_living: DepartmentsApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=small_living),
        base_url="http://dept.test",
        auth=ExchangeSigned(PROVIDER_SECRET),
    ) as c:
        yield c


@pytest.mark.anyio
async def test_exports_after_changes_equal_the_scalar_city_with_its_overlay(
    small_living: DepartmentsApp,
    small_client: httpx.AsyncClient,
    definitions: dict[str, DepartmentDefinition],
) -> None:
    """Every kind of life event a few times, then every exportable topic's whole export
    (chunks derived as columns, changed rows spliced in) against the scalar city read row
    by row through the overlay (changed rows as changed, the rest derived one by one)."""
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    # One export first, so some chunks are cached before the changes (spliced later).
    hh = "/departments/gaj/topics/household-registration/export"
    assert (await small_client.get(hh, params={"limit": 100_000})).status_code == 200
    for _ in range(3):
        for kind in KINDS:
            resp = await small_client.post(
                f"/departments/_changes/{kind}", headers=operator, auth=None
            )
            assert resp.status_code in (201, 409), resp.text
    overlay = small_living.changes.overlay
    assert overlay.keys > 0
    for code, dept in sorted(definitions.items()):
        for topic in dept.topics:
            if not topic.export:
                continue
            resp = await small_client.get(
                f"/departments/{code}/topics/{topic.slug}/export", params={"limit": 100_000}
            )
            assert resp.status_code == 200
            got = resp.content.splitlines()
            expected = [
                orjson.dumps(project(record, topic.fields))
                for row in range(overlay.rows(topic.generator))
                for record in overlay.row_records(topic.generator, row)
            ]
            assert got == expected, topic.slug


def test_lines_are_orjson_for_every_kind_of_value() -> None:
    """Strings orjson escapes, None among strings and numbers, floats, empty strings,
    a column of None only, CJK text; all fields in the table's order, some in theirs."""
    columns: dict[str, list[object]] = {
        "plain": ["陈大文", "", "x/y", "广州市天河区"],
        "escaped": ['say "hi"', "back\\slash", "tab\there", "ok"],
        "control": ["unit\x1fseparator", "b", "c", "d"],
        "nullable": ["a", None, "b", None],
        "ints": [0, -5, 10**15, 7],
        "floats": [0.0, 1234.5, 0.1 + 0.2, 1e16],
        "mixed": [1, None, 2.5, None],
        "nothing": [None, None, None, None],
        "last": ["end", "结束", "", "z"],
    }
    table = Table([1, 2, 3, 4], columns)
    records = [record for _, record in table.records()]
    assert table.lines(tuple(columns)) == [orjson.dumps(r) + b"\n" for r in records]
    some = ("last", "floats", "escaped")
    assert table.lines(some) == [orjson.dumps({f: r[f] for f in some}) + b"\n" for r in records]
    assert Table([], {"a": []}).lines(("a",)) == []


@pytest.mark.parametrize("name", sorted(TABLES))
def test_a_chunk_cut_to_a_grants_items_in_bulk_is_each_record_cut_alone(name: str) -> None:
    """What an export with ``fields=`` streams (:func:`project_block`, all lines at once)
    is, record by record, the record cut on its own and serialised like a lookup."""
    gen = GENERATORS[name]
    city = City(3, 3_000, 300)
    table = TABLES[name](city, 0, 700)
    block = table.block(gen.fields)
    lines = block.lines
    for fields in (gen.fields[::2], tuple(reversed(gen.fields[1:4])), gen.fields[-1:]):
        projected = project_block(block, fields)
        cut = projected.lines
        expected = [orjson.dumps(project(orjson.loads(ln), fields)) + b"\n" for ln in lines]
        assert cut == expected
        assert projected.blob == b"".join(expected)
        assert projected.row_list == table.rows
        for line, (_, record) in zip(cut, table.records(), strict=True):
            looked_up = gen.lookup(city, str(record[gen.key_field]))
            assert looked_up is not None
            assert line == orjson.dumps(project(looked_up, fields)) + b"\n"


def test_cutting_lines_keeps_every_kind_of_value_and_refuses_a_missing_item() -> None:
    columns: dict[str, list[object]] = {
        "plain": ["陈大文", "", "x/y", "广州市天河区"],
        "escaped": ['say "hi"', "back\\slash", "tab\there", "unit\x1fseparator"],
        "floats": [0.0, 1234.5, 0.1 + 0.2, 1e16],
        "mixed": [1, None, 2.5, -(10**15)],
        "nested": [{"a": [1, 2]}, [], None, "x"],
        "item-name": ["a", "b", "c", "d"],  # not a Python identifier
    }
    table = Table([1, 2, 3, 4], columns)
    block = table.block(tuple(columns))
    records = [record for _, record in table.records()]
    for fields in (("item-name", "floats", "escaped"), ("nested", "mixed"), tuple(columns)):
        cut = project_block(block, fields)
        assert cut.lines == [orjson.dumps({f: r[f] for f in fields}) + b"\n" for r in records]
        assert cut.blob == b"".join(cut.lines)
        assert cut.row_list == [1, 2, 3, 4]
    empty = Block.of_lines([], [])
    assert project_block(empty, ("plain",)) == empty
    # A record without the item: the per-line way, which raises as it always did.
    with pytest.raises(KeyError):
        project_block(block, ("plain", "absent"))


def test_a_block_cuts_out_its_lines_and_the_rows_of_a_page() -> None:
    """A chunk travels as one block and its line ends: the lines, a page's rows from
    inside it and its pieces are cut out of the block as the lines were."""
    rows = [3, 4, 4, 7, 9, 12]  # a row may hold several records (a vehicle each), or none
    lines = [f'{{"n":{i},"text":"第{i}行"}}\n'.encode() for i in range(len(rows))]
    block = Block.of_blob(rows, b"".join(lines))
    assert block.lines == lines
    assert block == Block.of_lines(rows, lines)
    assert block != Block.of_lines(rows[:-1], lines[:-1])
    assert block.between(0, 100) == block.blob
    assert block.between(4, 8) == b"".join(lines[1:4])
    assert block.between(5, 7) == b""
    assert block.between(10, 13) == lines[5]
    parts = block.cut(2, 4, 3)  # rows [2, 5), [5, 8), [8, 11), [11, 14)
    assert [p.row_list for p in parts] == [[3, 4, 4], [7], [9], [12]]
    assert [p.lines for p in parts] == [lines[:3], lines[3:4], lines[4:5], lines[5:]]
    assert b"".join(p.blob for p in parts) == block.blob
    again = pickle.loads(pickle.dumps(block))
    assert again == block
    assert again.lines == lines


def test_money_is_rounded_as_python_rounds_it() -> None:
    """The provident fund's balances are rounded over arrays as ``round(v, 2)`` rounds
    each float: half to even on its exact value, ties that are exact included."""
    rng = np.random.default_rng(5)
    values = np.concatenate(
        [
            rng.uniform(0, 3e6, 20_000),
            # exact binary halves, and decimal halves that are not exact in binary
            np.array([0.125, 0.375, 2.675, 1.005, 1234.565, 0.5, 0.005, 1e6 + 0.125]),
            np.round(rng.uniform(0, 1e5, 2_000), 2) + 0.005,
        ]
    )
    cents = employer_tables._cents(values)
    assert cents.tolist() == [round(round(v, 2) * 100) for v in values.tolist()]
