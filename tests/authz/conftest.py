"""Fixtures for the authorization tests: three departments and three topics, one of each
sharing shape (mixed items, wholly conditional, wholly not shared)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR, make_department

LEGAL_BASIS = "《中华人民共和国居民身份证法》第十九条"

# Provider gaj: two unconditional items, one conditional, one not shared.
PERSON: dict[str, Any] = {
    "category": "101001001",
    "group": "basic",
    "name": "人口基础信息",
    "provider": "gaj",
    "abstract": "本市户籍人口的基础信息。",
    "resource_type": "interface",
    "items": [
        {"field": "id_number", "name": "公民身份号码", "sharing_type": "unconditional"},
        {"field": "name", "name": "姓名", "sharing_type": "unconditional"},
        {"field": "photo", "name": "相片", "sharing_type": "conditional"},
        {"field": "criminal_record", "name": "违法犯罪记录", "sharing_type": "not_shared"},
    ],
    "sharing": {"type": "unconditional", "legal_basis": LEGAL_BASIS},
    "update_cycle": "realtime",
}

# Provider mzj: every item conditional.
MARRIAGE: dict[str, Any] = {
    "category": "101003001",
    "group": "basic",
    "name": "婚姻登记信息",
    "provider": "mzj",
    "abstract": "结婚、离婚登记信息",
    "resource_type": "table",
    "items": [
        {"field": "id_number", "name": "身份证号", "sharing_type": "conditional"},
        {"field": "status", "name": "婚姻状况", "sharing_type": "conditional"},
        {"field": "registered_on", "name": "登记日期", "sharing_type": "conditional"},
    ],
    "sharing": {"type": "conditional", "conditions": "仅限办理婚姻相关业务的部门"},
    "update_cycle": "daily",
}

# Provider gaj: not shared at all.
SECRET: dict[str, Any] = {
    "category": "301002001",
    "group": "departmental",
    "name": "侦查信息",
    "provider": "gaj",
    "abstract": "刑事侦查工作信息",
    "resource_type": "table",
    "items": [{"field": "case_no", "name": "案件编号", "sharing_type": "not_shared"}],
    "sharing": {"type": "not_shared", "legal_basis": "《中华人民共和国刑事诉讼法》"},
    "update_cycle": "irregular",
}


@pytest.fixture
def depts(client: TestClient) -> dict[str, dict[str, str]]:
    """gaj and mzj provide; rsj consumes; swj is an unrelated third department."""
    return {
        "gaj": make_department(client, "gaj", "广州市公安局"),
        "mzj": make_department(client, "mzj", "广州市民政局"),
        "rsj": make_department(client, "rsj", "广州市人力资源和社会保障局"),
        "swj": make_department(client, "swj", "国家税务总局广州市税务局"),
    }


@pytest.fixture
def topics(client: TestClient, depts: dict[str, dict[str, str]]) -> dict[str, str]:
    """Resource codes of the three topics."""
    out = {}
    for key, body, provider in (
        ("person", PERSON, "gaj"),
        ("marriage", MARRIAGE, "mzj"),
        ("secret", SECRET, "gaj"),
    ):
        resp = client.post("/api/v1/catalog/topics", json=body, headers=depts[provider])
        assert resp.status_code == 201, resp.text
        out[key] = resp.json()["resource_code"]
    return out


def today(client: TestClient) -> dt.date:
    return dt.date.fromisoformat(client.get("/api/v1/clock", headers=OPERATOR).json()["today"])


def application(
    topic: str, items: list[str], *, days: int = 365, quota: int | None = None, **extra: Any
) -> dict[str, Any]:
    """An application body valid from today for ``days`` days."""
    body: dict[str, Any] = {
        "topic": topic,
        "items": items,
        "purpose": {"scope": "data_verification", "text": "社会保险待遇资格核验"},
        "legal_function": "《社会保险法》第八条: 社会保险经办机构核定待遇",
        "valid_until": (dt.date.today() + dt.timedelta(days=days)).isoformat(),
        "delivery": "interface",
        **extra,
    }
    if quota is not None:
        body["daily_quota"] = quota
    return body


def apply(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("/api/v1/applications", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


def check(
    client: TestClient,
    consumer: str,
    topic: str,
    items: list[str] | None = None,
    records: int = 1,
) -> dict[str, Any]:
    body: dict[str, Any] = {"consumer": consumer, "topic": topic, "records": records}
    if items is not None:
        body["items"] = items
    resp = client.post("/api/v1/authz/check", json=body, headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def advance(client: TestClient, by: str) -> None:
    resp = client.post("/api/v1/clock/advance", json={"by": by}, headers=OPERATOR)
    assert resp.status_code == 200, resp.text


def outcomes(app: dict[str, Any]) -> dict[str, str]:
    return {d["field"]: d["outcome"] for d in app["decisions"]}
