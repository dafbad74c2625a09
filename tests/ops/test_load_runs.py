"""Load runs reported to the exchange (``/api/v1/load-runs``) and shown on the dashboard."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from tests.conftest import OPERATOR, make_department

from exchange.context import AppContext
from exchange.loadruns.models import LoadRun

PROGRESS: dict[str, Any] = {
    "sim_hour": 9.5,
    "elapsed_s": 237.5,
    "day_seconds": 600.0,
    "records": 14_000_000.0,
    "target_so_far": 14_100_000.0,
    "records_per_s": 62_000.0,
    "target_rate": 61_500.0,
}


def report(client: TestClient, run: str, state: str = "running", **progress: Any) -> Any:
    body = {"state": state, "progress": {**PROGRESS, **progress}}
    return client.put(f"/api/v1/load-runs/{run}", json=body, headers=OPERATOR)


def test_the_latest_report_of_a_run_is_what_the_dashboard_shows(client: TestClient) -> None:
    assert client.get("/api/v1/audit/operations", headers=OPERATOR).json()["load_run"] is None
    first = report(client, "run-1", sim_hour=1.0, records=10.0)
    assert first.status_code == 200, first.text
    later = report(client, "run-1", sim_hour=9.5)
    assert later.status_code == 200, later.text

    runs = client.get("/api/v1/load-runs", headers=OPERATOR).json()["runs"]
    assert [(r["id"], r["state"], r["stale"]) for r in runs] == [("run-1", "running", False)]
    assert runs[0]["progress"] == PROGRESS
    shown = client.get("/api/v1/audit/operations", headers=OPERATOR).json()["load_run"]
    assert shown["id"] == "run-1"
    assert shown["progress"]["sim_hour"] == 9.5


def test_a_finished_run_stays_finished_and_newer_runs_come_first(client: TestClient) -> None:
    assert report(client, "old", "finished").json()["state"] == "finished"
    # A late "running" report (a retry, or out of order) does not reopen it.
    again = report(client, "old", sim_hour=3.0)
    assert again.json()["state"] == "finished"
    assert again.json()["progress"]["sim_hour"] == PROGRESS["sim_hour"]
    report(client, "new", "failed")
    runs = client.get("/api/v1/load-runs", params={"limit": 1}, headers=OPERATOR).json()["runs"]
    assert [r["id"] for r in runs] == ["new"]
    assert runs[0]["state"] == "failed"


def test_a_running_run_not_heard_of_is_stale(client: TestClient, ctx: AppContext) -> None:
    report(client, "quiet")
    with ctx.db.session() as s:
        s.execute(
            update(LoadRun).values(updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    runs = client.get("/api/v1/load-runs", headers=OPERATOR).json()["runs"]
    assert runs[0]["stale"] is True


def test_only_the_operator_reports_or_reads_load_runs(client: TestClient) -> None:
    dept = make_department(client, "ldt")
    body = {"progress": PROGRESS}
    put = client.put("/api/v1/load-runs/x1", json=body, headers=dept)
    assert put.status_code == 403
    assert put.json()["error"]["code"] == "operator_only"
    assert client.get("/api/v1/load-runs", headers=dept).status_code == 403
    assert client.put("/api/v1/load-runs/x1", json=body).status_code == 401


@pytest.mark.parametrize(
    ("run", "body"),
    [
        ("r1", {"progress": {**PROGRESS, "sim_hour": 25}}),
        ("r1", {"progress": {**PROGRESS, "day_seconds": 0}}),
        ("r1", {"progress": {**PROGRESS, "records": -1}}),
        ("r1", {"state": "paused", "progress": PROGRESS}),
        ("r1", {"state": "running"}),
        ("r1", [1, 2]),
    ],
)
def test_bad_reports_are_refused_with_a_clear_error(
    client: TestClient, run: str, body: Any
) -> None:
    resp = client.put(f"/api/v1/load-runs/{run}", json=body, headers=OPERATOR)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "validation_failed"
    assert client.get("/api/v1/load-runs", headers=OPERATOR).json()["runs"] == []


def test_a_run_id_outside_its_alphabet_is_refused(client: TestClient) -> None:
    resp = client.put(
        "/api/v1/load-runs/" + "x" * 33, json={"progress": PROGRESS}, headers=OPERATOR
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "validation_failed"
