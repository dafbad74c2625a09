"""The broker end to end over real HTTP: grants from the authorization API, data from the
mock departments, errors that name the side at fault, the breaker, own-API routing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.e2e.conftest import Exchange
from tests.e2e.harness import OPERATOR, PROVIDER_SECRET, apply, key_of, serve, topic_code
from tests.polling import wait_until
from tests.signing import ExchangeSigned

from exchange.departments.city import City

pytestmark = pytest.mark.e2e

CITY = City(2020, 2_000, 500)
HUKOU = "household-registration"
MISSING = "11010519491231002X"


def query(ex: Exchange, consumer: str, code: str, keys: list[str], **extra: Any) -> httpx.Response:
    return ex.http.post(
        f"/api/v1/exchange/{code}/query",
        json={"keys": keys, **extra},
        headers={**key_of(consumer), "X-Exchange-Case": quote("低保-2024-0001")},
    )


def error_of(resp: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()["error"]
    return body


def audit_of(ex: Exchange, request_id: str) -> dict[str, Any]:
    page = ex.http.get(
        "/api/v1/audit/entries", params={"request_id": request_id}, headers=OPERATOR
    ).json()
    assert len(page["entries"]) == 1
    entry: dict[str, Any] = page["entries"][0]
    return entry


@pytest.fixture
def hukou(exchange: Exchange) -> Iterator[str]:
    """The household-registration topic, its provider's faults cleared after the test."""
    yield topic_code(exchange.ctx, HUKOU)
    exchange.faults("gaj", HUKOU)
    exchange.broker.upstream.breakers.clear()


@pytest.fixture(scope="module")
def granted(exchange: Exchange) -> str:
    """mzj holds a grant for three unconditional items of household registration."""
    code = topic_code(exchange.ctx, HUKOU)
    apply(exchange.http, "mzj", code, ["id_number", "name", "sex"])
    return code


def test_granted_lookup_answers_and_is_audited(exchange: Exchange, granted: str) -> None:
    keys = [CITY.id_number_of(1), CITY.id_number_of(2), MISSING]
    resp = query(exchange, "mzj", granted, keys)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["request_id"] == resp.headers["x-request-id"]
    assert [r["id_number"] for r in body["records"]] == keys[:2]
    assert body["records"][0]["name"] == CITY.person(1).name
    assert set(body["records"][0]) == {"id_number", "name", "sex"}
    assert body["not_found"] == [MISSING]

    entry = audit_of(exchange, body["request_id"])
    assert entry["consumer"] == "mzj"
    assert entry["provider"] == "gaj"
    assert entry["resource_code"] == granted
    assert entry["records"] == 2
    assert entry["outcome"] == "ok"
    assert entry["case"] == "低保-2024-0001"
    assert entry["items"] == ["id_number", "name", "sex"]


def test_items_outside_the_grant_never_leave_the_broker(
    exchange: Exchange, granted: str, hukou: str
) -> None:
    exchange.faults("gaj", HUKOU, overshare=True)
    key = CITY.id_number_of(3)
    direct = httpx.post(
        f"{exchange.departments_url}/departments/gaj/topics/{HUKOU}/query",
        json={"keys": [key]},
        auth=ExchangeSigned(PROVIDER_SECRET),
    ).json()["records"][0]
    assert "internal_remark" in direct  # the provider really over-shares
    assert "ethnicity" in direct

    resp = query(exchange, "mzj", granted, [key])
    assert resp.status_code == 200, resp.text
    assert set(resp.json()["records"][0]) == {"id_number", "name", "sex"}

    narrow = query(exchange, "mzj", granted, [key], items=["name"])
    assert narrow.json()["records"] == [{"name": CITY.person(3).name}]

    export = exchange.http.get(
        f"/api/v1/exchange/{granted}/export", params={"limit": 50}, headers=key_of("mzj")
    )
    assert export.status_code == 200
    lines = export.content.splitlines()
    assert len(lines) == 50
    assert all(b"internal_remark" not in ln and b"ethnicity" not in ln for ln in lines)


def test_asking_for_an_ungranted_item_is_refused(exchange: Exchange, granted: str) -> None:
    resp = query(exchange, "mzj", granted, [CITY.id_number_of(1)], items=["ethnicity"])
    assert resp.status_code == 403
    assert error_of(resp)["code"] == "client.item_not_granted"


