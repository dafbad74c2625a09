"""bench/broker_floor.py's report: each path's CPU read against the department's per direct
lookup, and its throughput against direct, from the medians of the rounds."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

from tests.bench.modules import bench_module


def _run(rps: float, department: float, process: float) -> dict[str, float]:
    return {
        "rps": rps,
        "cpu_department": department,
        "cpu_process": process,
        "non2xx": 0.0,
        "errors": 0.0,
    }


def test_the_report_reads_each_path_against_direct_from_medians() -> None:
    floor = bench_module("broker_floor")
    runs = {
        # Three rounds each: the medians are the middle values, not the means.
        "direct": [_run(20_000, 50, 0), _run(10_000, 40, 0), _run(21_000, 60, 0)],
        "broker": [_run(8_000, 34, 120), _run(9_000, 30, 100), _run(1_000, 36, 400)],
        "hop": [_run(25_000, 30, 30), _run(26_000, 31, 25), _run(24_000, 29, 35)],
        "shared": [_run(22_000, 25, 40), _run(23_000, 26, 45), _run(21_000, 24, 50)],
    }
    workload = SimpleNamespace(name="spread", targets=[1, 2], providers={"gaj"}, consumers={})
    args = argparse.Namespace(rounds=3, seconds=5)
    text = floor.report(args, workload, runs, (0.5, 0.5, 0.5))
    rows = {
        line.split(" | ")[0].lstrip("| "): line.strip("| ").split(" | ")[1:]
        for line in text.splitlines()
        if line.startswith("| ") and " | " in line
    }
    # direct: 20,000 req/s, the department 50 µs per direct lookup.
    assert rows["direct to department"] == ["20,000", "", "", "", "50.0"]
    assert rows["through the broker (1 process)"] == ["8,000", "2.50", "120.0", "2.40", "34.0"]
    assert rows["bare Python hop, forwarding"] == ["25,000", "0.80", "30.0", "0.60", "30.0"]
    assert rows["bare Python hop, shared signed calls"] == [
        "22,000",
        "0.91",
        "45.0",
        "0.90",
        "25.0",
    ]
    assert "Non-2xx answers and socket errors, all paths and rounds: 0." in text
