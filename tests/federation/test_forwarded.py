"""An application forwarded across levels, over real HTTP between two exchanges: a
provincial department applies for a city topic at the province; the city's provider
department reviews it in its own queue with its own deadline; the decision flows back and
the province's grant follows it; a rejection comes back with its reason; a revocation at
the city revokes the province's grant; both audit trails file it under one correlation id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.federation.pair import Pair, Platform, make_pair, wait_for

from exchange.departments.city import City

pytestmark = pytest.mark.e2e

TAX_ITEMS = ["credit_code", "taxpayer_name", "credit_rating"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    pair = make_pair(tmp_path_factory.mktemp("forwarded"))
    for platform in (pair.city, pair.province):
        platform.env["EXCHANGE_CITY_CHANGE_SCALE"] = "0"
        platform.env["EXCHANGE_ENTERPRISES"] = "5000"
    try:
        pair.province.start()
        pair.city.start()
        yield pair
    finally:
        pair.stop()


def _tax(pair: Pair) -> tuple[str, str]:
    """The city's tax-registration topic, published and mounted: (city code, province code)."""
    topics = pair.city.get("/api/v1/catalog/topics", limit=100)["items"]
    city_code = next(t["resource_code"] for t in topics if t.get("slug") == "tax-registration")
    resp = pair.city.post("/api/v1/federation/publications", {"resource_codes": [city_code]})
    assert resp.status_code == 200, resp.text

    def mounted() -> str | None:
        pair.province.post("/api/v1/federation/sync", {})
        found = pair.province.get("/api/v1/catalog/topics", limit=100, status="published")
        return next(
            (t["resource_code"] for t in found["items"] if f"源目录 {city_code}" in t["tags"]),
            None,
        )

    return city_code, wait_for("the topic mounted at the province", mounted)


