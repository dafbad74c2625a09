"""The department HTTP API: lookups, batches, export, errors, fault injection."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from tests.departments.conftest import PROVIDER_SECRET
from tests.polling import until
from tests.signing import ExchangeSigned

from exchange.config import Settings
from exchange.departments import bulk, exporter
from exchange.departments.answers import OVERSHARE_FIELD
from exchange.departments.app import DepartmentsApp, create_departments_app
from exchange.departments.blocks import Block
from exchange.departments.chunks import EXPORT_CHUNK
from exchange.departments.city import City
from exchange.departments.definitions import DepartmentDefinition
from exchange.departments.exporter import SPAN_CHUNKS
from exchange.departments.faults import FaultProfile
from exchange.departments.records import licence_numbers_of

pytestmark = pytest.mark.anyio

HH = "/departments/gaj/topics/household-registration"
ENT = "/departments/scjgj/topics/enterprise-registration"


def _assert_error(resp: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert err["code"] == code
    assert err["message"]
    assert err["request_id"] == resp.headers["x-request-id"]
    return dict(err)


async def test_single_lookup_returns_all_fields(client: httpx.AsyncClient, city: City) -> None:
    p = city.person(10)
    resp = await client.get(f"{HH}/records/{p.id_number}")
    assert resp.status_code == 200
    rec = resp.json()
    assert rec["id_number"] == p.id_number
    assert rec["name"] == p.name
    assert len(rec) == 12


async def test_request_id_is_echoed(client: httpx.AsyncClient, city: City) -> None:
    resp = await client.get(
        f"{HH}/records/{city.id_number_of(3)}", headers={"X-Request-Id": "trace-1"}
    )
    assert resp.headers["x-request-id"] == "trace-1"


@pytest.mark.parametrize("key", ["11010519491231002X", "440524188001010014"])
async def test_well_formed_id_not_in_city_is_404(client: httpx.AsyncClient, key: str) -> None:
    err = _assert_error(await client.get(f"{HH}/records/{key}"), 404, "record_not_found")
    assert err["detail"] == {"key": key, "topic": "household-registration"}


async def test_person_without_such_record_is_404(client: httpx.AsyncClient, city: City) -> None:
    child = next(i for i in range(100) if city.person(i).age < 18)
    resp = await client.get(
        f"/departments/rsj/topics/social-insurance-enrolment/records/{city.id_number_of(child)}"
    )
    _assert_error(resp, 404, "record_not_found")


@pytest.mark.parametrize(
    "key", ["11010519491231003X", "44010619900230001X", "4401", "11010519491231002x"]
)
async def test_malformed_id_is_422(client: httpx.AsyncClient, key: str) -> None:
    err = _assert_error(await client.get(f"{HH}/records/{key}"), 422, "invalid_id_number")
    assert err["detail"]["field"] == "id_number"  # type: ignore[index]


async def test_credit_codes_404_and_422(client: httpx.AsyncClient, city: City) -> None:
    _assert_error(await client.get(f"{ENT}/records/91110108551385082Q"), 404, "record_not_found")
    _assert_error(await client.get(f"{ENT}/records/91110108551385082R"), 422, "invalid_credit_code")
    code = city.credit_code_of(5)
    resp = await client.get(f"{ENT}/records/{code}")
    assert resp.status_code == 200
    assert resp.json()["credit_code"] == code


async def test_plates_and_licences(client: httpx.AsyncClient, city: City) -> None:
    owner = next(i for i in range(200) if city.vehicle_count(city.person(i)))
    plate = city.plate_of(owner, 0)
    resp = await client.get(f"/departments/gaj/topics/vehicle-registration/records/{plate}")
    assert resp.status_code == 200
    assert resp.json()["owner_id_number"] == city.id_number_of(owner)
    _assert_error(
        await client.get("/departments/gaj/topics/vehicle-registration/records/ABC"),
        422,
        "invalid_plate_number",
    )
    number = licence_numbers_of(city, 0)[0]
    resp = await client.get(f"/departments/zsj/topics/e-licences/records/{number}")
    assert resp.json()["holder_credit_code"] == city.credit_code_of(0)
    bad = number[:-1] + str((int(number[-1]) + 1) % 10)
    _assert_error(
        await client.get(f"/departments/zsj/topics/e-licences/records/{bad}"),
        422,
        "invalid_licence_number",
    )


async def test_batch_query(client: httpx.AsyncClient, city: City) -> None:
    keys = city.sample_id_numbers(998, seed=1)
    resp = await client.post(f"{HH}/query", json={"keys": [*keys, "11010519491231002X", "123"]})
    assert resp.status_code == 200
    body = resp.json()
    assert [r["id_number"] for r in body["records"]] == keys
    assert body["not_found"] == ["11010519491231002X"]
    assert body["invalid"][0]["key"] == "123"
    assert body["invalid"][0]["code"] == "invalid_id_number"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"not json", 400, "invalid_json"),
        (b'{"keys": "abc"}', 422, "validation_failed"),
        (b'{"keys": []}', 422, "batch_size"),
        (orjson.dumps({"keys": ["x"] * 1001}), 422, "batch_size"),
        (b"[1, 2]", 422, "validation_failed"),
    ],
)
async def test_bad_batches_are_refused(
    client: httpx.AsyncClient, payload: bytes, status: int, code: str
) -> None:
    _assert_error(await client.post(f"{HH}/query", content=payload), status, code)


async def test_export_streams_ndjson_in_pages(client: httpx.AsyncClient, city: City) -> None:
    resp = await client.get(f"{HH}/export", params={"offset": 3000, "limit": 5000})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/x-ndjson"
    assert resp.headers["x-total-rows"] == str(city.population)
    assert resp.headers["x-next-offset"] == "8000"
    lines = resp.content.splitlines()
    assert len(lines) == 5000
    first, last = orjson.loads(lines[0]), orjson.loads(lines[-1])
    assert first["id_number"] == city.id_number_of(3000)
    assert last["id_number"] == city.id_number_of(7999)
    again = await client.get(f"{HH}/export", params={"offset": 3000, "limit": 5000})
    assert again.content == resp.content


async def test_export_cut_to_the_fields_asked_for(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    """``fields`` (what the exchange asks for: a grant's items) cuts each record to the
    topic's fields among those, in the topic's order, byte for byte what the whole record
    projected serialises, from a cold chunk and from a cached one."""
    page = {"offset": 6000, "limit": 3000}
    asked = {**page, "fields": "sex,name,id_number,no_such_field"}
    cold = await client.get(f"{HH}/export", params=asked)
    whole = await client.get(f"{HH}/export", params=page)
    warm = await client.get(f"{HH}/export", params=asked)
    assert cold.status_code == whole.status_code == 200
    assert cold.headers["x-next-offset"] == whole.headers["x-next-offset"] == "9000"
    records = [orjson.loads(x) for x in whole.content.splitlines()]
    expected = [orjson.dumps({f: r[f] for f in ("id_number", "name", "sex")}) for r in records]
    assert cold.content.splitlines() == expected
    assert warm.content == cold.content
    # Every field named, in any order: the whole records.
    every = ",".join(reversed(list(records[0])))
    assert (await client.get(f"{HH}/export", params={**page, "fields": every})).content == (
        whole.content
    )
    # Noise changes the records: the cut follows the noisy records, not a stale cut.
    await client.put(f"{FAULTS}/household-registration", json={"noise_rate": 0.5}, headers=operator)
    noisy = [
        orjson.loads(x)
        for x in (await client.get(f"{HH}/export", params=page)).content.splitlines()
    ]
    assert noisy != records
    cut = await client.get(f"{HH}/export", params=asked)
    assert [orjson.loads(x) for x in cut.content.splitlines()] == [
        {f: r[f] for f in ("id_number", "name", "sex")} for r in noisy
    ]
    _assert_error(
        await client.get(f"{HH}/export", params={"fields": "x" * 5000}), 422, "validation_failed"
    )


async def test_export_of_a_sparse_topic_and_refusals(client: httpx.AsyncClient) -> None:
    resp = await client.get("/departments/mzj/topics/marriage-registration/export?limit=100")
    rows = [orjson.loads(x) for x in resp.content.splitlines()]
    assert 20 < len(rows) < 100
    assert resp.headers["x-next-offset"] == "100"
    _assert_error(
        await client.get("/departments/mzj/topics/cremation-records/export"),
        404,
        "export_not_offered",
    )
    _assert_error(await client.get(f"{HH}/export?limit=0"), 422, "validation_failed")
    _assert_error(await client.get(f"{HH}/export?offset=x"), 422, "validation_failed")


async def test_summary_and_routing_errors(client: httpx.AsyncClient) -> None:
    resp = await client.get("/departments/gaj")
    body = resp.json()
    assert body["name"] == "广州市公安局"
    assert body["topics"][0]["api_path"] == "/topics/household-registration"
    listing = (await client.get("/departments")).json()
    assert {d["code"] for d in listing["departments"]} >= {"gaj", "zsj"}
    _assert_error(await client.get("/departments/nope"), 404, "department_not_found")
    _assert_error(
        await client.get("/departments/gaj/topics/nope/records/1"), 404, "topic_not_found"
    )
    _assert_error(await client.get("/elsewhere"), 404, "route_not_found")
    _assert_error(await client.post(f"{HH}/records/1"), 405, "method_not_allowed")


async def test_mounted_under_another_app(app: DepartmentsApp, city: City) -> None:
    from fastapi import FastAPI

    outer = FastAPI()
    outer.mount("/", app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=outer),
        base_url="http://x",
        auth=ExchangeSigned(PROVIDER_SECRET),
    ) as c:
        resp = await c.get(f"{HH}/records/{city.id_number_of(1)}")
    assert resp.status_code == 200


# -- faults ------------------------------------------------------------------------------

FAULTS = "/departments/_faults/gaj"


async def test_fault_control_needs_the_operator_key(client: httpx.AsyncClient) -> None:
    _assert_error(await client.get(FAULTS), 401, "not_authenticated")
    _assert_error(
        await client.put(FAULTS, json={}, headers={"Authorization": "Bearer wrong"}),
        401,
        "not_authenticated",
    )


async def test_fault_bodies_are_validated(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    err = _assert_error(
        await client.put(FAULTS, json={"error_rate": 3}, headers=operator),
        422,
        "validation_failed",
    )
    assert err["detail"] == {"field": "error_rate"}
    _assert_error(
        await client.put(FAULTS, json={"hang_seconds": 3600}, headers=operator),
        422,
        "validation_failed",
    )


async def test_outage_then_reset(
    client: httpx.AsyncClient, operator: dict[str, str], city: City
) -> None:
    key = city.id_number_of(1)
    resp = await client.put(FAULTS, json={"outage": True}, headers=operator)
    assert resp.json()["topics"]["household-registration"]["outage"] is True
    _assert_error(await client.get(f"{HH}/records/{key}"), 503, "department_unavailable")
    _assert_error(await client.get("/departments/gaj"), 503, "department_unavailable")
    await client.delete(FAULTS, headers=operator)
    assert (await client.get(f"{HH}/records/{key}")).status_code == 200


@pytest.mark.parametrize("status", [500, 502])
async def test_error_rate_per_topic_only(
    client: httpx.AsyncClient, operator: dict[str, str], city: City, status: int
) -> None:
    await client.put(
        f"{FAULTS}/household-registration",
        json={"error_rate": 1.0, "error_status": status},
        headers=operator,
    )
    key = city.id_number_of(1)
    _assert_error(await client.get(f"{HH}/records/{key}"), status, "injected_fault")
    _assert_error(await client.post(f"{HH}/query", json={"keys": [key]}), status, "injected_fault")
    plate = city.plate_of(next(i for i in range(200) if city.vehicle_count(city.person(i))), 0)
    ok = await client.get(f"/departments/gaj/topics/vehicle-registration/records/{plate}")
    assert ok.status_code == 200


async def test_partial_error_rate(
    client: httpx.AsyncClient, operator: dict[str, str], city: City, app: DepartmentsApp
) -> None:
    app.random.seed(1)
    await client.put(FAULTS, json={"error_rate": 0.3}, headers=operator)
    key = city.id_number_of(2)
    codes = [(await client.get(f"{HH}/records/{key}")).status_code for _ in range(200)]
    failures = codes.count(500)
    assert 30 < failures < 90
    assert codes.count(200) == 200 - failures


async def test_fixed_and_random_latency(
    client: httpx.AsyncClient, operator: dict[str, str], city: City
) -> None:
    key = city.id_number_of(4)
    await client.put(FAULTS, json={"latency_ms": 150}, headers=operator)
    started = time.perf_counter()
    assert (await client.get(f"{HH}/records/{key}")).status_code == 200
    assert time.perf_counter() - started >= 0.15
    await client.put(FAULTS, json={"latency_ms": 0, "jitter_ms": 60}, headers=operator)
    spent = []
    for _ in range(8):
        started = time.perf_counter()
        await client.get(f"{HH}/records/{key}")
        spent.append(time.perf_counter() - started)
    assert max(spent) < 0.5
    assert max(spent) - min(spent) > 0.005


async def test_hang_outlasts_the_caller_timeout(
    client: httpx.AsyncClient, operator: dict[str, str], city: City
) -> None:
    await client.put(FAULTS, json={"hang_rate": 1.0, "hang_seconds": 0.6}, headers=operator)
    started = time.perf_counter()
    resp = await client.get(f"{HH}/records/{city.id_number_of(5)}")
    assert time.perf_counter() - started >= 0.6
    _assert_error(resp, 504, "injected_fault")


async def test_malformed_bodies(
    client: httpx.AsyncClient, operator: dict[str, str], city: City
) -> None:
    await client.put(FAULTS, json={"malformed_rate": 1.0}, headers=operator)
    resp = await client.get(f"{HH}/records/{city.id_number_of(6)}")
    assert resp.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(resp.content)
    export = await client.get(f"{HH}/export?limit=100")
    lines = export.content.splitlines()
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(lines[-1])


async def test_overshare_adds_an_undeclared_field(
    client: httpx.AsyncClient, operator: dict[str, str], city: City
) -> None:
    await client.put(f"{FAULTS}/household-registration", json={"overshare": True}, headers=operator)
    key = city.id_number_of(7)
    rec = (await client.get(f"{HH}/records/{key}")).json()
    assert OVERSHARE_FIELD in rec
    assert rec["id_number"] == key
    batch = (await client.post(f"{HH}/query", json={"keys": [key]})).json()
    assert OVERSHARE_FIELD in batch["records"][0]
    line = (await client.get(f"{HH}/export?limit=3")).content.splitlines()[0]
    assert OVERSHARE_FIELD in orjson.loads(line)
    view = (await client.get(f"{FAULTS}/household-registration", headers=operator)).json()
    assert view["override"] == {"overshare": True}
    assert view["effective"]["overshare"] is True
    await client.delete(f"{FAULTS}/household-registration", headers=operator)
    assert OVERSHARE_FIELD not in (await client.get(f"{HH}/records/{key}")).json()


async def test_topic_layer_overrides_department_layer(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    await client.put(FAULTS, json={"latency_ms": 40, "error_rate": 0.5}, headers=operator)
    await client.put(f"{FAULTS}/household-registration", json={"error_rate": 0.0}, headers=operator)
    view = (await client.get(FAULTS, headers=operator)).json()
    assert view["topics"]["household-registration"]["error_rate"] == 0.0
    assert view["topics"]["household-registration"]["latency_ms"] == 40
    assert view["topics"]["vehicle-registration"]["error_rate"] == 0.5


async def _unsigned(app: DepartmentsApp, method: str, path: str, **kw: object) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://dept.test"
    ) as c:
        return await c.request(method, path, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "signature_required"),
        ({"Authorization": "Bearer test-operator-key"}, 403, "exchange_only"),
        ({"Authorization": "Bearer exk_gaj_x"}, 403, "exchange_only"),
        (
            {"X-Exchange-Signature": "t=1,n=a,v1=" + "0" * 64, "X-Request-Id": "r"},
            401,
            "signature_invalid",
        ),
    ],
)
async def test_data_answers_only_the_exchanges_signed_calls(
    app: DepartmentsApp, city: City, headers: dict[str, str], status: int, code: str
) -> None:
    key = city.id_number_of(1)
    for method, path, body in (
        ("GET", f"{HH}/records/{key}", None),
        ("POST", f"{HH}/query", {"keys": [key]}),
        ("GET", f"{HH}/export?limit=5", None),
        ("GET", "/departments/gaj/topics/nope/records/1", None),  # no probing either
    ):
        resp = await _unsigned(app, method, path, json=body, headers=headers)
        _assert_error(resp, status, code)
    # The descriptions hold no records and stay open.
    assert (await _unsigned(app, "GET", "/departments/gaj")).status_code == 200


async def test_an_explicit_direct_key_opens_a_department_for_benchmarks(
    settings: Settings, definitions: dict[str, DepartmentDefinition], city: City
) -> None:
    open_app = create_departments_app(
        settings.model_copy(update={"departments_direct_key": "bench-direct"}),
        definitions=definitions,
        city=city,
    )
    path = f"{HH}/records/{city.id_number_of(1)}"
    ok = await _unsigned(open_app, "GET", path, headers={"Authorization": "Bearer bench-direct"})
    assert ok.status_code == 200
    wrong = await _unsigned(open_app, "GET", path, headers={"Authorization": "Bearer other"})
    _assert_error(wrong, 403, "exchange_only")


def test_the_direct_key_cannot_be_the_operator_key(
    settings: Settings, definitions: dict[str, DepartmentDefinition], city: City
) -> None:
    same = settings.model_copy(update={"departments_direct_key": settings.operator_key})
    with pytest.raises(ValueError, match="operator key"):
        create_departments_app(same, definitions=definitions, city=city)


async def test_healthz_answers_standalone(client: httpx.AsyncClient) -> None:
    # `exchange serve departments` alone: a container's health check and a load balancer
    # ask it the same question as every other part.
    resp = await client.get("/healthz")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok"
    assert body["departments"] == 10
    # This app is not started (its lifespan does not run here): the workers it would
    # start are not running, which it says.
    assert body["export_workers"] == {"processes": 2, "running": False, "restarts": 0}
    assert (await client.post("/healthz")).status_code == 405


async def test_callers_of_one_cold_page_share_one_derivation(
    app: DepartmentsApp, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a fresh exchange a load test's users ask for the same page at once: each chunk
    is derived once for all of them, and every caller gets the whole page."""
    import anyio

    built: list[int] = []
    build = app.exports.build_chunk

    def counting(topic: object, start: int, *cut: object) -> object:
        built.append(start)
        time.sleep(0.05)  # long enough that the other callers arrive while it derives
        return build(topic, start)  # type: ignore[arg-type]

    monkeypatch.setattr(app.exports, "build_chunk", counting)
    bodies: list[bytes] = []

    async def fetch() -> None:
        resp = await client.get(f"{HH}/export", params={"offset": 0, "limit": 5000})
        assert resp.status_code == 200
        bodies.append(resp.content)

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(fetch)
    assert sorted(built) == [0, 2048, 4096]  # three chunks cover 5,000 rows, once each
    assert len(bodies) == 6
    assert len(set(bodies)) == 1
    assert len(bodies[0].splitlines()) == 5000
    assert not app.exports.deriving
    again = await client.get(f"{HH}/export", params={"offset": 0, "limit": 5000})
    assert again.content == bodies[0]
    assert len(built) == 3  # served from the cache


async def test_a_failed_derivation_fails_its_callers_and_is_not_kept(
    app: DepartmentsApp, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = app.exports.build_chunk
    calls = 0

    def failing_once(topic: object, start: int, *cut: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("derivation failed")
        return build(topic, start)  # type: ignore[arg-type]

    monkeypatch.setattr(app.exports, "build_chunk", failing_once)
    with pytest.raises(RuntimeError, match="derivation failed"):
        await client.get(f"{HH}/export", params={"offset": 0, "limit": 100})
    assert not app.exports.deriving
    resp = await client.get(f"{HH}/export", params={"offset": 0, "limit": 100})
    assert resp.status_code == 200
    assert len(resp.content.splitlines()) == 100


def _one_worker_app(
    settings: Settings, definitions: dict[str, DepartmentDefinition], city: City
) -> DepartmentsApp:
    """The departments with one export worker process and no faults: what the worker
    derives is compared with what this process derives."""
    clean = {c: d.model_copy(update={"faults": FaultProfile()}) for c, d in definitions.items()}
    return create_departments_app(
        settings.model_copy(update={"departments_export_workers": 1}),
        definitions=clean,
        city=city,
    )


def _spy_on_builds(pooled: DepartmentsApp, record: Callable[[tuple[Any, ...]], object]) -> None:
    """``record`` the arguments of every worker call the departments make."""
    build = pooled.workers.build

    async def spying(*args: Any) -> list[Block]:
        record(args)
        return await build(*args)

    pooled.workers.build = spying  # type: ignore[method-assign]


def _signed(pooled: DepartmentsApp) -> httpx.AsyncClient:
    """A client of ``pooled`` signing as the exchange signs its calls."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=pooled),
        base_url="http://dept.test",
        auth=ExchangeSigned(PROVIDER_SECRET),
    )


async def test_worker_calls_stay_whole_spans_as_an_export_moves_on(
    settings: Settings,
    definitions: dict[str, DepartmentDefinition],
    city: City,
    client: httpx.AsyncClient,
) -> None:
    """Every worker call of a cold people-table export derives a whole span (SPAN_CHUNKS
    chunks, from a multiple of the span), but the last at the table's end: the window ahead
    of the page moved by one chunk at a time and, after the first spans, asked for one
    chunk a call. The export is the same as derived here."""
    pooled = _one_worker_app(settings, definitions, city)
    await pooled.start()
    calls: list[tuple[str, int, int]] = []
    _spy_on_builds(pooled, lambda args: calls.append((args[0], args[4], args[5])))
    try:
        async with _signed(pooled) as workers:
            page = f"{HH}/export?limit={city.population}"
            there = await workers.get(page)
            assert there.status_code == 200
            assert there.content == (await client.get(page)).content
    finally:
        await pooled.stop()
    span = SPAN_CHUNKS * EXPORT_CHUNK
    starts = [start for _, start, _ in calls]
    assert {g for g, _, _ in calls} == {"household_registration"}
    assert starts == list(range(0, city.population, span))
    assert all(count == SPAN_CHUNKS for _, _, count in calls[:-1])
    _, last, count = calls[-1]
    assert last + (count - 1) * EXPORT_CHUNK < city.population <= last + count * EXPORT_CHUNK


async def test_a_cold_export_is_derived_while_the_department_keeps_its_caller_waiting(
    settings: Settings,
    definitions: dict[str, DepartmentDefinition],
    city: City,
    client: httpx.AsyncClient,
) -> None:
    """The first window of a cold export goes to the workers before the department's
    injected latency is slept, not after it: the export's first worker call starts long
    before the latency ends, and the export is the same."""
    latency = 0.4
    slow = {
        c: d.model_copy(update={"faults": FaultProfile(latency_ms=latency * 1000)})
        for c, d in definitions.items()
    }
    pooled = create_departments_app(
        settings.model_copy(update={"departments_export_workers": 1}), definitions=slow, city=city
    )
    await pooled.start()
    calls: list[float] = []
    _spy_on_builds(pooled, lambda _: calls.append(time.monotonic()))
    try:
        async with _signed(pooled) as workers:
            page = f"{HH}/export?limit=20000"
            asked = time.monotonic()
            there = await workers.get(page)
            answered = time.monotonic()
            assert there.status_code == 200
            assert there.content == (await client.get(page)).content
    finally:
        await pooled.stop()
    assert answered - asked >= latency  # the latency was kept
    assert calls
    assert calls[0] - asked < latency / 2  # but the workers began at once


async def test_worker_processes_derive_the_same_chunks(
    settings: Settings,
    definitions: dict[str, DepartmentDefinition],
    city: City,
    client: httpx.AsyncClient,
    operator: dict[str, str],
) -> None:
    """Cold chunks derived ahead in a worker process (the departments' own process keeps
    sending) are byte for byte those derived in a thread: whole, cut to fields (derived cut
    there, cut from the whole chunk here), noisy."""
    pooled = _one_worker_app(settings, definitions, city)
    await pooled.start()
    try:
        assert pooled.workers.running
        async with _signed(pooled) as workers:
            for page in (
                f"{ENT}/export?offset=500&limit=9000",
                f"{HH}/export?offset=100&limit=7000&fields=name,id_number",
                "/departments/wjw/topics/birth-medical-certificates/export?limit=5000",
            ):
                here, there = await client.get(page), await workers.get(page)
                assert there.status_code == 200
                assert there.content == here.content
            # The cut page's chunks were derived cut: no whole household chunk was made.
            kept = [k for k in pooled.exports.cache.items if k[1] == "household-registration"]
            assert kept
            assert {k[4] for k in kept} == {("id_number", "name")}
            # Read again from those cut chunks, and a page starting inside one.
            for page in (
                f"{HH}/export?offset=100&limit=7000&fields=name,id_number",
                f"{HH}/export?offset=3000&limit=1500&fields=id_number,name",
            ):
                assert (await workers.get(page)).content == (await client.get(page)).content
            for c in (client, workers):
                resp = await c.put(
                    f"{FAULTS}/household-registration", json={"noise_rate": 0.3}, headers=operator
                )
                assert resp.status_code == 200
            for page in (
                f"{HH}/export?offset=40000&limit=5000",
                f"{HH}/export?offset=50000&limit=5000&fields=status,name,sex",
            ):
                assert (await workers.get(page)).content == (await client.get(page)).content
    finally:
        await pooled.stop()
    assert not pooled.workers.running


async def test_an_export_worker_killed_leaves_the_exports_to_this_process_until_new_ones_start(
    settings: Settings,
    definitions: dict[str, DepartmentDefinition],
    city: City,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker that dies (killed, out of memory) ends the pool: cold chunks are derived in
    a thread, every export still answered whole, and new workers are started after a
    back-off that doubles while they keep dying."""
    monkeypatch.setattr(exporter, "RESTART_FIRST_S", 0.2)
    pooled = _one_worker_app(settings, definitions, city)
    await pooled.start()
    try:
        assert pooled.workers.running
        first = pooled.workers._pool
        assert first is not None
        killed = {w.process.pid for w in first._workers}
        for worker in first._workers:
            worker.process.kill()
        await until(lambda: not pooled.workers.running, "the death noticed", within=5)
        assert first.broken is not None
        assert "started again, in 0.2 s" in caplog.text
        async with _signed(pooled) as workers:
            page = f"{ENT}/export?offset=100&limit=5000"
            there = await workers.get(page)
            assert there.status_code == 200
            assert there.content == (await client.get(page)).content

            await until(lambda: pooled.workers.running, "new workers started", within=30)
            assert pooled.workers.restarts == 1
            health = (await workers.get("/healthz")).json()["export_workers"]
            assert health == {"processes": 1, "running": True, "restarts": 1}
            second = pooled.workers._pool
            assert second is not None
            assert second is not first
            fresh = {w.process.pid for w in second._workers}
            assert fresh
            assert not fresh & killed
            # The new workers derive cold chunks again, the same ones this process does.
            calls: list[tuple[Any, ...]] = []
            _spy_on_builds(pooled, calls.append)
            page = f"{HH}/export?offset=0&limit=9000"
            there = await workers.get(page)
            assert there.status_code == 200
            assert there.content == (await client.get(page)).content
            assert calls

            # Dying again soon after its start: the next wait is twice as long.
            caplog.clear()
            for worker in second._workers:
                worker.process.kill()
            await until(lambda: not pooled.workers.running, "the second death", within=5)
            assert "started again, in 0.4 s" in caplog.text
    finally:
        await pooled.stop()
    assert not pooled.workers.running
    assert pooled.workers._restart is None


@pytest.mark.parametrize(("workers", "kept"), [(0, True), (1, False)])
def test_departments_deriving_in_their_own_process_keep_the_register(
    settings: Settings,
    definitions: dict[str, DepartmentDefinition],
    workers: int,
    kept: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without export workers the serving process derives every cold chunk, so it keeps
    the city's register as a worker does; with workers it leaves that to them."""
    monkeypatch.setattr(bulk, "_kept", None)
    city = City(5, 2_001, 300)
    create_departments_app(
        settings.model_copy(update={"departments_export_workers": workers}),
        definitions=definitions,
        city=city,
    )
    assert (bulk.register(city) is not None) is kept
