"""The end-of-run summary and the thresholds that fail a headless run."""

from __future__ import annotations

import dataclasses
from typing import Any

from loadtests.summary import RunFigures, Thresholds, evaluate, render_text, to_dict

GOOD = RunFigures(
    records=37_000_000,
    target_day=37_484_000,
    target_run=37_484_000,
    elapsed_s=600.0,
    day_seconds=600.0,
    requests=50_000,
    failures=10,
    p50_ms=120,
    p95_ms=900,
    p99_ms=2_000,
    errors={"502 provider.unavailable": 10},
    departments={"mzj": 20_000_000, "gaj": 17_000_000},
    groups={"basic": 30_000_000, "departmental": 7_000_000},
    actions={"export": 33_000_000, "batch": 4_000_000},
    peak_records_per_s=150_000,
)


def test_a_good_run_passes() -> None:
    assert GOOD.error_rate == 10 / 50_000
    assert GOOD.volume_ratio == 37_000_000 / 37_484_000
    assert evaluate(GOOD, Thresholds(min_volume_ratio=0.95)) == []
    text = render_text(GOOD, [])
    assert "37,000,000" in text
    assert "PASSED" in text
    assert "502 provider.unavailable 10" in text
    assert "p99 2,000" in text


def test_each_threshold_can_fail_the_run() -> None:
    bad = dataclasses.replace(GOOD, failures=100, p99_ms=12_000, records=10_000_000)
    missed = evaluate(
        bad, Thresholds(max_error_rate=0.001, max_p99_ms=10_000, min_volume_ratio=0.9)
    )
    assert len(missed) == 3
    assert any("error rate 0.200%" in m for m in missed)
    assert any("p99 12,000 ms" in m for m in missed)
    assert any("volume 26.68% of the target for the time run" in m for m in missed)
    assert "FAILED" in render_text(bad, missed)


def test_thresholds_can_be_switched_off_but_an_empty_run_never_passes() -> None:
    bad = dataclasses.replace(GOOD, failures=40_000, p99_ms=99_999)
    off = Thresholds(max_error_rate=None, max_p99_ms=None, min_volume_ratio=None)
    assert evaluate(bad, off) == []
    empty = dataclasses.replace(GOOD, requests=0, failures=0, records=0)
    assert evaluate(empty, off) == ["no requests were made"]


def test_partial_day_is_judged_against_the_target_for_the_time_run() -> None:
    part = dataclasses.replace(GOOD, records=900_000, target_run=1_000_000, elapsed_s=60)
    assert part.volume_ratio == 0.9
    out = to_dict(
        part, Thresholds(min_volume_ratio=0.95), evaluate(part, Thresholds(min_volume_ratio=0.95))
    )
    assert out["passed"] is False
    assert out["volume_ratio"] == 0.9
    assert "10.0% of the day run" in render_text(part, [])


def test_records_within_the_day_are_shown_when_the_run_overran_it() -> None:
    late = dataclasses.replace(GOOD, elapsed_s=600.6, records_in_day=36_990_000)
    assert "within the day      36,990,000 in its 600 s" in render_text(late, [])
    assert "within the day" not in render_text(dataclasses.replace(GOOD, elapsed_s=60), [])


def test_a_run_short_of_its_volume_by_more_than_a_thousandth_fails_by_default() -> None:
    target = 1_000_000
    part = dataclasses.replace(GOOD, target_run=target, elapsed_s=60)
    assert evaluate(dataclasses.replace(part, records=999_000), Thresholds()) == []
    missed = evaluate(dataclasses.replace(part, records=998_999), Thresholds())
    assert missed == ["volume 99.90% of the target for the time run is below the required 99.9%"]


def test_a_whole_day_counts_only_the_records_within_it() -> None:
    # 95.3 % within the day, the rest a tick late: the run missed its day.
    late = dataclasses.replace(GOOD, records=37_484_000, records_in_day=35_733_099, elapsed_s=600.4)
    assert late.volume_ratio == 1.0
    assert late.delivered_ratio == 35_733_099 / 37_484_000
    assert evaluate(late, Thresholds()) == [
        "volume 95.33% of the target within the day is below the required 99.9%"
    ]
    on_time = dataclasses.replace(late, records_in_day=37_450_000)
    assert evaluate(on_time, Thresholds()) == []
    assert to_dict(on_time, Thresholds(), [])["delivered_ratio"] == 37_450_000 / 37_484_000


def test_lost_subscription_deliveries_fail_the_run_even_when_the_volume_is_met() -> None:
    """The 5-minute day's users ran 0.16 % over their part while a third of the
    subscription deliveries never arrived: judged apart, that fails the run."""
    stages: dict[str, dict[str, Any]] = {
        "wjw": {
            "received": 100,
            "acknowledged": 100,
            "backlog": 400,
            "dead_lettered": 0,
            "blocked": "quota_exceeded",
        }
    }
    short = dataclasses.replace(
        GOOD, published=500, subscribers=4, delivered=1_990, delivered_late=7, stages=stages
    )
    assert short.owed_deliveries == 2_000
    assert evaluate(short, Thresholds(min_volume_ratio=0.98)) == []  # 99.5 % ≥ 98 %
    missed = evaluate(short, Thresholds(min_volume_ratio=0.999))
    assert any("1,990 of 2,000 deliveries (99.50%)" in m for m in missed)
    text = render_text(short, missed)
    assert "7 after the day's end" in text
    assert "wjw 100 received, 100 acknowledged, backlog 400" in text
    assert "blocked: quota_exceeded" in text
    out = to_dict(short, Thresholds(), missed)
    assert (out["owed_deliveries"], out["deliveries_ratio"]) == (2_000, 0.995)
    assert out["passed"] is False
    # Every delivery arrived: nothing to say, and a run without subscriptions owes none.
    whole = dataclasses.replace(short, delivered=2_000)
    assert not any("subscriptions" in m for m in evaluate(whole, Thresholds()))
    assert dataclasses.replace(GOOD).deliveries_ratio == 1.0
