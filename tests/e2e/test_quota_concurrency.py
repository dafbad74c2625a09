"""A daily quota holds under concurrency: calls in flight reserve their records, so
simultaneous lookups and exports cannot together deliver more than the quota."""

from __future__ import annotations

import asyncio

import httpx
from tests.e2e.conftest import PATIENT_UPSTREAM, Exchange
from tests.e2e.harness import apply, key_of, topic_code

from exchange.departments.city import City

# The rules under test, not the fault budgets (tests/e2e/conftest.py).
UPSTREAM = PATIENT_UPSTREAM

CITY = City(2020, 2_000, 500)
QUOTA = 5


def test_concurrent_lookups_stay_within_the_quota(exchange: Exchange) -> None:
    code = topic_code(exchange.ctx, "household-registration")
    apply(exchange.http, "ybj", code, ["id_number", "name"], daily_quota=QUOTA)
    # A slow provider keeps every call in flight at once, where check-then-count let
    # all of them through.
    exchange.faults("gaj", "household-registration", latency_ms=150)
    try:

        async def fire() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=exchange.url, timeout=10) as client:
                return await asyncio.gather(
                    *(
                        client.post(
                            f"/api/v1/exchange/{code}/query",
                            json={"keys": [CITY.id_number_of(i)]},
                            headers=key_of("ybj"),
                        )
                        for i in range(20)
                    )
                )

        answers = asyncio.run(fire())
    finally:
        exchange.faults("gaj", "household-registration")
    ok = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(ok) + len(refused) == 20, [a.text for a in answers]
    delivered = sum(len(a.json()["records"]) for a in ok)
    assert 0 < delivered <= QUOTA
    assert {a.json()["error"]["code"] for a in refused} == {"client.quota_exceeded"}


def test_an_export_is_capped_by_what_is_left_of_the_quota(exchange: Exchange) -> None:
    code = topic_code(exchange.ctx, "household-registration")
    apply(exchange.http, "wjw", code, ["id_number"], daily_quota=30)
    headers = key_of("wjw")
    first = exchange.http.get(f"/api/v1/exchange/{code}/export?limit=20", headers=headers)
    assert first.status_code == 200
    assert first.text.count("\n") == 20
    rest = exchange.http.get(f"/api/v1/exchange/{code}/export?limit=100", headers=headers)
    assert rest.status_code == 200
    assert rest.text.count("\n") == 10  # 30 - 20
    spent = exchange.http.get(f"/api/v1/exchange/{code}/export?limit=5", headers=headers)
    assert spent.status_code == 429
