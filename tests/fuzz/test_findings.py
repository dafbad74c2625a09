"""Inputs that answered 5xx before (Schemathesis and the issue's reports): each is a 4xx now.

Every test runs on SQLite and PostgreSQL: several (over-long strings, NUL characters) only
failed on PostgreSQL, whose column types are strict.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.catalog.test_catalog_api import HUKOU
from tests.conftest import OPERATOR, make_department

BIG = 2**63  # one past BIGINT: drivers raise OverflowError on it


def error_code(resp: object, status: int) -> str:
    assert getattr(resp, "status_code", None) == status, getattr(resp, "text", resp)
    code: str = resp.json()["error"]["code"]  # type: ignore[attr-defined]
    return code


@pytest.mark.parametrize("body", [{"active": None}, {"name": None}])
def test_patch_department_with_null_for_a_required_field_is_422(
    client: TestClient, body: dict[str, object]
) -> None:
    make_department(client, "nul-a", "空值局")
    resp = client.patch("/api/v1/departments/nul-a", json=body, headers=OPERATOR)
    assert error_code(resp, 422) == "validation_failed"
    # nothing changed
    got = client.get("/api/v1/departments/nul-a", headers=OPERATOR).json()
    assert (got["name"], got["active"]) == ("空值局", True)


def test_patch_department_clears_nullable_fields_with_null(client: TestClient) -> None:
    make_department(client, "nul-b", short_name="乙", base_url="http://127.0.0.1:9/x")
    resp = client.patch(
        "/api/v1/departments/nul-b", json={"short_name": None, "base_url": None}, headers=OPERATOR
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["short_name"], resp.json()["base_url"]) == (None, None)


def test_patch_department_to_another_departments_name_is_409(client: TestClient) -> None:
    make_department(client, "name-a", "甲局")
    make_department(client, "name-b", "乙局")
    resp = client.patch("/api/v1/departments/name-b", json={"name": "甲局"}, headers=OPERATOR)
    assert error_code(resp, 409) == "department_exists"
    # its own name again is no conflict
    same = client.patch("/api/v1/departments/name-b", json={"name": "乙局"}, headers=OPERATOR)
    assert same.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "名" * 101}, "name"),
        ({"short_name": "短" * 41}, "short_name"),
        ({"base_url": "http://127.0.0.1/" + "p" * 500}, "base_url"),
        ({"name": "空\x00字符"}, "name"),
        ({"short_name": "\x00"}, "short_name"),
        ({"base_url": "http://127.0.0.1/\x00"}, "base_url"),
    ],
)
def test_text_too_long_for_its_column_or_with_nul_is_422(
    client: TestClient, body: dict[str, str], field: str
) -> None:
    make_department(client, "text-a")
    resp = client.patch("/api/v1/departments/text-a", json=body, headers=OPERATOR)
    assert error_code(resp, 422) == "validation_failed"
    assert resp.json()["error"]["detail"]["field"] == field


def test_new_department_with_nul_or_long_short_name_is_422(client: TestClient) -> None:
    for extra in ({"short_name": "x" * 41}, {"name": "名\x00"}):
        body = {"code": "nul-c", "name": "某局", "kind": "municipal", **extra}
        resp = client.post("/api/v1/departments", json=body, headers=OPERATOR)
        assert error_code(resp, 422) == "validation_failed"


def test_nul_in_a_query_or_path_is_422(client: TestClient) -> None:
    resp = client.get("/api/v1/audit/entries", params={"consumer": "a\x00b"}, headers=OPERATOR)
    assert error_code(resp, 422) == "nul_in_url"
    resp = client.get("/api/v1/departments/a%00b", headers=OPERATOR)
    assert error_code(resp, 422) == "nul_in_url"


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/audit/entries?after={BIG}",
        f"/api/v1/catalog/changes?after={BIG}",
        f"/api/v1/catalog/changes?after={2**31}",  # its cursor column is an INTEGER
        f"/api/v1/catalog/topics?offset={BIG}",
        f"/api/v1/catalog/topics?offset={10**30}",
        f"/api/v1/catalog/topics/101001001/000001/versions/{2**31}",
        f"/api/v1/catalog/topics/101001001/000001/versions/{BIG}",
        "/api/v1/catalog/topics/101001001/000001/versions/0",
    ],
)
def test_out_of_range_integers_are_422(client: TestClient, url: str) -> None:
    assert error_code(client.get(url, headers=OPERATOR), 422) == "validation_failed"


def test_largest_accepted_cursors_still_answer(client: TestClient) -> None:
    for url in (
        f"/api/v1/audit/entries?after={BIG - 1}",
        f"/api/v1/catalog/changes?after={2**31 - 1}",
    ):
        resp = client.get(url, headers=OPERATOR)
        assert resp.status_code == 200, resp.text


def test_catalog_text_too_long_or_with_nul_is_422(client: TestClient) -> None:
    make_department(client, "gaj", "公安局")
    topic = {k: v for k, v in HUKOU.items() if k != "slug"}
    for change in (
        {"tags": ["x" * 41]},
        {"tags": ["t"] * 51},
        {"format": "F" * 41},
        {"abstract": "摘\x00要"},
        {"items": [HUKOU["items"][0] | {"description": "d" * 1001}]},
        {"sharing": {"type": "unconditional", "conditions": "c" * 2001}},
    ):
        resp = client.post("/api/v1/catalog/topics", json=topic | change, headers=OPERATOR)
        assert error_code(resp, 422) == "validation_failed", change
    assert client.post("/api/v1/catalog/topics", json=topic, headers=OPERATOR).status_code == 201
