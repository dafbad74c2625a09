"""The locustfile against a real exchange on loopback: setup, a short day, distributed mode.

Locust runs in subprocesses so gevent's monkey-patching never reaches this pytest process.
Injected faults (real estate answers 0.2 % errors by default) are switched off through the
operator's fault API, so "no failures" is a property of the harness, not of luck.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from loadtests.setup import discover, ensure_grants, make_plan
from tests.serve import Server, exchange_up, free_port

from exchange.security import demo_key

pytestmark = pytest.mark.e2e

OPERATOR_KEY = "exk_operator_loadtests"
ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
# Seed 2021's key pool avoids two ID numbers whose social-insurance records the mock
# department cannot derive (reported; a provider bug, not the harness's).
PLAN_SEED = "2021"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("exchange")
    with exchange_up(tmp, f"sqlite:///{tmp}/exchange.db", OPERATOR_KEY) as srv:
        resp = httpx.put(
            f"{srv.url}/departments/_faults/ghzyj",
            json={"error_rate": 0.0},
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        )
        assert resp.status_code == 200, resp.text
        yield srv


def _locust(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "EXCHANGE_OPERATOR_KEY": OPERATOR_KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_load_refuses_an_exchange_that_refuses_its_operator_key(
    server: Server, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from exchange.cli import app

    result = CliRunner().invoke(
        app,
        ["load", "--host", server.url, "--operator-key", "exk_wrong", "--out", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "refuses this operator key (401)" in result.output
    assert not (tmp_path / "locust.log").exists()  # stopped before Locust started


def test_setup_creates_grants_through_the_api_once(server: Server) -> None:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}, timeout=60
    ) as client:
        units, topics = discover(client)
        plan = make_plan(units, topics, seed=int(PLAN_SEED))
        assert len(units) == 151
        assert len(plan.popularity) == 16  # the core topics with a mock API, less tax-paid

        def key_of(code: str) -> str:
            return demo_key(OPERATOR_KEY, code)

        first = ensure_grants(client, plan, key_of)
        assert first.applied == sum(len(v) for v in plan.grants.values())
        assert first.approved > 0  # conditional topics needed their provider
        again = ensure_grants(client, plan, key_of)
        assert again.applied == 0
        assert again.already == first.applied
        grants = client.get("/api/v1/grants", params={"status": "active", "limit": 1}).json()
        assert grants["total"] >= first.applied


def test_a_short_day_exchanges_records_without_failures(server: Server, tmp_path: Path) -> None:
    proc = _locust(
        "--headless",
        "-H",
        server.url,
        "-u",
        "8",
        "--day-minutes",
        # 12 s: at 6 s a busy machine (calls of ~0.7 s, cold department caches) once
        # fell short of the 1,000 records and 10 requests asserted below.
        "0.2",
        "--plan-seed",
        PLAN_SEED,
        "--csv",
        str(tmp_path / "run"),
        "--html",
        str(tmp_path / "report.html"),
        "--only-summary",
        cwd=tmp_path,
    )
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    summary = json.loads((tmp_path / "run_summary.json").read_text())
    assert summary["records"] > 1000, out
    assert summary["failures"] == 0, summary["errors"]
    assert summary["requests"] > 10
    assert summary["passed"] is True
    assert set(summary["actions"]) & {"export", "batch"}
    assert "=== exchange day: summary ===" in out
    for name in ("stats.csv", "records_history.csv", "records_departments.csv", "volume.png"):
        assert (tmp_path / f"run_{name}").stat().st_size > 0
    assert (tmp_path / "report.html").stat().st_size > 0
    # The broker's own audit agrees that records moved.
    stats = httpx.get(
        f"{server.url}/api/v1/audit/stats", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
    ).json()
    assert json.dumps(stats) != "{}"


def test_a_threshold_missed_makes_the_headless_run_fail(server: Server, tmp_path: Path) -> None:
    proc = _locust(
        "--headless",
        "-H",
        server.url,
        "-u",
        "2",
        "--day-minutes",
        "0.05",
        "--plan-seed",
        PLAN_SEED,
        "--max-p99-ms",
        "0.001",
        "--records-out",
        str(tmp_path / "strict"),
        "--only-summary",
        cwd=tmp_path,
    )
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 1, out
    assert "FAILED: p99" in out


def test_master_and_two_workers_on_loopback(server: Server, tmp_path: Path) -> None:
    port = str(free_port())
    master = _locust(
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        port,
        "--headless",
        "--expect-workers",
        "2",
        "-H",
        server.url,
        "-u",
        "6",
        "--day-minutes",
        "0.13",
        "-t",
        "8s",
        "--plan-seed",
        PLAN_SEED,
        "--records-out",
        str(tmp_path / "dist"),
        "--only-summary",
        cwd=tmp_path,
    )
    workers = [
        _locust("--worker", "--master-host", "127.0.0.1", "--master-port", port, cwd=tmp_path)
        for _ in range(2)
    ]
    try:
        out, _ = master.communicate(timeout=90)
        logs = [w.communicate(timeout=30)[0] for w in workers]
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert master.returncode == 0, out
    assert all(w.returncode == 0 for w in workers), logs
    summary = json.loads((tmp_path / "dist_summary.json").read_text())
    assert summary["records"] > 1000, out
    assert summary["failures"] == 0, summary["errors"]
    # Records came from the workers' ledgers: the master runs no users itself.
    assert sum(summary["departments"].values()) == summary["records"]
