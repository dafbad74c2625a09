"""Catalog API: register, search (Chinese included), change with versions, retire, feed,
one datum one source, and bad input."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR, make_department

HUKOU: dict[str, Any] = {
    "category": "101001001",
    "group": "basic",
    "name": "户籍登记信息",
    "slug": "household-registration",
    "provider": "gaj",
    "abstract": "本市常住户籍人口的户籍登记信息，含身份证号码、姓名、性别、民族与户籍地址。",
    "format": "JSON",
    "resource_type": "interface",
    "items": [
        {
            "field": "id_number",
            "name": "公民身份号码",
            "sharing_type": "unconditional",
            "element": "person.id_number",
            "is_key": True,
        },
        {
            "field": "name",
            "name": "姓名",
            "sharing_type": "unconditional",
            "element": "person.name",
        },
        {"field": "sex", "name": "性别", "sharing_type": "unconditional", "element": "person.sex"},
        {
            "field": "photo",
            "name": "相片",
            "data_type": "binary",
            "sharing_type": "conditional",
            "element": "person.photo",
        },
    ],
    "sharing": {"type": "unconditional", "methods": ["interface"]},
    "update_cycle": "realtime",
    "api_path": "/topics/household-registration",
}


def marriage() -> dict[str, Any]:
    return {
        "category": "101003001",
        "group": "basic",
        "name": "婚姻登记信息",
        "provider": "mzj",
        "abstract": "结婚、离婚登记信息",
        "resource_type": "table",
        "items": [
            {
                "field": "male_id_number",
                "name": "男方身份证号",
                "sharing_type": "conditional",
                "element": "person.id_number",
                "is_source": False,
            },
            {
                "field": "registered_on",
                "name": "登记日期",
                "data_type": "date",
                "sharing_type": "conditional",
                "element": "marriage.registered_on",
            },
        ],
        "sharing": {"type": "conditional", "conditions": "仅限办理婚姻相关业务的部门"},
        "update_cycle": "daily",
    }


@pytest.fixture
def depts(client: TestClient) -> dict[str, dict[str, str]]:
    return {
        "gaj": make_department(client, "gaj", "广州市公安局"),
        "mzj": make_department(client, "mzj", "广州市民政局"),
    }


def register(client: TestClient, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    resp = client.post("/api/v1/catalog/topics", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


def test_register_assigns_codes_and_keeps_metadata(client: TestClient, depts: Any) -> None:
    first = register(client, HUKOU, depts["gaj"])
    assert first["resource_code"] == "101001001/000001"
    assert first["classification"] == "basic"
    assert first["version"] == 1
    assert first["status"] == "published"
    assert first["provider_name"] == "广州市公安局"
    second = register(client, {**marriage(), "category": "101001001"}, depts["mzj"])
    assert second["resource_code"] == "101001001/000002"
    got = client.get("/api/v1/catalog/topics/101001001/000001", headers=depts["mzj"]).json()
    assert got["items"][3]["name"] == "相片"
    assert got["history"][0]["version"] == 1


def test_search_finds_chinese_and_item_names_and_filters(client: TestClient, depts: Any) -> None:
    register(client, HUKOU, depts["gaj"])
    register(client, marriage(), depts["mzj"])
    h = depts["gaj"]
    res = client.get("/api/v1/catalog/topics", params={"q": "户籍"}, headers=h).json()
    assert [t["name"] for t in res["items"]] == ["户籍登记信息"]
    # An item name matches too; both topics carry an ID-number item.
    res = client.get("/api/v1/catalog/topics", params={"q": "身份证"}, headers=h).json()
    assert res["total"] == 2
    res = client.get(
        "/api/v1/catalog/topics", params={"sharing_type": "conditional"}, headers=h
    ).json()
    assert [t["name"] for t in res["items"]] == ["婚姻登记信息"]
    res = client.get(
        "/api/v1/catalog/topics",
        params={"provider": "gaj", "resource_type": "interface"},
        headers=h,
    ).json()
    assert res["total"] == 1
    res = client.get("/api/v1/catalog/topics", params={"category": "1010030"}, headers=h).json()
    assert res["total"] == 1
    res = client.get("/api/v1/catalog/topics", params={"q": "户籍 婚姻"}, headers=h).json()
    assert res["total"] == 0
    page = client.get("/api/v1/catalog/topics", params={"limit": 1, "offset": 1}, headers=h).json()
    assert page["total"] == 2
    assert len(page["items"]) == 1


def test_change_creates_version_and_records_what_changed(client: TestClient, depts: Any) -> None:
    register(client, HUKOU, depts["gaj"])
    items = [i for i in HUKOU["items"] if i["field"] != "photo"]
    items.append(
        {
            "field": "ethnicity",
            "name": "民族",
            "sharing_type": "unconditional",
            "element": "person.ethnicity",
        }
    )
    resp = client.patch(
        "/api/v1/catalog/topics/101001001/000001",
        json={"items": items, "update_cycle": "daily", "reason": "去除相片，新增民族"},
        headers=depts["gaj"],
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["version"] == 2
    change = body["history"][1]
    assert change["reason"] == "去除相片，新增民族"
    assert change["changes"]["items"] == {"added": ["ethnicity"], "removed": ["photo"]}
    assert change["changes"]["update_cycle"] == {"from": "realtime", "to": "daily"}
    old = client.get(
        "/api/v1/catalog/topics/101001001/000001/versions/1", headers=depts["gaj"]
    ).json()
    assert {i["field"] for i in old["metadata"]["items"]} >= {"photo"}
    # The freed element can now be sourced by someone else; the new one cannot.
    sources = client.get("/api/v1/catalog/sources", headers=depts["gaj"]).json()
    assert "person.photo" not in sources
    assert sources["person.ethnicity"]["provider"] == "gaj"


def test_only_the_provider_or_operator_changes_a_topic(client: TestClient, depts: Any) -> None:
    register(client, HUKOU, depts["gaj"])
    url = "/api/v1/catalog/topics/101001001/000001"
    resp = client.patch(url, json={"name": "户籍信息"}, headers=depts["mzj"])
    assert resp.status_code == 403
    assert client.patch(url, json={"name": "户籍信息"}, headers=OPERATOR).status_code == 200
    resp = client.post("/api/v1/catalog/topics", json=HUKOU | {"slug": None}, headers=depts["mzj"])
    assert resp.status_code == 403


def test_retire_keeps_topic_readable_and_frees_sources(client: TestClient, depts: Any) -> None:
    register(client, HUKOU, depts["gaj"])
    url = "/api/v1/catalog/topics/101001001/000001"
    assert client.post(url + "/retire", json={}, headers=depts["gaj"]).status_code == 422
    resp = client.post(url + "/retire", json={"reason": "由新版户籍目录替代"}, headers=depts["gaj"])
    assert resp.status_code == 200
    assert resp.json()["status"] == "retired"
    assert resp.json()["retire_reason"] == "由新版户籍目录替代"
    assert client.get(url, headers=depts["mzj"]).json()["status"] == "retired"
    again = client.post(url + "/retire", json={"reason": "x"}, headers=depts["gaj"])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "topic_retired"
    assert client.patch(url, json={"name": "新名称"}, headers=depts["gaj"]).status_code == 409
    # Default search shows published topics; status=retired finds it.
    h = depts["gaj"]
    assert (
        client.get("/api/v1/catalog/topics", params={"q": "户籍"}, headers=h).json()["total"] == 0
    )
    res = client.get("/api/v1/catalog/topics", params={"q": "户籍", "status": "retired"}, headers=h)
    assert res.json()["total"] == 1
    # Its elements are free: a successor may source them.
    successor = HUKOU | {"slug": "household-registration-v2", "name": "户籍登记信息(新版)"}
    register(client, successor, depts["gaj"])


def test_one_datum_one_source(client: TestClient, depts: Any) -> None:
    register(client, HUKOU, depts["gaj"])
    clash = marriage()
    clash["items"][0]["is_source"] = True
    resp = client.post("/api/v1/catalog/topics", json=clash, headers=depts["mzj"])
    assert resp.status_code == 409
    err = resp.json()["error"]
    assert err["code"] == "source_conflict"
    assert "gaj" in err["message"]
    assert err["detail"]["conflicts"][0]["resource_code"] == "101001001/000001"
    # Re-sharing as non-source is fine.
    register(client, marriage(), depts["mzj"])


def test_change_feed_orders_every_write(client: TestClient, depts: Any) -> None:
    register(client, HUKOU, depts["gaj"])
    register(client, marriage(), depts["mzj"])
    client.patch(
        "/api/v1/catalog/topics/101001001/000001", json={"name": "户籍信息"}, headers=depts["gaj"]
    )
    client.post(
        "/api/v1/catalog/topics/101003001/000001/retire",
        json={"reason": "停用"},
        headers=depts["mzj"],
    )
    feed = client.get("/api/v1/catalog/changes", params={"after": 0}, headers=depts["gaj"]).json()
    kinds = [(c["kind"], c["resource_code"], c["version"]) for c in feed["changes"]]
    assert kinds == [
        ("registered", "101001001/000001", 1),
        ("registered", "101003001/000001", 1),
        ("changed", "101001001/000001", 2),
        ("retired", "101003001/000001", 2),
    ]
    rest = client.get(
        "/api/v1/catalog/changes",
        params={"after": feed["changes"][1]["cursor"]},
        headers=depts["gaj"],
    ).json()
    assert len(rest["changes"]) == 2
    assert rest["next_cursor"] == feed["next_cursor"]
    empty = client.get(
        "/api/v1/catalog/changes",
        params={"after": feed["next_cursor"], "wait": 0.3},
        headers=depts["gaj"],
    ).json()
    assert empty["changes"] == []
    assert empty["next_cursor"] == feed["next_cursor"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["sharing"].update(type="conditional"), "sharing.conditions"),
        (lambda b: b.update(sharing={"type": "not_shared"}), "sharing.legal_basis"),
        (lambda b: b["items"][0].update(sharing_type="maybe"), "items.0.sharing_type"),
        (lambda b: b.update(category="401001001"), "category"),
        (lambda b: b.update(resource_type="spreadsheet"), "resource_type"),
        (lambda b: b.update(items=[]), "items"),
        (lambda b: b["items"].append(dict(b["items"][0])), "items.4.field"),
    ],
)
def test_invalid_metadata_is_422_naming_the_field(
    client: TestClient, depts: Any, mutate: Any, field: str
) -> None:
    body = copy.deepcopy(HUKOU)
    mutate(body)
    resp = client.post("/api/v1/catalog/topics", json=body, headers=depts["gaj"])
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert err["code"] == "validation_failed"
    assert field in err["message"]


def test_item_more_open_than_topic_is_refused(client: TestClient, depts: Any) -> None:
    body = marriage()
    body["items"][1]["sharing_type"] = "unconditional"
    resp = client.post("/api/v1/catalog/topics", json=body, headers=depts["mzj"])
    assert resp.status_code == 422
    assert "items.1.sharing_type" in resp.json()["error"]["message"]


def test_unknown_provider_and_codes(client: TestClient, depts: Any) -> None:
    resp = client.post(
        "/api/v1/catalog/topics", json=HUKOU | {"provider": "nobody"}, headers=OPERATOR
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "unknown_provider"
    resp = client.get("/api/v1/catalog/topics/101001001/999999", headers=OPERATOR)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "topic_not_found"
    resp = client.get("/api/v1/catalog/topics/1x1/000001", headers=OPERATOR)
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "invalid_resource_code"
    resp = client.post(
        "/api/v1/catalog/topics", json=HUKOU | {"related": ["101001001/000042"]}, headers=OPERATOR
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "unknown_related"
    assert client.get("/api/v1/catalog/topics").status_code == 401


def test_empty_change_is_refused(client: TestClient, depts: Any) -> None:
    register(client, HUKOU, depts["gaj"])
    url = "/api/v1/catalog/topics/101001001/000001"
    resp = client.patch(url, json={"reason": "nothing"}, headers=depts["gaj"])
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "empty_change"
    resp = client.patch(url, json={"name": HUKOU["name"]}, headers=depts["gaj"])
    assert resp.json()["error"]["code"] == "empty_change"
    bad = client.patch(url, json={"sharing": {"type": "conditional"}}, headers=depts["gaj"])
    assert bad.status_code == 422


def test_stats(client: TestClient, depts: Any) -> None:
    register(client, HUKOU, depts["gaj"])
    register(client, marriage(), depts["mzj"])
    resp = client.get("/api/v1/catalog/stats", headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    stats = resp.json()
    assert stats["total"] == 2
    assert stats["by_sharing_type"] == {"unconditional": 1, "conditional": 1}
    assert stats["providers"] == 2


def test_search_in_another_process_sees_new_topics(
    client: TestClient, depts: Any, settings: Any
) -> None:
    """Two exchange processes on one database: the other's index sees a new topic on its
    next search, with no wait (the commit's announcement marks it stale first)."""
    from exchange.app import build_context, create_app

    other_ctx = build_context(settings)
    try:
        with TestClient(create_app(settings, ctx=other_ctx)) as other:
            h = depts["gaj"]
            assert (
                other.get("/api/v1/catalog/topics", params={"q": "户籍"}, headers=h).json()["total"]
                == 0
            )
            register(client, HUKOU, h)
            found = other.get("/api/v1/catalog/topics", params={"q": "户籍"}, headers=h).json()
            assert [t["resource_code"] for t in found["items"]] == ["101001001/000001"]
    finally:
        other_ctx.db.dispose()