def test_no_grant_is_the_callers_fault_and_audited(exchange: Exchange, granted: str) -> None:
    # ybj applies for nothing anywhere in this module, whatever order its tests run in.
    resp = query(exchange, "ybj", granted, [CITY.id_number_of(1)])
    assert resp.status_code == 403
    error = error_of(resp)
    assert error["code"] == "client.no_grant"
    assert error["detail"]["side"] == "client"
    entry = audit_of(exchange, error["request_id"])
    assert (entry["consumer"], entry["outcome"], entry["records"]) == ("ybj", "client.no_grant", 0)


def test_bad_key_and_bad_input(exchange: Exchange, granted: str) -> None:
    resp = exchange.http.post(
        f"/api/v1/exchange/{granted}/query",
        json={"keys": ["x"]},
        headers={"Authorization": "Bearer exk_nobody_nothing"},
    )
    assert (resp.status_code, error_of(resp)["code"]) == (401, "client.bad_key")
    # Refused before anyone is known, but audited under the request id the caller saw.
    assert audit_of(exchange, resp.headers["x-request-id"])["outcome"] == "client.bad_key"
    export = exchange.http.get(
        f"/api/v1/exchange/{granted}/export", headers={"Authorization": "Bearer exk_nobody_x"}
    )
    assert (export.status_code, error_of(export)["code"]) == (401, "client.bad_key")
    assert audit_of(exchange, export.headers["x-request-id"])["kind"] == "export"
    too_many = query(exchange, "mzj", granted, [f"k{i}" for i in range(1001)])
    assert (too_many.status_code, error_of(too_many)["code"]) == (422, "client.bad_input")
    empty = query(exchange, "mzj", granted, [])
    assert error_of(empty)["code"] == "client.bad_input"
    not_json = exchange.http.post(
        f"/api/v1/exchange/{granted}/query", content=b"{keys", headers=key_of("mzj")
    )
    assert (not_json.status_code, error_of(not_json)["code"]) == (400, "client.bad_input")
    huge = exchange.http.post(
        f"/api/v1/exchange/{granted}/query",
        content=b'{"keys": ["' + b"1" * (1024 * 1024) + b'"]}',
        headers=key_of("mzj"),
    )
    assert (huge.status_code, error_of(huge)["code"]) == (413, "client.bad_input")
    assert error_of(huge)["detail"]["limit_bytes"] == 1024 * 1024


def test_over_quota_is_429(exchange: Exchange) -> None:
    code = topic_code(exchange.ctx, HUKOU)
    made = apply(exchange.http, "sfj", code, ["id_number", "name"], daily_quota=3)
    assert made["status"] == "approved", made
    ok = query(exchange, "sfj", code, [CITY.id_number_of(5), CITY.id_number_of(6)])
    assert ok.status_code == 200, ok.text
    over = query(exchange, "sfj", code, [CITY.id_number_of(7), CITY.id_number_of(8)])
    assert over.status_code == 429
    assert error_of(over)["code"] == "client.quota_exceeded"
    last = query(exchange, "sfj", code, [CITY.id_number_of(7)])
    assert last.status_code == 200


def test_retired_topic_is_refused(exchange: Exchange) -> None:
    code = topic_code(exchange.ctx, "cremation-records")
    apply(exchange.http, "czj", code, ["id_number"])
    front, seq = code.split("/")
    retire = exchange.http.post(
        f"/api/v1/catalog/topics/{front}/{seq}/retire",
        json={"reason": "并入新目录"},
        headers=OPERATOR,
    )
    assert retire.status_code == 200, retire.text
    # The retirement commits as its response is sent; allow the broker a moment to see it.
    deadline = time.monotonic() + 3
    while True:
        resp = query(exchange, "czj", code, [CITY.id_number_of(1)])
        if resp.status_code == 410 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (resp.status_code, error_of(resp)["code"]) == (410, "client.topic_retired")


