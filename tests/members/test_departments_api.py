"""Member units: registration by the operator, keys shown once, 401/403 rules."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.conftest import OPERATOR, auth, make_department


def test_operator_creates_department_and_key_works(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/departments",
        json={
            "code": "gaj",
            "name": "广州市公安局",
            "kind": "municipal",
            "base_url": "http://127.0.0.1:9/departments/gaj",
        },
        headers=OPERATOR,
    )
    assert resp.status_code == 201
    body = resp.json()
    assert body["code"] == "gaj"
    key = body["api_key"]
    assert key.startswith("exk_gaj_")
    me = client.get("/api/v1/departments/me", headers=auth(key))
    assert me.status_code == 200
    assert me.json()["name"] == "广州市公安局"
    assert "api_key" not in me.json()


def test_the_exchange_assigns_request_ids_and_keeps_the_callers_as_correlation(
    client: TestClient,
) -> None:
    given = client.get("/healthz", headers={"X-Request-Id": "case-2026-0001"})
    assert given.headers["x-request-id"] not in ("", "case-2026-0001")
    assert given.headers["x-correlation-id"] == "case-2026-0001"
    for insane in (b"r" * 65, "办件-1".encode(), b"a\x01b"):
        resp = client.get("/healthz", headers={"X-Request-Id": insane})
        assert resp.headers["x-request-id"] not in ("", insane.decode("latin-1"))
        assert "x-correlation-id" not in resp.headers
    # Exchange calls take the broker's own dispatch: the same rule.
    url = "/api/v1/exchange/101001001/000001/query"
    kept = client.post(url, json={"keys": ["x"]}, headers={"X-Request-Id": "case-2026-0002"})
    assert kept.headers["x-request-id"] != "case-2026-0002"
    assert kept.headers["x-correlation-id"] == "case-2026-0002"
    assert kept.json()["error"]["request_id"] == kept.headers["x-request-id"]
    # Two callers sending the same id still get two request ids.
    again = client.post(url, json={"keys": ["x"]}, headers={"X-Request-Id": "case-2026-0002"})
    assert again.headers["x-request-id"] != kept.headers["x-request-id"]
    long = client.post(url, json={"keys": ["x"]}, headers={"X-Request-Id": "r" * 65})
    assert len(long.headers["x-request-id"]) <= 64
    assert "x-correlation-id" not in long.headers
    assert long.json()["error"]["request_id"] == long.headers["x-request-id"]


def test_missing_and_bad_keys_are_401(client: TestClient) -> None:
    resp = client.get("/api/v1/departments")
    assert resp.status_code == 401
    err = resp.json()["error"]
    assert err["code"] == "missing_key"
    assert err["request_id"] == resp.headers["x-request-id"]
    assert (
        client.get("/api/v1/departments", headers=auth("nope")).json()["error"]["code"] == "bad_key"
    )
    assert (
        client.get("/api/v1/departments", headers={"Authorization": "Basic x"}).status_code == 401
    )


def test_department_cannot_create_departments_or_act_for_others(client: TestClient) -> None:
    a = make_department(client, "dept-a")
    make_department(client, "dept-b")
    resp = client.post(
        "/api/v1/departments", json={"code": "x1", "name": "某某局", "kind": "municipal"}, headers=a
    )
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "operator_only"
    resp = client.patch("/api/v1/departments/dept-b", json={"short_name": "乙"}, headers=a)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "not_your_department"
    ok = client.patch(
        "/api/v1/departments/dept-a", json={"base_url": "http://127.0.0.1:8123/api"}, headers=a
    )
    assert ok.status_code == 200
    assert ok.json()["base_url"] == "http://127.0.0.1:8123/api"


def test_rotated_key_replaces_old_one(client: TestClient) -> None:
    old = make_department(client, "dept-r")
    resp = client.post("/api/v1/departments/dept-r/keys", headers=old)
    assert resp.status_code == 200
    new = auth(resp.json()["api_key"])
    assert client.get("/api/v1/departments/me", headers=new).status_code == 200
    assert client.get("/api/v1/departments/me", headers=old).status_code == 401


def test_deactivated_department_is_refused(client: TestClient) -> None:
    key = make_department(client, "dept-d")
    resp = client.patch("/api/v1/departments/dept-d", json={"active": False}, headers=OPERATOR)
    assert resp.status_code == 200
    resp = client.get("/api/v1/departments/me", headers=key)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "department_inactive"


def test_bad_input_is_422_naming_the_field(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/departments",
        json={"code": "BAD CODE", "name": "x", "kind": "municipal"},
        headers=OPERATOR,
    )
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "validation_failed"
    assert {e["field"] for e in err["detail"]["errors"]} == {"code", "name"}
    resp = client.post(
        "/api/v1/departments",
        json={"code": "okcode", "name": "某局", "kind": "planet"},
        headers=OPERATOR,
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["detail"]["field"] == "kind"


def test_duplicate_department_is_409(client: TestClient) -> None:
    make_department(client, "dup", "重复局")
    resp = client.post(
        "/api/v1/departments",
        json={"code": "dup", "name": "重复局2", "kind": "district"},
        headers=OPERATOR,
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "department_exists"


def test_unknown_department_404_and_unknown_route(client: TestClient) -> None:
    resp = client.get("/api/v1/departments/none-such", headers=OPERATOR)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "department_not_found"
    resp = client.get("/api/v1/nowhere", headers=OPERATOR)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "route_not_found"


def test_clock_advance_is_operator_only(client: TestClient) -> None:
    key = make_department(client, "dept-c")
    before = client.get("/api/v1/clock", headers=key).json()
    assert client.post("/api/v1/clock/advance", json={"by": "1d"}, headers=key).status_code == 403
    bad = client.post("/api/v1/clock/advance", json={"by": "tomorrow"}, headers=OPERATOR)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_duration"
    after = client.post("/api/v1/clock/advance", json={"by": "10d"}, headers=OPERATOR).json()
    assert after["offset_seconds"] - before["offset_seconds"] == 10 * 86400
