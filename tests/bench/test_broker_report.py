"""bench/broker.py's report: the CPU ratio at each path's own saturation, and, when every path
was also paced to one rate, at that equal load, each with its own verdict."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

from tests.bench.modules import bench_module


def _run(rps: float, department: float, exchange: float) -> dict[str, float]:
    return {
        "rps": rps,
        "p50": 0.1,
        "p99": 5.0,
        "non2xx": 0.0,
        "errors": 0.0,
        "cpu_department": department,
        "cpu_nginx": 0.0,
        "cpu_exchange": exchange,
        "cpu_wrk": 10.0,
    }


def _rows(text: str) -> dict[str, list[str]]:
    return {
        line.split(" | ")[0].lstrip("| "): line.strip("| ").split(" | ")[1:]
        for line in text.splitlines()
        if line.startswith("| ") and " | " in line
    }


def test_the_cpu_ratio_is_given_saturated_and_at_one_paced_load() -> None:
    broker = bench_module("broker")
    paced = broker.PACED
    one_round = {
        "direct": _run(20_000, 45, 0),
        "nginx": _run(20_000, 45, 0),
        "broker": _run(9_000, 35, 108),
        "direct1": _run(7_000, 60, 0),
        "nginx1": _run(6_000, 60, 0),
        "broker1": _run(2_700, 40, 200),
        f"direct{paced}": _run(5_000, 60, 0),
        f"nginx{paced}": _run(5_000, 60, 0),
        f"broker{paced}": _run(5_000, 50, 114),
    }
    workload = SimpleNamespace(name="spread", targets=[1, 2], providers={"gaj"}, consumers={})
    args = argparse.Namespace(rounds=1, seconds=5, workers=1, paced=5000.0)
    text = broker.report(
        args, workload, broker.PATHS, [one_round], None, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    )
    rows = _rows(text)
    saturated = next(k for k in rows if k.startswith("exchange's CPU per lookup") and "64" in k)
    assert rows[saturated][2:] == ["2.40", "≤ 2", "**not met**"]
    equal = next(k for k in rows if k.startswith("exchange's CPU per lookup") and "paced" in k)
    assert "5,000 req/s" in equal
    assert rows[equal][2:] == ["1.90", "≤ 2", "**met**"]
    served = next(k for k in rows if k.startswith("req/s served"))
    assert rows[served][:3] == ["5,000", "5,000", "5,000"]


def test_without_paced_runs_the_report_has_no_paced_rows() -> None:
    broker = bench_module("broker")
    one_round = {
        kind + suffix: _run(9_000, 45, 100 if kind == "broker" else 0)
        for kind in broker.PATHS
        for suffix in ("", "1")
    }
    workload = SimpleNamespace(name="spread", targets=[1], providers={"gaj"}, consumers={})
    args = argparse.Namespace(rounds=1, seconds=5, workers=1, paced=0.0)
    text = broker.report(
        args, workload, broker.PATHS, [one_round], None, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    )
    assert not [k for k in _rows(text) if "paced" in k]
