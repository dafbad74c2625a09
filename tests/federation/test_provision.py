"""Bulk provision across levels over real HTTP: the province pulls a published city topic's
records with a watermark and keeps pulling what is added; either side restarting or the
province being down loses nothing and stores nothing twice; the counts agree on both
sides; and provincial data flows back down (回流) to a city department the same way.
Also the downward lookup: a city department querying a provincial topic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from tests.federation.pair import Pair, Platform, make_pair, wait_for

from exchange.departments.city import City

pytestmark = pytest.mark.e2e

ITEMS = ["credit_code", "name", "status"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    pair = make_pair(tmp_path_factory.mktemp("provision"))
    for platform in (pair.city, pair.province):
        # A still city (no changes of its own): what the tests change is all that changes.
        platform.env["EXCHANGE_CITY_CHANGE_SCALE"] = "0"
        platform.env["EXCHANGE_ENTERPRISES"] = "5000"
        # Small pages: a pull takes several, asked ahead of the one being stored.
        platform.env["EXCHANGE_FEDERATION_PAGE"] = "700"
        # Pages both sides acknowledged are folded after a second: every copy compared
        # below is read over pruned pages too.
        platform.env["EXCHANGE_FEDERATION_RETENTION"] = "1"
        platform.env["EXCHANGE_FEDERATION_PRUNE_EVERY"] = "1"
    try:
        pair.province.start()
        pair.city.start()
        yield pair
    finally:
        pair.stop()


def _slug_code(platform: Platform, slug: str) -> str:
    topics = platform.get("/api/v1/catalog/topics", limit=100)["items"]
    return next(t["resource_code"] for t in topics if t.get("slug") == slug)


def _mounted(at: Platform, origin: str) -> str:
    """The code ``at`` gave the peer's topic ``origin`` (once it is mounted)."""

    def find() -> str | None:
        at.post("/api/v1/federation/sync", {})
        topics = at.get("/api/v1/catalog/topics", limit=100, status="published")["items"]
        return next((t["resource_code"] for t in topics if f"源目录 {origin}" in t["tags"]), None)

    found: str = wait_for(f"{origin} mounted", find)
    return found


def _apply(platform: Platform, who: str, topic: str, items: list[str]) -> None:
    resp = platform.post(
        "/api/v1/applications",
        {
            "topic": topic,
            "items": items,
            "purpose": {"scope": "data_verification", "text": "数据共享与回流"},
            "legal_function": "《广东省政务数据资源共享管理办法》",
            "valid_until": "2029-12-31",
        },
        platform.key(who),
    )
    assert resp.status_code in (200, 201), resp.text
    assert resp.json()["status"] == "approved", resp.text