@pytest.mark.parametrize(
    ("profile", "status", "code"),
    [
        ({"latency_ms": 2000}, 504, "provider.timeout"),
        ({"error_rate": 1.0, "error_status": 500}, 502, "provider.unavailable"),
        ({"outage": True}, 502, "provider.unavailable"),
        ({"malformed_rate": 1.0}, 502, "provider.bad_response"),
    ],
    ids=["timeout", "5xx", "outage", "malformed"],
)
def test_provider_faults_name_the_provider(
    exchange: Exchange, granted: str, hukou: str, profile: dict[str, Any], status: int, code: str
) -> None:
    exchange.faults("gaj", HUKOU, **profile)
    resp = query(exchange, "mzj", granted, [CITY.id_number_of(1)])
    assert resp.status_code == status, resp.text
    error = error_of(resp)
    assert error["code"] == code
    assert error["detail"]["side"] == "provider"
    assert error["detail"]["provider"] == "gaj"
    assert audit_of(exchange, error["request_id"])["outcome"] == code


def test_circuit_opens_on_a_failing_provider_and_closes_on_recovery(
    exchange: Exchange, granted: str, hukou: str
) -> None:
    exchange.faults("gaj", HUKOU, error_rate=1.0, error_status=500)
    for _ in range(3):
        assert query(exchange, "mzj", granted, [CITY.id_number_of(1)]).status_code == 502
    started = time.perf_counter()
    fast = query(exchange, "mzj", granted, [CITY.id_number_of(1)])
    assert fast.status_code == 503
    assert error_of(fast)["detail"]["circuit"] == "open"
    assert time.perf_counter() - started < 0.2  # failed at once, the provider not called

    exchange.faults("gaj", HUKOU)
    breaker = exchange.broker.upstream.breaker("gaj")
    # Past breaker_reset (the broker's clock): the next call is the half-open trial.
    wait_until(lambda: breaker.retry_after(time.monotonic()) == 0, "the breaker's reset")
    assert query(exchange, "mzj", granted, [CITY.id_number_of(1)]).status_code == 200
    assert exchange.broker.upstream.breaker("gaj").state == "closed"
    metrics = exchange.http.get("/metrics", headers=OPERATOR).text
    assert 'exchange_upstream_circuit_open{provider="gaj"} 0.0' in metrics
    assert "exchange_broker_requests_total" in metrics


def _own_api() -> Starlette:
    """A department developer's own API, answering the broker's lookup contract."""

    async def lookup(request: Request) -> JSONResponse:
        keys = (await request.json())["keys"]
        return JSONResponse(
            {
                "records": [{"plate": k, "permit": "粤A-2024", "secret": "内部"} for k in keys],
                "not_found": [],
            }
        )

    return Starlette(routes=[Route("/api/permits/query", lookup, methods=["POST"])])


def test_a_topic_routes_to_the_departments_own_api(exchange: Exchange) -> None:
    with serve(_own_api()) as own:
        made = exchange.http.post(
            "/api/v1/departments",
            json={"code": "devdept", "name": "测试开发部门", "kind": "municipal", "base_url": own},
            headers=OPERATOR,
        )
        assert made.status_code == 201, made.text
        dev = {"Authorization": f"Bearer {made.json()['api_key']}"}
        topic = exchange.http.post(
            "/api/v1/catalog/topics",
            json={
                "category": "301099001",
                "group": "departmental",
                "name": "通行许可信息",
                "provider": "devdept",
                "abstract": "开发中的通行许可查询接口",
                "resource_type": "interface",
                "api_path": "/api/permits",
                "update_cycle": "realtime",
                "format": "JSON",
                "items": [
                    {
                        "field": "plate",
                        "name": "号牌",
                        "sharing_type": "unconditional",
                        "is_key": True,
                    },
                    {"field": "permit", "name": "许可编号", "sharing_type": "unconditional"},
                ],
                "sharing": {"type": "unconditional"},
            },
            headers=dev,
        )
        assert topic.status_code == 201, topic.text
        code = topic.json()["resource_code"]
        apply(exchange.http, "mzj", code, ["plate", "permit"])
        resp = query(exchange, "mzj", code, ["粤A12345"])
        assert resp.status_code == 200, resp.text
        assert resp.json()["records"] == [{"plate": "粤A12345", "permit": "粤A-2024"}]


