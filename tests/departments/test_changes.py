"""The living city: rates, determinism, consistency after a change, the feed and its control."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from tests.departments.conftest import PROVIDER_SECRET
from tests.signing import ExchangeSigned

from exchange.config import Settings
from exchange.departments.app import EXPORT_CHUNK, DepartmentsApp, create_departments_app
from exchange.departments.changes import ChangeEngine, ChangeLog, poisson
from exchange.departments.city import City, Rng
from exchange.departments.definitions import DepartmentDefinition, parse_definition
from exchange.departments.faults import FaultProfile
from exchange.departments.lifeevents import KINDS
from exchange.departments.records import GENERATORS
from exchange.documents import ContentError

START = dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC)
HH = "/departments/gaj/topics/household-registration"


class FakeClock:
    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> dt.datetime:
        return self.at


def _engine(
    city: City, definitions: dict[str, DepartmentDefinition], scale: float = 1.0
) -> ChangeEngine:
    return ChangeEngine(city, definitions, start=START, chunk=EXPORT_CHUNK, scale=scale)


# -- rates ------------------------------------------------------------------------------------


def test_poisson_mean_and_spread() -> None:
    r = Rng(7)
    for lam in (0.4, 12.0, 250.0):
        draws = [poisson(lam, r) for _ in range(4000)]
        mean = sum(draws) / len(draws)
        assert abs(mean - lam) < 5 * math.sqrt(lam / len(draws)) + 0.01, (lam, mean)


def test_default_rates_give_a_plausible_year(
    city: City, definitions: dict[str, DepartmentDefinition]
) -> None:
    """A year of the schedule holds each kind's rate x base, within Poisson noise: about 900
    births and 500 deaths a year in a city of 100,000 (9 and 5 per 1,000)."""
    engine = _engine(city, definitions)
    counts: Counter[str] = Counter()
    day = START.date()
    for d in range(365):
        counts.update(e[1] for e in engine._schedule(day + dt.timedelta(days=d)))
    for name, kind in KINDS.items():
        base = city.population if kind.base == "people" else city.enterprises
        expected = kind.rate / 1000 * base * 365 / 365.2425
        assert abs(counts[name] - expected) <= 5 * math.sqrt(expected) + 1, (name, counts[name])
    assert 750 < counts["birth"] < 1050
    assert 380 < counts["death"] < 620


def test_rates_follow_the_definition_and_the_scale(
    city: City, definitions: dict[str, DepartmentDefinition]
) -> None:
    gaj = definitions["gaj"].model_copy(update={"changes": {"birth": 0.0, "death": 20.0}})
    engine = _engine(city, {**definitions, "gaj": gaj}, scale=3.0)
    assert engine.rates["birth"] == 0.0
    assert engine.yearly["birth"] == 0.0
    assert engine.yearly["death"] == pytest.approx(20 / 1000 * city.population * 3)
    # A kind whose department is not served does not run.
    without_swj = {c: d for c, d in definitions.items() if c != "swj"}
    assert "tax_payment" not in _engine(city, without_swj).rates
    # Scale 0: a still city.
    still = _engine(city, definitions, scale=0.0)
    assert still.advance(START + dt.timedelta(days=30)) == 0


def test_definition_refuses_unknown_or_foreign_kinds(
    definitions: dict[str, DepartmentDefinition],
) -> None:
    data = definitions["gaj"].model_dump(mode="json")
    with pytest.raises(ContentError, match=r"changes\.weddings: unknown kind"):
        parse_definition({**data, "changes": {"weddings": 1.0}}, "gaj.yaml")
    with pytest.raises(ContentError, match="registered by mzj, not gaj"):
        parse_definition({**data, "changes": {"marriage": 1.0}}, "gaj.yaml")
    with pytest.raises(ContentError, match=r"changes\.birth"):
        parse_definition({**data, "changes": {"birth": -1}}, "gaj.yaml")
    assert parse_definition({**data, "changes": {"birth": 12.5}}, "gaj.yaml").changes == {
        "birth": 12.5
    }


# -- determinism and bounds -------------------------------------------------------------------


def test_same_seed_same_history(city: City, definitions: dict[str, DepartmentDefinition]) -> None:
    def history() -> list[tuple[str, int, str, str, str]]:
        engine = _engine(city, definitions, scale=2.0)
        engine.advance(START + dt.timedelta(days=1), budget=100_000)
        return [
            (d, e.seq, e.key, e.kind, e.changed_at.isoformat())
            for d in engine.log.departments
            for e in engine.log.after(d, 0, 100_000)
        ]

    first = history()
    assert len(first) > 300
    assert len({kind for *_, kind, _ in first}) > 8
    assert first == history()


def test_budget_spreads_a_clock_jump_over_passes(
    city: City, definitions: dict[str, DepartmentDefinition]
) -> None:
    engine = _engine(city, definitions)
    later = START + dt.timedelta(days=3)
    assert engine.advance(later, budget=50) == 50
    assert engine.backlog(later) > 0
    while engine.advance(later, budget=500):
        pass
    assert engine.backlog(later) == 0
    # Nothing happens twice, nothing after the clock.
    assert engine.advance(later) == 0
    swj = engine.log.after("swj", 0, 100_000)
    assert all(START < e.changed_at <= later for e in swj)
    assert [e.changed_at for e in swj] == sorted(e.changed_at for e in swj)


def test_full_overlay_pauses_the_city(
    city: City, definitions: dict[str, DepartmentDefinition]
) -> None:
    engine = ChangeEngine(
        city, definitions, start=START, chunk=EXPORT_CHUNK, scale=10.0, max_keys=20
    )
    engine.advance(START + dt.timedelta(days=5), budget=10_000)
    assert engine.overlay.keys >= 20
    assert engine.paused is not None
    assert "city_change_max_keys" in engine.paused
    keys = engine.overlay.keys
    assert engine.advance(START + dt.timedelta(days=6)) == 0
    assert engine.overlay.keys == keys


def test_log_keeps_unpublished_events() -> None:
    log = ChangeLog(["gaj"], retain=3)
    for i in range(5):
        log.append("gaj", "t", str(i), "updated", START, None)
    assert log.oldest("gaj") == 3  # only the latest three are kept
    log.pin()
    for i in range(5, 10):
        log.append("gaj", "t", str(i), "updated", START, None)
    # Pinned: the five unacknowledged events stay although only three are retained.
    assert log.oldest("gaj") == 6
    assert log.backlog("gaj") == 5
    log.ack("gaj", 9)
    log.append("gaj", "t", "10", "updated", START, None)
    assert log.oldest("gaj") == 9
    assert [e.seq for e in log.after("gaj", 8, 10)] == [9, 10, 11]


# -- consistency through the department API -----------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def living(
    settings: Settings,
    definitions: dict[str, DepartmentDefinition],
    city: City,
    clock: FakeClock,
) -> DepartmentsApp:
    # No injected latency or errors: these tests are about the records.
    clean = {c: d.model_copy(update={"faults": FaultProfile()}) for c, d in definitions.items()}
    return create_departments_app(settings, definitions=clean, city=city, now=clock)


@pytest.fixture
async def lclient(living: DepartmentsApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=living),
        base_url="http://dept.test",
        auth=ExchangeSigned(PROVIDER_SECRET),
    ) as c:
        yield c


async def _trigger(
    client: httpx.AsyncClient, operator: dict[str, str], kind: str
) -> list[dict[str, Any]]:
    resp = await client.post(f"/departments/_changes/{kind}", headers=operator, auth=None)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["kind"] == kind
    return list(body["events"])


@pytest.mark.anyio
async def test_a_birth_is_what_lookups_and_exports_answer(
    lclient: httpx.AsyncClient, operator: dict[str, str], city: City
) -> None:
    events = await _trigger(lclient, operator, "birth")
    by_topic = {e["topic"]: e for e in events}
    assert set(by_topic) == {"household-registration", "birth-medical-certificates"}
    hh = by_topic["household-registration"]
    child = hh["key"]
    assert hh["kind"] == "birth"
    assert hh["department"] == "gaj"
    assert hh["changed_at"] == START.isoformat()
    assert child[6:14] == "20261201"  # born on the platform's (Beijing) day
    # The record as the topic serves it: exactly its items.
    assert set(hh["record"]) == set(GENERATORS["household_registration"].fields)
    resp = await lclient.get(f"{HH}/records/{child}")
    assert resp.status_code == 200
    assert resp.json() == hh["record"]
    cert = await lclient.get(f"/departments/wjw/topics/birth-medical-certificates/records/{child}")
    assert (
        cert.json()["mother_id_number"]
        == by_topic["birth-medical-certificates"]["record"]["mother_id_number"]
    )
    mother = cert.json()["mother_id_number"]
    mrec = (await lclient.get(f"{HH}/records/{mother}")).json()
    assert hh["record"]["household_number"] == mrec["household_number"]
    # The export pages over one more row, and the newborn is in it.
    tail = await lclient.get(f"{HH}/export", params={"offset": city.population, "limit": 10})
    assert tail.headers["x-total-rows"] == str(city.population + 1)
    assert [orjson.loads(x) for x in tail.content.splitlines()] == [hh["record"]]
    batch = await lclient.post(f"{HH}/query", json={"keys": [child]})
    assert batch.json()["records"] == [hh["record"]]


@pytest.mark.anyio
async def test_a_death_changes_every_department_that_holds_the_person(
    lclient: httpx.AsyncClient, operator: dict[str, str], living: DepartmentsApp, city: City
) -> None:
    events = await _trigger(lclient, operator, "death")
    key = events[0]["key"]
    assert {e["key"] for e in events} == {key}
    topics = {e["topic"]: e for e in events}
    assert topics["household-registration"]["record"]["status"] == "死亡注销"
    assert topics["cremation-records"]["kind"] == "cremation"
    hh = (await lclient.get(f"{HH}/records/{key}")).json()
    assert hh["status"] == "死亡注销"
    cremation = await lclient.get(f"/departments/mzj/topics/cremation-records/records/{key}")
    assert cremation.status_code == 200
    assert cremation.json() == topics["cremation-records"]["record"]
    if "medical-insurance-enrolment" in topics:
        med = await lclient.get(
            f"/departments/ybj/topics/medical-insurance-enrolment/records/{key}"
        )
        assert med.json()["status"] == "终止参保"
    # The export of the chunk holding that person shows the change, once, in row order.
    index = city.index_of_id_number(key)
    assert index is not None
    start = index - index % EXPORT_CHUNK
    page = await lclient.get(f"{HH}/export", params={"offset": start, "limit": EXPORT_CHUNK})
    rows = [orjson.loads(x) for x in page.content.splitlines()]
    mine = [r for r in rows if r["id_number"] == key]
    assert mine == [hh]
    assert rows.index(hh) == index - start
    # A second read of the same chunk (now cached) splices again.
    again = await lclient.get(f"{HH}/export", params={"offset": start, "limit": EXPORT_CHUNK})
    assert again.content == page.content
    # Cut to a few fields (a grant's items, as the exchange asks), the change is cut alike.
    cut = await lclient.get(
        f"{HH}/export",
        params={"offset": start, "limit": EXPORT_CHUNK, "fields": "status,id_number"},
    )
    assert cut.content.splitlines() == [
        orjson.dumps({"id_number": r["id_number"], "status": r["status"]}) for r in rows
    ]


@pytest.mark.anyio
async def test_marriage_and_divorce_keep_both_sides_consistent(
    lclient: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    events = await _trigger(lclient, operator, "marriage")
    marriage = [e for e in events if e["topic"] == "marriage-registration"]
    assert len(marriage) == 2
    man, woman = marriage[0]["record"], marriage[1]["record"]
    assert man["certificate_number"] == woman["certificate_number"]
    assert man["woman_id_number"] == woman["id_number"]
    wife = (await lclient.get(f"{HH}/records/{woman['id_number']}")).json()
    husband = (await lclient.get(f"{HH}/records/{man['id_number']}")).json()
    assert wife["household_number"] == husband["household_number"]
    assert wife["relation_to_head"] == "配偶"
    path = "/departments/mzj/topics/marriage-registration/records/"
    assert (await lclient.get(path + woman["id_number"])).json() == woman


@pytest.mark.anyio
async def test_enterprise_registration_is_served_everywhere(
    lclient: httpx.AsyncClient, operator: dict[str, str], city: City
) -> None:
    events = await _trigger(lclient, operator, "enterprise_registration")
    topics = {e["topic"]: e for e in events}
    code = topics["enterprise-registration"]["key"]
    assert city.index_of_credit_code(code) is None  # a new entity, not a derived one
    for path in (
        "/departments/scjgj/topics/enterprise-registration",
        "/departments/swj/topics/tax-registration",
        "/departments/zsj/topics/credit-publicity",
    ):
        resp = await lclient.get(f"{path}/records/{code}")
        assert resp.status_code == 200, path
        assert resp.json()["credit_code"] == code
    licence = topics["e-licences"]["key"]
    resp = await lclient.get(f"/departments/zsj/topics/e-licences/records/{licence}")
    assert resp.json()["holder_credit_code"] == code
    tail = await lclient.get(
        "/departments/scjgj/topics/enterprise-registration/export",
        params={"offset": city.enterprises, "limit": 5},
    )
    assert tail.headers["x-total-rows"] == str(city.enterprises + 1)
    assert [orjson.loads(x)["credit_code"] for x in tail.content.splitlines()] == [code]


# -- feed and control -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_feed_pages_from_a_cursor(
    lclient: httpx.AsyncClient, living: DepartmentsApp, clock: FakeClock
) -> None:
    clock.at = START + dt.timedelta(days=2)
    while living.changes.advance(clock.at, budget=1_000):
        pass
    last = living.changes.log.last("swj")
    assert last > 10
    first = (await lclient.get("/departments/swj/changes", params={"limit": 5})).json()
    assert [e["seq"] for e in first["events"]] == [1, 2, 3, 4, 5]
    assert first["next"] == 5
    assert first["last"] == last
    rest = (
        await lclient.get("/departments/swj/changes", params={"after": 5, "limit": 1000})
    ).json()
    assert rest["events"][0]["seq"] == 6
    assert rest["next"] == last
    event = rest["events"][0]
    assert set(event) == {"seq", "department", "topic", "key", "kind", "changed_at", "record"}
    assert dt.datetime.fromisoformat(event["changed_at"]).tzinfo is not None
    # Only the exchange reads a department's changes.
    unsigned = await lclient.get("/departments/swj/changes", auth=None)
    assert unsigned.status_code == 401


@pytest.mark.anyio
async def test_feed_cursor_older_than_the_log_is_410(
    settings: Settings, definitions: dict[str, DepartmentDefinition], city: City, clock: FakeClock
) -> None:
    small = settings.model_copy(update={"city_change_log": 5})
    app = create_departments_app(small, definitions=definitions, city=city, now=clock)
    app.changes.advance(START + dt.timedelta(days=2), budget=1_000)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://dept.test",
        auth=ExchangeSigned(PROVIDER_SECRET),
    ) as c:
        resp = await c.get("/departments/swj/changes", params={"after": 0})
        assert resp.status_code == 410
        oldest = resp.json()["error"]["detail"]["oldest"]
        ok = await c.get("/departments/swj/changes", params={"after": oldest - 1})
        assert ok.json()["events"][0]["seq"] == oldest


@pytest.mark.anyio
async def test_change_control_needs_the_operator(
    lclient: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    assert (await lclient.post("/departments/_changes/birth", auth=None)).status_code == 401
    unknown = await lclient.post("/departments/_changes/weddings", headers=operator, auth=None)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "change_kind_not_found"
    wrong = await lclient.get("/departments/_changes/birth", headers=operator, auth=None)
    assert wrong.status_code == 405
    status = (await lclient.get("/departments/_changes", headers=operator, auth=None)).json()
    assert status["kinds"]["birth"]["owner"] == "gaj"
    assert status["kinds"]["birth"]["rate_per_1000_per_year"] == 9.0


@pytest.mark.anyio
async def test_the_city_changes_on_the_clock_once_started(
    living: DepartmentsApp, clock: FakeClock
) -> None:
    await living.start()
    try:
        assert living.changes.log.last("swj") == 0
        clock.at = START + dt.timedelta(days=1)
        deadline = asyncio.get_running_loop().time() + 30
        while living.changes.log.last("swj") == 0:
            assert asyncio.get_running_loop().time() < deadline, "no change within 30 s"
            await asyncio.sleep(0.05)
    finally:
        await living.stop()
    assert living.changes.status(clock.at)["kinds"]["tax_payment"]["applied"] > 0
