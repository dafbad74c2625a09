"""``category`` names the platform's three groups (基础信息 / 部门信息 / 专项信息); the old
``thematic`` (the national classification 2) still answers, marked deprecated."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.authz.conftest import depts, topics  # noqa: F401  (fixtures)
from tests.conftest import OPERATOR

THEMATIC: dict[str, Any] = {
    "category": "201001001",
    "group": "special",
    "name": "就业创业服务信息",
    "provider": "rsj",
    "abstract": "就业登记与创业补贴",
    "resource_type": "table",
    "items": [{"field": "id_number", "name": "身份证号", "sharing_type": "unconditional"}],
    "sharing": {"type": "unconditional"},
    "update_cycle": "daily",
}


def _names(client: TestClient, **params: str) -> set[str]:
    resp = client.get("/api/v1/catalog/topics", params=params, headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    assert "Deprecation" not in resp.headers
    return {t["name"] for t in resp.json()["items"]}


@pytest.fixture
def special(client: TestClient, depts: dict[str, dict[str, str]]) -> str:  # noqa: F811
    resp = client.post("/api/v1/catalog/topics", json=THEMATIC, headers=depts["rsj"])
    assert resp.status_code == 201, resp.text
    code: str = resp.json()["resource_code"]
    return code


@pytest.mark.usefixtures("topics", "special")
def test_category_is_the_platform_group(client: TestClient) -> None:
    assert _names(client, category="basic") == {"人口基础信息", "婚姻登记信息"}
    assert _names(client, category="departmental") == {"侦查信息"}
    assert _names(client, category="special") == {"就业创业服务信息"}
    # The same as group=…, which stays.
    assert _names(client, group="special") == {"就业创业服务信息"}
    assert _names(client, classification="thematic") == {"就业创业服务信息"}
    assert _names(client, category="3") == {"侦查信息"}


@pytest.mark.usefixtures("topics", "special")
def test_thematic_is_answered_and_marked_deprecated(client: TestClient) -> None:
    resp = client.get("/api/v1/catalog/topics?category=thematic", headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Deprecation"] == "true"
    assert "classification=thematic" in resp.headers["Warning"]
    assert [t["name"] for t in resp.json()["items"]] == ["就业创业服务信息"]


@pytest.mark.usefixtures("topics")
def test_an_unknown_category_names_the_three_groups(client: TestClient) -> None:
    resp = client.get("/api/v1/catalog/topics?category=bogus", headers=OPERATOR)
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "invalid_category"
    assert "basic, departmental, special" in err["message"]