def _apply(platform: Platform, who: str, topic: str, items: list[str]) -> dict[str, Any]:
    resp = platform.post(
        "/api/v1/applications",
        {
            "topic": topic,
            "items": items,
            "purpose": {"scope": "data_verification", "text": "企业纳税信用核验"},
            "legal_function": "《广东省市场监督管理条例》",
            "valid_until": "2029-12-31",
        },
        platform.key(who),
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _forwarded_at_city(pair: Pair, reviewer: str, on_behalf_of: str) -> dict[str, Any]:
    """The forward, once it is in the city reviewer's queue."""

    def queued() -> dict[str, Any] | None:
        page = pair.city.get(
            "/api/v1/applications",
            pair.city.key(reviewer),
            role="provider",
            status="pending_review",
            limit=500,
        )
        return next((a for a in page["items"] if a["on_behalf_of"] == on_behalf_of), None)

    found: dict[str, Any] = wait_for("the forward in the city's review queue", queued)
    return found


def _outcomes(app: dict[str, Any]) -> dict[str, str]:
    return {d["field"]: d["outcome"] for d in app["decisions"]}


def _province_app(pair: Pair, app_id: int) -> dict[str, Any]:
    return pair.province.get(f"/api/v1/applications/{app_id}")  # type: ignore[no-any-return]


def test_the_city_reviews_and_the_province_grant_follows_then_a_revocation(pair: Pair) -> None:
    city_code, mounted = _tax(pair)
    here = _apply(pair.province, "gd-scjgj", mounted, TAX_ITEMS)
    # Unconditional items are granted at once; the conditional one waits for the city.
    assert here["forwarded_to"] == "city"
    assert here["status"] == "pending_review"
    assert _outcomes(here) == {
        "credit_code": "granted",
        "taxpayer_name": "granted",
        "credit_rating": "pending",
    }
    # Nobody at the province reviews it: the city platform's unit may not decide it.
    local = pair.province.post(
        f"/api/v1/applications/{here['id']}/approve", {"reason": "同意"}, pair.province.key("gz")
    )
    assert local.status_code == 409, local.text
    assert local.json()["error"]["code"] == "reviewed_at_peer"

    # The city's tax bureau has it in its normal queue, with the city's own deadline.
    there = _forwarded_at_city(pair, "swj", "gd-scjgj")
    assert there["consumer"] == "gdzsj"
    assert there["topic"] == city_code
    assert there["review_deadline"] is not None
    assert _outcomes(there)["credit_rating"] == "pending"
    deadline = dt.datetime.fromisoformat(there["review_deadline"])

    def same_deadline() -> bool:
        shown = _province_app(pair, here["id"])["review_deadline"]
        return shown is not None and dt.datetime.fromisoformat(shown) == deadline

    wait_for("the province showing the city's deadline", same_deadline)

    # The bureau approves, for a shorter validity than asked; the province follows.
    until = (dt.date.today() + dt.timedelta(days=400)).isoformat()
    resp = pair.city.post(
        f"/api/v1/applications/{there['id']}/approve",
        {"valid_until": until, "reason": "同意共享"},
        pair.city.key("swj"),
    )
    assert resp.status_code == 200, resp.text
    done = wait_for(
        "the decision mirrored at the province",
        lambda: (a := _province_app(pair, here["id"]))["status"] == "approved" and a,
    )
    assert done["reviewed_by"] == "gz:swj"
    grant = pair.province.get(f"/api/v1/grants/{done['grant_id']}")
    assert grant["consumer"] == "gd-scjgj"
    assert set(grant["items"]) == set(TAX_ITEMS)
    assert grant["valid_until"] == until

    # The chain holds: the provincial department reads the conditional item through both.
    key = City(2020, 100_000, 5_000).sample_credit_codes(1, seed=5)[0]

    def query() -> httpx.Response:
        return pair.province.post(
            f"/api/v1/exchange/{mounted}/query",
            {"keys": [key], "items": ["credit_code", "credit_rating"]},
            pair.province.key("gd-scjgj"),
        )

    answer = query()
    assert answer.status_code == 200, answer.text
    assert answer.json()["records"][0]["credit_code"] == key

    # One correlation id files every call of this exchange in both audit trails.
    events = _province_app(pair, here["id"])["events"]
    correlation = next(e["detail"]["correlation_id"] for e in events if e["kind"] == "forwarded")

    def both() -> Any:
        resp = httpx.get(
            f"{pair.province.url}/api/v1/federation/exchanges/{correlation}",
            headers=pair.province.op,
        )
        record = resp.json() if resp.status_code == 200 else None
        # here: the forward and the state received; there: the forward filed, the state sent
        return record and len(record["here"]) >= 2 and len(record["peer"] or []) >= 2 and record

    record = wait_for("both audit trails", both)
    assert {e["correlation_id"] for e in record["here"] + record["peer"]} == {correlation}
    assert {e["kind"] for e in record["here"] + record["peer"]} == {"federation"}
    assert all(e["outcome"] in ("ok", "forwarded") for e in record["here"] + record["peer"])

    # The city's bureau revokes its grant to the province: the province's grant goes too.
    city_grant = pair.city.get(f"/api/v1/applications/{there['id']}", pair.city.key("swj"))
    resp = pair.city.post(
        f"/api/v1/grants/{city_grant['grant_id']}/revoke",
        {"reason": "核验用途已结束"},
        pair.city.key("swj"),
    )
    assert resp.status_code == 200, resp.text
    revoked = wait_for(
        "the revocation at the province",
        lambda: (
            (g := pair.province.get(f"/api/v1/grants/{done['grant_id']}"))["status"] == "revoked"
            and g
        ),
    )
    assert "city" in revoked["status_reason"]
    refused = query()
    assert refused.status_code == 403, refused.text


def test_a_rejection_at_the_city_comes_back_with_its_reason(pair: Pair) -> None:
    _city_code, mounted = _tax(pair)
    here = _apply(pair.province, "gd-rst", mounted, ["credit_code", "credit_rating"])
    assert here["forwarded_to"] == "city"
    there = _forwarded_at_city(pair, "swj", "gd-rst")
    resp = pair.city.post(
        f"/api/v1/applications/{there['id']}/reject",
        {"reason": "用途与纳税信用等级无关"},
        pair.city.key("swj"),
    )
    assert resp.status_code == 200, resp.text
    done = wait_for(
        "the rejection mirrored at the province",
        lambda: (a := _province_app(pair, here["id"]))["status"] != "pending_review" and a,
    )
    assert done["status"] == "partially_approved"
    decisions = {d["field"]: d for d in done["decisions"]}
    assert decisions["credit_rating"]["outcome"] == "rejected"
    assert decisions["credit_rating"]["reason"] == "用途与纳税信用等级无关"
    assert decisions["credit_code"]["outcome"] == "granted"
    # Only the granted item is in the province's grant.
    grant = pair.province.get(f"/api/v1/grants/{done['grant_id']}")
    assert grant["items"] == ["credit_code"]


def test_an_application_without_items_to_review_is_not_forwarded(pair: Pair) -> None:
    _city_code, mounted = _tax(pair)
    here = _apply(pair.province, "gd-mzt", mounted, ["credit_code", "taxpayer_name"])
    assert here["status"] == "approved"
    assert here["forwarded_to"] is None


def test_a_dispute_at_the_province_is_coordinated_with_the_city(pair: Pair) -> None:
    """Refused at the city, disputed at the province: the city's bureau sees the dispute
    and answers in it, the province's operator decides, and the decision holds at the city
    too: the department then reads the disputed item through both exchanges."""
    _city_code, mounted = _tax(pair)
    here = _apply(pair.province, "gd-zrzyt", mounted, ["credit_code", "credit_rating"])
    there = _forwarded_at_city(pair, "swj", "gd-zrzyt")
    swj = pair.city.key("swj")
    resp = pair.city.post(f"/api/v1/applications/{there['id']}/reject", {"reason": "用途不符"}, swj)
    assert resp.status_code == 200, resp.text
    wait_for(
        "the rejection mirrored at the province",
        lambda: _province_app(pair, here["id"])["status"] == "partially_approved",
    )
    consumer = pair.province.key("gd-zrzyt")
    resp = pair.province.post(
        f"/api/v1/applications/{here['id']}/dispute", {"reason": "用地审批需核验纳税信用"}, consumer
    )
    assert resp.status_code == 201, resp.text
    dispute = resp.json()["id"]

    mirrored = wait_for(
        "the dispute at the city",
        lambda: pair.city.get(f"/api/v1/applications/{there['id']}", swj)["dispute_id"],
    )
    seen = pair.city.get(f"/api/v1/disputes/{mirrored}", swj)
    assert (seen["status"], seen["items"]) == ("open", ["credit_rating"])
    resp = pair.city.post(f"/api/v1/disputes/{mirrored}/messages", {"body": "同意协调"}, swj)
    assert resp.status_code == 201, resp.text
    wait_for(
        "the bureau's message at the province",
        lambda: (
            [m["author"] for m in pair.province.get(f"/api/v1/disputes/{dispute}")["messages"]]
            == ["gz:swj"]
        ),
    )

    resp = pair.province.post(
        f"/api/v1/disputes/{dispute}/decide", {"decision": "grant", "reason": "协调同意"}
    )
    assert resp.status_code == 200, resp.text
    decided = wait_for(
        "the decision at the city",
        lambda: (
            (d := pair.city.get(f"/api/v1/disputes/{mirrored}", swj))["status"] == "decided" and d
        ),
    )
    assert decided["decided_items"] == ["credit_rating"]
    key = City(2020, 100_000, 5_000).sample_credit_codes(1, seed=6)[0]
    answer = pair.province.post(
        f"/api/v1/exchange/{mounted}/query",
        {"keys": [key], "items": ["credit_code", "credit_rating"]},
        consumer,
    )
    assert answer.status_code == 200, answer.text
    assert "credit_rating" in answer.json()["records"][0]
