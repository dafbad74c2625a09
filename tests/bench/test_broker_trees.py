"""bench/broker_trees.py: its report reads every tree against the first from medians, and
the ablation patches it applies still apply to this tree (a patch that no longer does
would measure nothing: the run stops at `git apply`)."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import pytest
from tests.bench.modules import BENCH, bench_module


def _run(
    rps: float, exchange: float, loop: float, department: float, **more: float
) -> dict[str, float]:
    return {
        "rps": rps,
        "requests": max(rps * 5, 1.0),
        "cpu_exchange": exchange,
        "cpu_loop": loop,
        "cpu_department": department,
        "non2xx": 0.0,
        "errors": 0.0,
        **more,
    }


def test_a_path_that_failed_calls_is_named_and_no_results_are_kept() -> None:
    """A tree whose exchange stopped serving (an ablation patch that broke it) measured
    nothing: the run names it and fails rather than write its figures."""
    trees = bench_module("broker_trees")
    good = [_run(9_000, 110, 95, 45), _run(9_100, 111, 96, 44)]
    assert trees.failures({"base": good, "direct": good}) == []
    # wrk counts at least one request (CPU per lookup divides by it), at 0 req/s.
    broken = [_run(9_000, 110, 95, 45), _run(0, 1e5, 1e5, 0, requests=1.0, errors=64.0)]
    assert trees.failures({"base": good, "no-canonical": broken}) == [
        "no-canonical: 1 of 2 rounds served nothing, 0 non-2xx answers, 64 socket errors"
    ]
    refused = [_run(9_000, 110, 95, 45, non2xx=12.0)]
    assert trees.failures({"x": refused}) == [
        "x: 0 of 1 rounds served nothing, 12 non-2xx answers, 0 socket errors"
    ]


def test_the_report_reads_each_tree_against_the_first_from_medians() -> None:
    trees = bench_module("broker_trees")
    runs = {
        # Three rounds each: the medians are the middle values, not the means.
        "base": [_run(8_000, 120, 100, 40), _run(9_000, 110, 95, 45), _run(1_000, 400, 300, 90)],
        "no-audit": [_run(13_000, 75, 74, 35), _run(12_000, 80, 79, 36), _run(14_000, 70, 69, 34)],
        # The department called directly: its CPU per direct lookup is the ratio's baseline.
        "direct": [_run(20_000, 0, 0, 50), _run(21_000, 0, 0, 40), _run(19_000, 0, 0, 60)],
    }
    args = argparse.Namespace(workload="spread", rate=None, rounds=3, seconds=5)
    text = trees.report(
        args, {"base": "-", "no-audit": "bench/ablations/no-audit.patch"}, runs, (0.5, 0.5, 0.5)
    )
    rows = {
        line.split(" | ")[0].lstrip("| "): line.strip("| ").split(" | ")[1:]
        for line in text.splitlines()
        if line.startswith("| ") and " | " in line
    }
    assert rows["direct"] == [
        "the department called directly",
        "20,000",
        "–",
        "–",
        "–",
        "–",
        "50.0",
        "0",
    ]
    assert rows["base"] == ["HEAD", "8,000", "120.0", "100.0", "+0.0", "2.40", "45.0", "0"]
    assert rows["no-audit"] == [
        "HEAD + `bench/ablations/no-audit.patch`",
        "13,000",
        "75.0",
        "74.0",
        "-45.0",
        "1.50",
        "35.0",
        "0",
    ]
    assert "as fast as the connections go" in text
    paced = trees.report(
        argparse.Namespace(workload="spread", rate=7000.0, rounds=3, seconds=5),
        {"base": "-"},
        {"base": runs["base"], "direct": runs["direct"]},
        (0.5, 0.5, 0.5),
    )
    assert "paced to 7,000 req/s" in paced


@pytest.mark.parametrize("patch", sorted(p.name for p in (BENCH / "ablations").glob("*.patch")))
def test_each_ablation_patch_applies_to_this_tree(patch: str) -> None:
    root = BENCH.parent
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    check = subprocess.run(
        ["git", "-C", str(root), "apply", "--check", str(BENCH / "ablations" / patch)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, (
        f"{patch} no longer applies (rewrite it against the code as it is): {check.stderr}"
    )
