"""The benchmarks' results files are what their scripts write (issue 15's rule): every file
under bench/results/ has a script that rewrites it, and every script's file exists."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest
from tests.bench.modules import BENCH, bench_module

RESULTS = BENCH / "results"
#: written by a script beside its main file (the load day's report and the charts)
WRITTEN_BESIDE = {"load-day.md": "day-memory.md"}


def test_every_results_file_has_the_script_that_writes_it() -> None:
    runs = bench_module("all").RUNS
    listed = {results for _, _, results in runs}
    present = {p.name for p in RESULTS.glob("*.md")}
    for results in listed:
        assert (RESULTS / results).is_file(), f"bench/all.py lists {results}, which is missing"
    orphans = present - listed - set(WRITTEN_BESIDE)
    assert not orphans, f"results files no script writes (move them to bench/README.md): {orphans}"
    for beside, main in WRITTEN_BESIDE.items():
        assert main in listed
        assert beside in present
    for _, argv, _ in runs:
        assert (BENCH / argv[0]).is_file(), f"bench/all.py runs a missing script {argv[0]}"


def test_the_setting_line_names_machine_commit_command_and_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    common = bench_module("_common")
    monkeypatch.setattr(sys, "argv", ["/tmp/tree/bench/federation.py", "--only", "lookups"])
    line = common.setting((1.25, 2.0, 3.5))
    assert "Command: `python bench/federation.py --only lookups`" in line
    assert "1.2 / 2.0 / 3.5 before" in line
    head = subprocess.run(
        ["git", "-C", str(BENCH), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    )
    if head.returncode == 0:
        assert re.search(rf"commit {re.escape(head.stdout.strip())}(\+changes)?\.", line)
    else:
        assert "commit unknown." in line
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", line)


def test_commit_outside_a_checkout_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    common = bench_module("_common")

    def no_git(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(common.subprocess, "run", no_git)
    assert common.commit() == "unknown"


def test_freshness_states_its_setting_instead_of_asserting_a_shared_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # freshness.md said "the machine was shared with other engineers' work" whatever the
    # load; it now carries the setting line every script uses (commit, command, load).
    freshness = bench_module("freshness")
    monkeypatch.setattr(sys, "argv", ["bench/freshness.py", "--rounds", "1"])
    text = freshness.section(
        [],
        {"after": [1000.0], "cpu_after": [150.0], "before": [], "cpu_before": []},
        {"SQLite file": 300.0},
        argparse.Namespace(seconds=5, baseline_label="main"),
        (0.5, 0.4, 0.3),
    )
    assert "Command: `python bench/freshness.py --rounds 1`" in text
    assert "0.5 / 0.4 / 0.3 before" in text
    assert "other engineers" not in text
    assert "| req/s, 64 connections | 1,000 |" in text


def test_distribution_writes_its_setting_and_case_not_a_claim_about_the_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # distribution.md said "figures under load, not on a quiet machine" whatever the load,
    # and carried the reading of its figures, which is bench/README.md's.
    distribution = bench_module("distribution")
    monkeypatch.setattr(sys, "argv", ["bench/distribution.py", "--events", "2000"])
    text = distribution.results_text(
        argparse.Namespace(rounds=3, lag_seconds=20.0),
        2000,
        "| case | median |\n|---|---|\n| pull feed | 9 events/s |",
        (0.5, 0.4, 0.3),
    )
    assert "Command: `python bench/distribution.py --events 2000`" in text
    assert "0.5 / 0.4 / 0.3 before" in text
    assert "medians of 3 rounds of 2,000 events (lag: one paced run of\n20 s)" in text
    assert "| pull feed | 9 events/s |" in text
    assert "quiet machine" not in text
    assert "Reading the figures" not in text
