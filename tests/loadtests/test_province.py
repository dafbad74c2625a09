"""The day across both levels: provincial departments take a share of the users' records
through the provincial platform (a city and a province federated on loopback).

Functional, like tests/loadtests/test_run.py: records arrive both ways and the exchange's
own logic fails no call; thresholds are off (the machine's speed is the benchmarks')."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from loadtests.province import ProvinceDay, ProvincePlan, plan_province
from loadtests.setup import Topic
from tests.federation.pair import CITY_OPERATOR, PROVINCE_OPERATOR, Pair, make_pair

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
NO_THRESHOLDS = ("--max-error-rate", "1", "--max-p99-ms", "1e12", "--min-volume-ratio", "0")
SLOW_PROVIDER = {"504 provider.timeout", "503 provider.unavailable", "Incomplete response."}


def _topic(code: str, group: str = "basic") -> Topic:
    return Topic(
        code=code,
        name=code,
        provider="gz",
        group=group,
        resource_type="interface",
        key_type="id_number",
        shareable=("id_number", "name"),
        conditional=False,
        exchangeable=True,
    )


def test_the_provincial_share_holds_by_records() -> None:
    day = ProvinceDay(host="http://p", share=0.25, plan=_plan())
    taken = 0
    for _ in range(400):
        provincial = day.due()
        taken += provincial
        # Provincial answers are small, the city's large: the share is of records.
        records, group = (10, "province") if provincial else (30, "basic")
        day.on_request(context={"records": records, "group": group})
        day.on_request(context={"records": 5, "group": "subscription"})  # not the users'
    assert day.booked_province / day.booked == pytest.approx(0.25, abs=0.01)
    assert 0 < taken < 400


def _plan() -> ProvincePlan:
    topics = {c: _topic(c) for c in ("900001001/000001", "900001001/000002")}
    units = {
        "gz": "city_platform",
        "gdzsj": "provincial",
        "gd-scjgj": "provincial_dept",
        "gd-gat": "provincial_dept",
    }
    items = dict.fromkeys(topics, ("id_number", "name"))
    return plan_province(units, topics, items, seed=1)


def test_provincial_plan_is_seeded_and_leaves_the_city_platform_out() -> None:
    plan = _plan()
    assert plan == _plan()
    # Neither the city's unit nor the province's operator applies for anything.
    assert set(plan.grants) == {"gd-scjgj", "gd-gat"}
    assert all(plan.grants[d] for d in plan.grants)
    assert sum(plan.departments.values()) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    pair = make_pair(tmp_path_factory.mktemp("federation-load"))
    try:
        pair.province.start()
        pair.city.start()
        # Injected faults off (real estate answers 0.2 % errors by default).
        resp = httpx.put(
            f"{pair.city.url}/departments/_faults/ghzyj",
            json={"error_rate": 0.0},
            headers=pair.city.op,
        )
        assert resp.status_code == 200, resp.text
        yield pair
    finally:
        pair.stop()


def _own_failures(errors: dict[str, int]) -> dict[str, int]:
    return {
        label: n
        for label, n in errors.items()
        if label not in SLOW_PROVIDER and not any(f"'{slow}'" in label for slow in SLOW_PROVIDER)
    }


def test_a_short_day_with_provincial_consumers(pair: Pair, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "EXCHANGE_OPERATOR_KEY": CITY_OPERATOR,
        "EXCHANGE_PROVINCE_OPERATOR_KEY": PROVINCE_OPERATOR,
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "-H",
            pair.city.url,
            "--province-host",
            pair.province.url,
            "--province-share",
            "0.3",
            "--province-topics",
            "3",
            "--subscription-share",
            "0",
            "-u",
            "6",
            "--day-minutes",
            "0.2",
            "--plan-seed",
            "2021",
            *NO_THRESHOLDS,
            "--csv",
            str(tmp_path / "run"),
            "--only-summary",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    summary = json.loads((tmp_path / "run_summary.json").read_text())
    assert _own_failures(summary["errors"]) == {}, summary["errors"]
    # Both levels moved records: the provincial ones under their own group and action,
    # asked by provincial departments (their codes start gd-).
    assert summary["groups"].get("province", 0) > 0, summary["groups"]
    assert summary["actions"]["province"] == summary["groups"]["province"]
    assert summary["records"] > summary["groups"]["province"]
    provincial = {d for d in summary["departments"] if d.startswith("gd-")}
    assert provincial, summary["departments"]
    # The setup published city topics and mounted them at the province; the city's audit
    # shows the province's lookups (consumer: the province's unit there).
    published = httpx.get(
        f"{pair.city.url}/api/v1/federation/publications", headers=pair.city.op, timeout=30
    ).json()
    assert published["total"] >= 3
    status = httpx.get(
        f"{pair.city.url}/api/v1/federation/status", headers=pair.city.op, timeout=30
    ).json()
    assert status["records_provided"] > 0, status
