"""The city and the province over real HTTP: catalogs published upward and mounted, a
provincial department's lookup through both exchanges, both audit trails, forged calls,
revocation, and a province that was down catching up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from tests.federation.pair import PROVINCE_SECRET, Pair, make_pair, wait_for

from exchange.departments.city import City
from exchange.provider_auth import ProviderSigner, derive_provider_secret

pytestmark = pytest.mark.e2e

ENTERPRISE, TAX, HOUSEHOLD = "enterprise-registration", "tax-registration", "household-registration"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    pair = make_pair(tmp_path_factory.mktemp("federation"))
    try:
        pair.province.start()
        pair.city.start()
        # The slugs as resource codes of the city's catalog (assigned at seeding).
        topics = pair.city.get("/api/v1/catalog/topics", limit=100)["items"]
        by_slug = {t["slug"]: t["resource_code"] for t in topics if t.get("slug")}
        global ENTERPRISE, TAX, HOUSEHOLD
        ENTERPRISE, TAX, HOUSEHOLD = by_slug[ENTERPRISE], by_slug[TAX], by_slug[HOUSEHOLD]
        yield pair
    finally:
        pair.stop()


def _codes(pair: Pair) -> dict[str, str]:
    """City resource code → the province's code of its mounted copy."""
    topics = pair.province.get("/api/v1/catalog/topics", provider="gz", limit=100)["items"]
    out = {}
    for t in topics:
        origin = [tag for tag in t["tags"] if tag.startswith("源目录 ")]
        if origin and t["status"] == "published":
            out[origin[0].removeprefix("源目录 ")] = t["resource_code"]
    return out


def _published(pair: Pair, *codes: str) -> dict[str, str]:
    resp = pair.city.post("/api/v1/federation/publications", {"resource_codes": list(codes)})
    assert resp.status_code == 200, resp.text
    return wait_for(
        "mounted at the province", lambda: (m := _codes(pair)) and set(codes) <= set(m) and m
    )


def _apply(platform: Any, who: str, topic: str, items: list[str]) -> dict[str, Any]:
    resp = platform.post(
        "/api/v1/applications",
        {
            "topic": topic,
            "items": items,
            "purpose": {"scope": "data_verification", "text": "企业登记与纳税状况核验"},
            "legal_function": "《广东省市场监督管理条例》",
            "valid_until": "2029-12-31",
        },
        platform.key(who),
    )
    assert resp.status_code in (200, 201), resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_published_topics_are_mounted_once_with_the_city_as_provider(pair: Pair) -> None:
    mounted = _published(pair, ENTERPRISE, HOUSEHOLD)
    topic = pair.province.get(f"/api/v1/catalog/topics/{mounted[ENTERPRISE]}")
    assert topic["provider"] == "gz"
    city_topic = pair.city.get(f"/api/v1/catalog/topics/{ENTERPRISE}")
    assert [i["field"] for i in topic["items"]] == [i["field"] for i in city_topic["items"]]
    assert [i["sharing_type"] for i in topic["items"]] == [
        i["sharing_type"] for i in city_topic["items"]
    ]
    # Publishing again and syncing again change nothing: one mount per city topic.
    again = pair.city.post("/api/v1/federation/publications", {"resource_codes": [ENTERPRISE]})
    assert again.json() == {"published": [], "already": [ENTERPRISE]}
    assert pair.province.post("/api/v1/federation/sync", {}).status_code == 200
    assert list(_codes(pair).values()).count(mounted[ENTERPRISE]) == 1
    status = pair.province.get("/api/v1/federation/status")
    assert status["level"] == "province"
    assert status["mounted"] == len(_codes(pair))


def test_a_change_at_the_city_reaches_the_mounted_copy(pair: Pair) -> None:
    mounted = _published(pair, HOUSEHOLD)
    abstract = f"户籍登记信息(变更 {uuid.uuid4().hex[:6]})"
    resp = httpx.patch(
        f"{pair.city.url}/api/v1/catalog/topics/{HOUSEHOLD}",
        json={"abstract": abstract, "reason": "摘要更新"},
        headers=pair.city.op,
    )
    assert resp.status_code == 200, resp.text
    wait_for(
        "the change mounted",
        lambda: (
            pair.province.get(f"/api/v1/catalog/topics/{mounted[HOUSEHOLD]}")["abstract"]
            == abstract
        ),
    )


