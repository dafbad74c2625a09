"""Credit double publicity over real HTTP on loopback: the mock departments' feed publishes
decisions, the customs checks the lists through the SDK, the public searches, the provincial
platform reads the upward feed, and the audit chain holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import PATIENT_UPSTREAM, Exchange
from tests.e2e.harness import OPERATOR, OPERATOR_KEY, key_of

from exchange.client import ExchangeClient, PermissionDenied
from exchange.credit import feed
from exchange.demo_steps import CUSTOMS, check_at_customs
from exchange.departments.city import City
from exchange.security import demo_key

# The rules under test, not the fault budgets (tests/e2e/conftest.py).
UPSTREAM = PATIENT_UPSTREAM


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

    def everything() -> list[dict[str, Any]]:
        resp = http.get("/api/v1/credit/feed", params={"limit": 1000}, headers=OPERATOR)
        records: list[dict[str, Any]] = resp.json()
        return records

    # The exchange is shared with the module's other tests (any order): count what this
    # feed added, not what the exchange holds.
    before = {r["id"] for r in everything()}
    report = feed.run(post, city, units, today, days=5, per_unit=3)
    assert report.published > 0
    published = [r for r in everything() if r["id"] not in before]
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
    assert [r["id"] for r in upward.json()] == [r["id"] for r in everything()[:2]]
    assert http.get("/api/v1/audit/verify", headers=OPERATOR).json()["ok"] is True


def test_enterprise_story_customs_step(exchange: Exchange) -> None:
    settings = exchange.ctx.settings
    city = City(settings.seed, settings.population, settings.enterprises)
    code = city.sample_credit_codes(1, seed=77)[0]
    today = dt.date.fromisoformat(
        exchange.http.get("/api/v1/clock", headers=OPERATOR).json()["today"]
    )
    major = {
        "kind": "penalty",
        "decision_number": "穗市监处罚〔2026〕story号",
        "party_kind": "legal_person",
        "party_name": "广州故事有限公司",
        "credit_code": code,
        "legal_representative": "赵六",
        "legal_basis": "《中华人民共和国食品安全法》第一百三十五条",
        "content": "吊销食品经营许可证",
        "violation_facts": "被吊销许可证后继续经营",
        "categories": ["吊销许可证件"],
        "decision_date": today.isoformat(),
        "authority": "广州市市场监督管理局",
        "authority_code": "114401009713466374",
    }
    with ExchangeClient(exchange.url, demo_key(OPERATOR_KEY, "scjgj")) as regulator:
        assert regulator.submit_credit_records([major]).results[0].outcome in (
            "published",
            "duplicate",
        )
    with ExchangeClient(exchange.url, demo_key(OPERATOR_KEY, CUSTOMS)) as customs:
        check = check_at_customs(customs, code)
    assert check.black
    assert not check.red
    assert any("穗市监处罚〔2026〕story号" in line for line in check.reasons())
