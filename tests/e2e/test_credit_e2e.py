"""Credit double publicity over real HTTP on loopback: the mock departments' feed publishes
decisions, the customs checks the lists through the SDK, the public searches, the provincial
platform reads the upward feed, and the audit chain holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import Exchange
from tests.e2e.harness import OPERATOR, OPERATOR_KEY, key_of

from exchange.client import ExchangeClient, PermissionDenied
from exchange.credit import feed
from exchange.departments.city import City
from exchange.security import demo_key


def test_feed_lists_search_and_upward(exchange: Exchange) -> None:
    http = exchange.http
    settings = exchange.ctx.settings
    city = City(settings.seed, settings.population, settings.enterprises)
    today = dt.date.fromisoformat(http.get("/api/v1/clock", headers=OPERATOR).json()["today"])
    units = feed.submitting_units(http.get("/api/v1/departments", headers=OPERATOR).json())

    def post(unit: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = httpx.post(exchange.url + path, json=body, headers=key_of(unit), timeout=30)
        assert resp.status_code == 200, resp.text
        answer: dict[str, Any] = resp.json()
        return answer

    report = feed.run(post, city, units, today, days=5, per_unit=3)
    assert report.published > 0
    published = http.get("/api/v1/credit/feed", params={"limit": 1000}, headers=OPERATOR).json()
    assert len(published) == report.published
    codes = sorted({r["credit_code"] for r in published if r["credit_code"]})

    with ExchangeClient(exchange.url, demo_key(OPERATOR_KEY, "gzhg")) as customs:
        batch = customs.credit_lists(codes)
        assert [a.credit_code for a in batch.results] == codes
        one = customs.credit_list(codes[0])
        assert one.credit_code == codes[0]
    with ExchangeClient(exchange.url, demo_key(OPERATOR_KEY, "gaj")) as police:
        with pytest.raises(PermissionDenied):
            police.credit_list(codes[0])
        page = police.search_credit_records(credit_code=codes[0])
        assert page.total >= 1
        assert all(item.credit_code == codes[0] for item in page.items)

    upward = http.get("/api/v1/credit/feed", params={"limit": 2}, headers=key_of("gdzsj"))
    assert [r["id"] for r in upward.json()] == [r["id"] for r in published[:2]]
    assert http.get("/api/v1/audit/verify", headers=OPERATOR).json()["ok"] is True