def _export(platform: Platform, who: str, code: str) -> list[dict[str, Any]]:
    resp = httpx.get(
        f"{platform.url}/api/v1/exchange/{code}/export",
        params={"limit": 1_000_000},
        headers=platform.key(who),
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    return [orjson.loads(line) for line in resp.content.splitlines() if line.strip()]


def _provision(platform: Platform, code: str) -> dict[str, Any] | None:
    items = platform.get("/api/v1/federation/provisions")["items"]
    return next((p for p in items if p["resource_code"] == code), None)


def _converged(pair: Pair, receiver: Platform, reader: str, code: str, source: Any) -> Any:
    """Poll until ``receiver``'s stored copy (read by ``reader``) equals ``source()``."""

    def same() -> Any:
        receiver.post("/api/v1/federation/provisions/pull", {})
        want = source()
        got = _export(receiver, reader, code)
        return got == want and (got or True)

    return wait_for("the provided copy converged", same, within=120)


def test_the_province_pulls_a_city_topic_and_converges_after_outages(pair: Pair) -> None:
    city_code = _slug_code(pair.city, "enterprise-registration")
    resp = pair.city.post("/api/v1/federation/publications", {"resource_codes": [city_code]})
    assert resp.status_code == 200, resp.text
    mounted = _mounted(pair.province, city_code)
    # The chain: the city grants the province (its unit gdzsj), the province its department.
    _apply(pair.city, "gdzsj", city_code, ITEMS)
    _apply(pair.province, "gd-scjgj", mounted, ITEMS)
    # Before provision is enabled, the province has nothing to export, and says so.
    early = httpx.get(
        f"{pair.province.url}/api/v1/exchange/{mounted}/export",
        headers=pair.province.key("gd-scjgj"),
    )
    assert early.status_code == 409, early.text
    assert early.json()["error"]["code"] == "client.not_provided"
    enable = pair.province.post("/api/v1/federation/provisions", {"resource_codes": [mounted]})
    assert enable.status_code == 200, enable.text
    assert enable.json() == {"enabled": [mounted], "already": []}

    def at_city() -> list[dict[str, Any]]:
        return _export(pair.city, "gdzsj", city_code)

    first = _converged(pair, pair.province, "gd-scjgj", mounted, at_city)
    keys = [r["credit_code"] for r in first]
    assert len(keys) == len(set(keys)) > 1000  # nothing twice
    state = _provision(pair.province, mounted)
    assert state is not None
    assert state["records"] == len(first)
    assert state["rows"] > 0
    assert state["changes"] is not None

    # The province goes down; meanwhile enterprises register at the city (new rows, and
    # change events in the city's outbox).
    pair.province.stop()
    try:
        operator = {"Authorization": f"Bearer {pair.city.operator}"}
        for _ in range(3):
            made = httpx.post(
                f"{pair.city.url}/departments/_changes/enterprise_registration", headers=operator
            )
            assert made.status_code == 201, made.text
    finally:
        pair.province.start()
    after_outage = _converged(pair, pair.province, "gd-scjgj", mounted, at_city)
    assert len(after_outage) == len(first) + 3
    keys = [r["credit_code"] for r in after_outage]
    assert len(keys) == len(set(keys))

    # The city restarts too (its mock departments forget what they were made to do; its
    # outbox does not), and an enterprise changes: the change reaches the copy.
    pair.city.stop()
    pair.city.start()
    changed = httpx.post(
        f"{pair.city.url}/departments/_changes/enterprise_change",
        headers={"Authorization": f"Bearer {pair.city.operator}"},
    )
    assert changed.status_code == 201, changed.text
    event = changed.json()["events"][0]
    want = {k: event["record"][k] for k in ITEMS}

    def has_change() -> Any:
        pair.province.post("/api/v1/federation/provisions/pull", {})
        copy = _export(pair.province, "gd-scjgj", mounted)
        return want in copy and copy

    final = wait_for("the change in the province's copy", has_change, within=120)
    assert len({r["credit_code"] for r in final}) == len(final) == len(after_outage)
    # The pages stored along the way are pruned (folded into one beside the newest), and
    # the copy read over them is the same, record for record, in the same order.
    wait_for(
        "the stored pages pruned",
        lambda: (p := _provision(pair.province, mounted)) is not None and p["batches"] <= 2,
    )
    assert _export(pair.province, "gd-scjgj", mounted) == final

    # Counted on both sides: what the province stored, what the city provided. Read in
    # the order the counts can only grow in (a pull may still be storing a page): what is
    # stored first, then what was received, then what was provided. Read the other way, a
    # page stored between the reads made the province hold more than it had received
    # (5,007 against 5,006, once in CI).
    stored = _provision(pair.province, mounted)
    province = pair.province.get("/api/v1/federation/status")
    city = pair.city.get("/api/v1/federation/status")
    assert stored is not None
    assert province["records_received"] >= stored["records"] >= len(final)
    assert city["records_provided"] >= province["records_received"]
    published = pair.city.get("/api/v1/federation/publications")["items"]
    assert next(p for p in published if p["resource_code"] == city_code)["records_provided"] > 0


def test_each_page_is_in_both_audit_trails_under_one_id(pair: Pair) -> None:
    city_code = _slug_code(pair.city, "household-registration")
    pair.city.post("/api/v1/federation/publications", {"resource_codes": [city_code]})
    mounted = _mounted(pair.province, city_code)
    _apply(pair.city, "gdzsj", city_code, ["id_number", "name"])
    pair.province.post("/api/v1/federation/provisions", {"resource_codes": [mounted]})

    def a_page() -> Any:
        pair.province.post("/api/v1/federation/provisions/pull", {})
        entries = pair.province.get(
            "/api/v1/audit/entries", kind="federation", outcome="ok", limit=1000
        )["entries"]
        pages = [e for e in entries if e["resource_code"] == mounted and e["records"] > 0]
        return pages and pages[-1]

    page = wait_for("a provision page audited at the province", a_page)

    def both() -> Any:
        resp = httpx.get(
            f"{pair.province.url}/api/v1/federation/exchanges/{page['request_id']}",
            headers=pair.province.op,
        )
        return resp.status_code == 200 and resp.json()["peer"] and resp.json()

    record = wait_for("the city's record of the page", both)
    assert [e["correlation_id"] for e in record["peer"]] == [page["request_id"]]
    assert record["peer"][0]["consumer"] == "gdzsj"
    assert record["peer"][0]["records"] == page["records"]


def test_a_provision_without_the_citys_grant_is_refused_and_stores_nothing(pair: Pair) -> None:
    city_code = _slug_code(pair.city, "tax-registration")
    pair.city.post("/api/v1/federation/publications", {"resource_codes": [city_code]})
    mounted = _mounted(pair.province, city_code)
    enable = pair.province.post("/api/v1/federation/provisions", {"resource_codes": [mounted]})
    assert enable.status_code == 200, enable.text

    def refused() -> Any:
        pair.province.post("/api/v1/federation/provisions/pull", {})
        state = _provision(pair.province, mounted)
        return state and state["last_error"] and state

    state = wait_for("the refusal recorded", refused)
    assert "no_grant" in state["last_error"] or "peer_refused" in state["last_error"]
    assert state["records"] == 0
    assert state["rows"] == 0
    unknown = pair.province.post(
        "/api/v1/federation/provisions", {"resource_codes": ["101001001/999999"]}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_mounted"


def test_provincial_data_flows_back_down_to_a_city_department(pair: Pair) -> None:
    """回流: the province publishes its topic, the city mounts it and pulls its records;
    a city department with a grant reads them at the city, filtered to its grant."""
    prov_code = _slug_code(pair.province, "provincial-credit-publicity")
    resp = pair.province.post("/api/v1/federation/publications", {"resource_codes": [prov_code]})
    assert resp.status_code == 200, resp.text
    mounted = _mounted(pair.city, prov_code)
    _apply(pair.province, "gz", prov_code, ["credit_code", "name", "list_status"])
    _apply(pair.city, "scjgj", mounted, ["credit_code", "list_status"])
    pair.city.post("/api/v1/federation/provisions", {"resource_codes": [mounted]})

    def at_province() -> list[dict[str, Any]]:
        return [
            {k: r[k] for k in ("credit_code", "list_status") if k in r}
            for r in _export(pair.province, "gz", prov_code)
        ]

    copy = _converged(pair, pair.city, "scjgj", mounted, at_province)
    assert copy
    assert all(set(r) <= {"credit_code", "list_status"} for r in copy)


def test_a_city_department_queries_a_provincial_topic_through_both_exchanges(
    pair: Pair,
) -> None:
    """The downward lookup: the city's broker asks the province's federation endpoint."""
    prov_code = _slug_code(pair.province, "provincial-credit-publicity")
    pair.province.post("/api/v1/federation/publications", {"resource_codes": [prov_code]})
    mounted = _mounted(pair.city, prov_code)
    _apply(pair.province, "gz", prov_code, ["credit_code", "name", "list_status"])
    _apply(pair.city, "swj", mounted, ["credit_code", "list_status"])
    code = City(2020, 100_000, 5000).sample_credit_codes(1, seed=7)[0]
    resp = pair.city.post(
        f"/api/v1/exchange/{mounted}/query",
        {"keys": [code], "items": ["credit_code", "list_status"]},
        pair.city.key("swj"),
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    found = answer["records"] + [{"credit_code": k} for k in answer["not_found"]]
    assert [r["credit_code"] for r in found] == [code]
    assert all(set(r) <= {"credit_code", "list_status"} for r in answer["records"])
    rid = answer["request_id"]

    def both() -> Any:
        resp = httpx.get(f"{pair.city.url}/api/v1/federation/exchanges/{rid}", headers=pair.city.op)
        return resp.status_code == 200 and resp.json()["peer"] and resp.json()

    record = wait_for("both audit trails", both)
    assert [e["consumer"] for e in record["here"]] == ["swj"]
    assert [(e["correlation_id"], e["consumer"], e["outcome"]) for e in record["peer"]] == [
        (rid, "gz", "ok")
    ]
    assert record["peer"][0]["provider"] == "gd-scjgj"
    # An item the province did not grant the city is refused, and the refusal says where.
    refused = pair.city.post(
        f"/api/v1/exchange/{mounted}/query",
        {"keys": [code], "items": ["latest_penalty_reason"]},
        pair.city.key("swj"),
    )
    assert refused.status_code == 403, refused.text