def test_a_provincial_department_queries_a_city_topic_through_both_exchanges(pair: Pair) -> None:
    mounted = _published(pair, ENTERPRISE)
    items = ["credit_code", "name", "status"]
    # The chain: the city grants the province (its unit gdzsj), the province its department.
    assert _apply(pair.city, "gdzsj", ENTERPRISE, items)["status"] == "approved"
    assert _apply(pair.province, "gd-scjgj", mounted[ENTERPRISE], items)["status"] == "approved"
    code = City(2020, 100_000, 20_000).sample_credit_codes(1, seed=3)[0]
    resp = pair.province.post(
        f"/api/v1/exchange/{mounted[ENTERPRISE]}/query",
        {"keys": [code], "items": ["credit_code", "name"]},
        pair.province.key("gd-scjgj"),
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert [set(r) for r in answer["records"]] == [{"credit_code", "name"}]
    assert answer["records"][0]["credit_code"] == code
    rid = answer["request_id"]

    # Both audit trails hold the exchange under the province's request id.
    # (Entries are durable before the answer; they reach the table in the writer's next
    # group commit.)
    def both() -> Any:
        resp = httpx.get(
            f"{pair.province.url}/api/v1/federation/exchanges/{rid}", headers=pair.province.op
        )
        return resp.status_code == 200 and resp.json()["peer"] and resp.json()

    record = wait_for("both audit trails", both)
    assert [e["consumer"] for e in record["here"]] == ["gd-scjgj"]
    assert [(e["correlation_id"], e["consumer"], e["outcome"]) for e in record["peer"]] == [
        (rid, "gdzsj", "ok")
    ]
    assert record["peer"][0]["provider"] == "scjgj"
    # ... and the city shows the province's record of it.
    city_side = pair.city.get(f"/api/v1/federation/exchanges/{rid}")
    assert [e["request_id"] for e in city_side["peer"]] == [rid]


def test_a_mounted_topic_offers_no_verification(pair: Pair) -> None:
    """Verification (核验) is the providing platform's own service: a mounted copy says so
    rather than pretend, whoever asks and whatever the items."""
    mounted = _published(pair, ENTERPRISE)
    code = City(2020, 100_000, 20_000).sample_credit_codes(1, seed=3)[0]
    resp = pair.province.post(
        f"/api/v1/exchange/{mounted[ENTERPRISE]}/verify",
        {"key": code, "claims": {"name": "某某有限公司"}},
        pair.province.key("gd-scjgj"),
    )
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["code"] == "client.not_verifiable"
    assert "某某有限公司" not in resp.text


def test_a_refusal_at_the_city_says_which_platform_and_side(pair: Pair) -> None:
    mounted = _published(pair, TAX)
    # The province grants its department, but the city never granted the province.
    assert _apply(pair.province, "gd-scjgj", mounted[TAX], ["credit_code"])["status"] == "approved"
    code = City(2020, 100_000, 20_000).sample_credit_codes(1, seed=4)[0]
    resp = pair.province.post(
        f"/api/v1/exchange/{mounted[TAX]}/query",
        {"keys": [code], "items": ["credit_code"]},
        pair.province.key("gd-scjgj"),
    )
    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert error["code"] == "provider.peer_refused"
    assert error["detail"]["side"] == "provider"
    assert error["detail"]["platform"] == "city"
    assert error["detail"]["peer"]["code"] == "client.no_grant"
    assert error["detail"]["peer"]["side"] == "client"


def _signed_call(pair: Pair, path: str, body: bytes, rid: str) -> tuple[dict[str, str], bytes]:
    signer = ProviderSigner(derive_provider_secret(PROVINCE_SECRET, "gz"), "gz")
    headers = {
        "X-Request-Id": rid,
        "X-Exchange-Signature": signer.sign("POST", path.encode(), body, rid),
        "Content-Type": "application/json",
    }
    return headers, body


def _refusals(pair: Pair, outcome: str) -> int:
    entries = pair.city.get("/api/v1/audit/entries", outcome=outcome, limit=1000)
    return len(entries["entries"])


def test_forged_replayed_and_altered_calls_are_refused_and_audited(pair: Pair) -> None:
    _published(pair, ENTERPRISE)
    path = f"/api/v1/federation/topics/{ENTERPRISE}/query"
    code = City(2020, 100_000, 20_000).sample_credit_codes(1, seed=5)[0]
    body = orjson.dumps({"keys": [code], "consumer": "gd-scjgj", "grant_id": None})
    before = {
        o: _refusals(pair, o) for o in ("client.signature_invalid", "client.signature_replayed")
    }
    # Wrong credential.
    forged = ProviderSigner("exps_gz_not-the-credential", "gz")
    rid = uuid.uuid4().hex
    resp = httpx.post(
        pair.city.url + path,
        content=body,
        headers={
            "X-Request-Id": rid,
            "X-Exchange-Signature": forged.sign("POST", path.encode(), body, rid),
        },
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "client.signature_invalid"
    # A genuine call passes once; replayed it is refused; altered it is refused.
    headers, signed = _signed_call(pair, path, body, uuid.uuid4().hex)
    first = httpx.post(pair.city.url + path, content=signed, headers=headers)
    assert first.status_code != 401, first.text
    replay = httpx.post(pair.city.url + path, content=signed, headers=headers)
    assert replay.json()["error"]["code"] == "client.signature_replayed"
    headers, signed = _signed_call(pair, path, body, uuid.uuid4().hex)
    altered = httpx.post(
        pair.city.url + path, content=signed.replace(b"gd-scjgj", b"gd-gat00"), headers=headers
    )
    assert altered.json()["error"]["code"] == "client.signature_invalid"
    wait_for(
        "the refusals audited",
        lambda: (
            _refusals(pair, "client.signature_invalid") >= before["client.signature_invalid"] + 2
            and _refusals(pair, "client.signature_replayed")
            >= before["client.signature_replayed"] + 1
        ),
    )


def test_a_grant_revoked_at_the_province_stops_the_city_at_once(pair: Pair) -> None:
    mounted = _published(pair, HOUSEHOLD)
    items = ["id_number", "name"]
    _apply(pair.city, "gdzsj", HOUSEHOLD, items)
    _apply(pair.province, "gd-gat", mounted[HOUSEHOLD], items)
    grants = pair.province.get("/api/v1/grants", pair.province.key("gd-gat"))
    grants = grants["items"] if isinstance(grants, dict) else grants
    grant_id = next(g["id"] for g in grants if g["topic"] == mounted[HOUSEHOLD])
    person = City(2020, 100_000, 20_000).sample_id_numbers(1, seed=6)[0]
    query = {"keys": [person], "items": items}
    ok = pair.province.post(
        f"/api/v1/exchange/{mounted[HOUSEHOLD]}/query", query, pair.province.key("gd-gat")
    )
    assert ok.status_code == 200, ok.text
    resp = pair.province.post(f"/api/v1/grants/{grant_id}/revoke", {"reason": "职能调整"})
    assert resp.status_code == 200, resp.text
    # The province refuses at once ...
    refused = pair.province.post(
        f"/api/v1/exchange/{mounted[HOUSEHOLD]}/query", query, pair.province.key("gd-gat")
    )
    assert refused.json()["error"]["code"] == "client.grant_revoked"
    # ... and the city refuses that grant whoever asks in its name, once told.
    path = f"/api/v1/federation/topics/{HOUSEHOLD}/query"
    body = orjson.dumps({"keys": [person], "consumer": "gd-gat", "grant_id": grant_id})

    def city_refuses() -> bool:
        headers, signed = _signed_call(pair, path, body, uuid.uuid4().hex)
        resp = httpx.post(pair.city.url + path, content=signed, headers=headers)
        return resp.status_code == 403 and resp.json()["error"]["code"] == "client.grant_revoked"

    wait_for("the city refuses the revoked grant", city_refuses, within=20)


def test_a_province_that_was_down_catches_up_without_duplicates(pair: Pair) -> None:
    mounted = _published(pair, ENTERPRISE, HOUSEHOLD)
    extra = pair.city.get("/api/v1/catalog/topics", provider="mzj", limit=5)["items"]
    codes = [t["resource_code"] for t in extra[:2]]
    pair.province.stop()
    try:
        resp = pair.city.post("/api/v1/federation/publications", {"resource_codes": codes})
        assert resp.status_code == 200, resp.text
        retire = pair.city.post(f"/api/v1/catalog/topics/{codes[0]}/retire", {"reason": "职能划转"})
        assert retire.status_code == 200, retire.text
    finally:
        pair.province.start()
    live = wait_for(
        "caught up",
        lambda: (m := _codes(pair)) and codes[1] in m and codes[0] not in m and m,
    )
    assert live[ENTERPRISE] == mounted[ENTERPRISE]
    topics = pair.province.get(
        "/api/v1/catalog/topics", provider="gz", limit=100, status="retired"
    )["items"]
    retired_origins = [tag for t in topics for tag in t["tags"] if tag == f"源目录 {codes[0]}"]
    assert len(retired_origins) == 1
    everything = pair.province.get("/api/v1/catalog/topics", provider="gz", limit=100)["items"]
    origins = [tag for t in everything for tag in t["tags"] if tag.startswith("源目录 ")]
    assert len(origins) == len(set(origins))  # nothing mounted twice