def _records_of(stats: dict[str, Any], period: str, by: str, name: str) -> int:
    found: int = stats[period][by].get(name, {}).get("records", 0)
    return found


def test_stats_and_chain_count_the_lookups_made(exchange: Exchange, granted: str) -> None:
    """Counts before and after this test's own lookups: no other test's traffic is assumed
    (the stats and the chain are settled by the API before it answers)."""
    before = exchange.http.get("/api/v1/audit/stats", headers=key_of("mzj")).json()
    chain_before = exchange.http.get("/api/v1/audit/verify", headers=OPERATOR).json()
    for i in (11, 12, 13):
        keys = [CITY.id_number_of(i), CITY.id_number_of(i + 100)]
        assert query(exchange, "mzj", granted, keys).status_code == 200
    after = exchange.http.get("/api/v1/audit/stats", headers=key_of("mzj")).json()
    chain_after = exchange.http.get("/api/v1/audit/verify", headers=OPERATOR).json()
    for period, by, name in (("today", "by_consumer", "mzj"), ("total", "by_topic", granted)):
        added = _records_of(after, period, by, name) - _records_of(before, period, by, name)
        assert added == 6, (period, by, name)
    assert chain_before["ok"] is True
    assert chain_after["ok"] is True
    assert chain_after["entries"] == chain_before["entries"] + 3


@pytest.fixture
def clock_restored(exchange: Exchange) -> Iterator[None]:
    """The platform clock back at wall time after the test, so the module's other tests
    (quotas, "today's" statistics) see today whatever order they run in."""
    yield
    exchange.ctx.clock.reset()


def test_expired_grant_is_refused(exchange: Exchange, clock_restored: None) -> None:
    code = topic_code(exchange.ctx, HUKOU)
    today = exchange.http.get("/api/v1/clock", headers=OPERATOR).json()["today"]
    apply(exchange.http, "jyj", code, ["id_number", "name"], valid_until=today)
    assert query(exchange, "jyj", code, [CITY.id_number_of(1)]).status_code == 200
    moved = exchange.http.post("/api/v1/clock/advance", json={"by": "2d"}, headers=OPERATOR)
    assert moved.status_code == 200
    resp = query(exchange, "jyj", code, [CITY.id_number_of(1)])
    assert (resp.status_code, error_of(resp)["code"]) == (403, "client.grant_expired")


def test_concurrent_lookups_share_provider_calls_but_never_records(
    exchange: Exchange, granted: str
) -> None:
    """Consumers with different grants look up different people at once: the broker may
    carry their keys in one provider call, but each gets its own person, filtered by its
    own grant."""
    apply(exchange.http, "rsj", granted, ["id_number", "name"])
    allowed = {"mzj": {"id_number", "name", "sex"}, "rsj": {"id_number", "name"}}
    people = [CITY.id_number_of(i) for i in range(64)]
    stats = exchange.broker.lookups.stats
    before = stats.coalesced

    async def burst() -> list[tuple[str, str, httpx.Response]]:
        async with httpx.AsyncClient(base_url=exchange.url, timeout=10) as client:

            async def one(i: int) -> tuple[str, str, httpx.Response]:
                consumer = ("mzj", "rsj")[i % 2]
                resp = await client.post(
                    f"/api/v1/exchange/{granted}/query",
                    json={"keys": [people[i], MISSING] if i % 3 == 0 else [people[i]]},
                    headers=key_of(consumer),
                )
                return consumer, people[i], resp

            return await asyncio.gather(*(one(i) for i in range(len(people))))

    for _ in range(5):  # concurrency over real sockets: sharing is likely, not certain
        for consumer, person, resp in asyncio.run(burst()):
            assert resp.status_code == 200, resp.text
            answer = resp.json()
            assert [r["id_number"] for r in answer["records"]] == [person]
            assert set(answer["records"][0]) <= allowed[consumer]
            asked_missing = MISSING.encode() in resp.request.content
            assert answer["not_found"] == ([MISSING] if asked_missing else [])
        if stats.coalesced > before:
            break
    assert stats.coalesced > before, "no two lookups ever shared a provider call"
    metrics = exchange.http.get("/metrics", headers=OPERATOR).text
    assert f"exchange_broker_coalesced_lookups_total {float(stats.coalesced)}" in metrics
