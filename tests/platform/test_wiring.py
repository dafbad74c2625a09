"""Typed wiring: a route reaches a service through its ``Annotated`` dependency, which
answers 503 with the service's own code in a process that does not run it, and only
once the caller is known (401 first)."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR, assert_audit_unavailable, make_department

from exchange.context import AppContext


def _error(resp: httpx.Response) -> tuple[int, str]:
    return resp.status_code, resp.json()["error"]["code"]


def test_the_libraries_answer_503_where_they_do_not_run(
    client: TestClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/api/v1/libraries", headers=OPERATOR).status_code == 200
    monkeypatch.setattr(ctx, "library_service", None)
    monkeypatch.setattr(ctx, "libraries", None)
    assert _error(client.get("/api/v1/libraries")) == (401, "missing_key")
    for path in ("/api/v1/libraries", "/api/v1/libraries/gather"):
        assert _error(client.get(path, headers=OPERATOR)) == (503, "unavailable"), path
    resp = client.post("/api/v1/libraries/gather", json={}, headers=OPERATOR)
    assert _error(resp) == (503, "unavailable")


def test_distribution_without_the_audit_writer_answers_503_audit_unavailable(
    client: TestClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    dept = make_department(client, "wir1")
    monkeypatch.setattr(ctx, "audit", None)
    body = {"topic": "101001001/000001", "delivery": "pull"}
    assert _error(client.post("/api/v1/subscriptions", json=body)) == (401, "missing_key")
    assert_audit_unavailable(client.post("/api/v1/subscriptions", json=body, headers=dept))
    assert_audit_unavailable(client.get("/api/v1/subscriptions/1/events", headers=dept))
    # Reading needs no writer: the list answers, with no runtime's blocked state either.
    monkeypatch.setattr(ctx, "distribution", None)
    resp = client.get("/api/v1/subscriptions", headers=dept)
    assert resp.status_code == 200, resp.text
    assert resp.json()["total"] == 0


def test_the_audit_log_reads_without_a_writer_and_its_key_is_503_without_trust(
    client: TestClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/api/v1/audit/public-key").status_code == 200
    monkeypatch.setattr(ctx, "audit", None)  # authz served alone: nothing to settle
    resp = client.get("/api/v1/audit/entries", headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    monkeypatch.setattr(ctx, "trust", None)
    assert _error(client.get("/api/v1/audit/public-key")) == (503, "unavailable")
    report = client.get("/api/v1/audit/verify", headers=OPERATOR)
    assert report.status_code == 200, report.text
    assert report.json()["key_id"] is None  # the chain alone, without the signatures
