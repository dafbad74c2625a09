"""``bench/results/load-day.md`` from one ``exchange load`` run's own outputs: its summary
JSON, its records-per-second CSV and its volume chart (written by ``bench/day_memory.py``,
which runs the day from a fresh exchange as a user would)."""

from __future__ import annotations

import csv
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "load-day.md"
CHART = ROOT / "bench" / "results" / "load-day-volume.png"
#: issue 17: records within the day at --day-minutes 5, of the day's target
TARGET_RATIO = 0.999


def hours(history: Path) -> list[tuple[int, float, float]]:
    """(simulated hour, target records, achieved records) from the per-second CSV."""
    target: dict[int, float] = {}
    achieved: dict[int, float] = {}
    with history.open() as f:
        for row in csv.DictReader(f):
            hour = int(float(row["sim_hour"]))
            if hour > 23:  # the tick after the day's end
                continue
            target[hour] = target.get(hour, 0.0) + float(row["target_records"])
            achieved[hour] = achieved.get(hour, 0.0) + float(row["records"])
    return [(h, target[h], achieved.get(h, 0.0)) for h in sorted(target)]


def _subscription_rows(s: dict[str, Any]) -> list[str]:
    """The subscription part: what was owed, what arrived (and how late), the lag."""
    owed = int(s.get("owed_deliveries") or s.get("published", 0) * s.get("subscribers", 0))
    if not owed:
        return []
    delivered = int(s.get("delivered", 0))
    late = int(s.get("delivered_late", 0))
    stages = s.get("stages") or {}
    left = sum(max(0, int(st.get("backlog", 0))) for st in stages.values())
    dead = sum(max(0, int(st.get("dead_lettered", 0))) for st in stages.values())
    return [
        f"| subscriptions: deliveries owed (published × subscribers) | "
        f"{s.get('published', 0):,} × {s.get('subscribers', 0)} = {owed:,} | |",
        f"| subscriptions: arrived at the receivers, of them after the day's end | "
        f"**{delivered:,} ({delivered / owed:.2%})**, {late:,} | ≥ 99.9% |",
        f"| subscriptions: left on the exchange at the end (backlog), dead-lettered | "
        f"{left:,}, {dead:,} | 0, 0 |",
        f"| subscriptions: lag p50 / p95 / p99 (uniform sample of the run) | "
        f"{s.get('lag_p50_ms', 0):,.0f} / {s.get('lag_p95_ms', 0):,.0f} / "
        f"{s.get('lag_p99_ms', 0):,.0f} ms | |",
    ]


def write(
    summary: dict[str, Any],
    out: Path,
    *,
    command: str,
    exit_code: int,
    load: tuple[tuple[float, ...], tuple[float, ...]],
) -> str:
    """Write the results file (and copy the chart); return its text."""
    s = summary
    prefix = out / "day"
    ratio = (s.get("records_in_day") or 0) / s["target_day"] if s.get("target_day") else 0.0
    met = ratio >= TARGET_RATIO and s.get("failures", 1) == 0
    res = s.get("resources") or {}
    start = res.get("exchange_start") or {}
    end = res.get("exchange_end") or {}
    day_s = s.get("day_seconds") or 1.0
    errors = ", ".join(f"{k} {v:,}" for k, v in s.get("errors", {}).items())
    verdict = "passed" if s.get("passed") else "missed: " + ", ".join(s.get("missed", []))
    lines = [
        f"# A day of the exchange in {day_s / 60:g} minutes, from a fresh exchange",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}. One run of "
        f"`{command}` as a user runs it (no exchange answering, so it starts one with its "
        "defaults: SQLite, a fresh database, exchange worker processes and the mock "
        "departments in their own; Locust's own processes), loopback only, written by "
        "`bench/day_memory.py` from the run's own summary. Load average "
        + ", ".join(f"{x:.2f}" for x in load[0])
        + " before, "
        + ", ".join(f"{x:.2f}" for x in load[1])
        + " after (2 cores: above ~2 the exchange shared the machine with other work).",
        "",
    ]
    if (Path(f"{prefix}_volume.png")).exists():
        shutil.copyfile(f"{prefix}_volume.png", CHART)
        lines += [f"![records per second over the simulated day]({CHART.name})", ""]
    lines += [
        "| measure | this run | target |",
        "|---|---:|---|",
        f"| records within the day's {day_s:,.0f} s | **{s.get('records_in_day') or 0:,} "
        f"({ratio:.1%})** of {s['target_day']:,} | ≥ {TARGET_RATIO:.1%}: "
        f"{'**met**' if ratio >= TARGET_RATIO else '**not met**'} |",
        f"| records in all | {s['records']:,} | |",
        f"| requests, failed | {s['requests']:,}, **{s['failures']:,}** | 0 failed |",
        f"| failures by answer | {errors or '-'} | |",
        f"| latency p50 / p95 / p99 | {s['p50_ms']:,.0f} / {s['p95_ms']:,.0f} / "
        f"{s['p99_ms']:,.0f} ms | |",
        f"| busiest second | {s.get('peak_records_per_s', 0):,.0f} records | |",
        f"| exchange CPU over the run (every process) | {res.get('exchange_cpu_s', 0):,.0f} s "
        f"({(res.get('exchange_cpu_s') or 0) / day_s:.2f} cores) | |",
        f"| Locust CPU (setup included) | {res.get('locust_cpu_s') or 0:,.0f} s | |",
        f"| exchange RSS at the day's start, end | {start.get('rss_mb', 0):,.0f} MB, "
        f"{end.get('rss_mb', 0):,.0f} MB | `day-memory.md` |",
        *_subscription_rows(s),
        f"| thresholds, exit code | {verdict}, exit {exit_code} | |",
        "",
        f"Verdict: {'**met**' if met else '**not met**'} (≥ {TARGET_RATIO:.1%} within the "
        "day and 0 failed requests).",
        "",
    ]
    history = Path(f"{prefix}_records_history.csv")
    if history.exists():
        lines += [
            "## Hour by hour",
            "",
            "| simulated hour | target records | achieved | achieved ÷ target "
            "| cumulative ÷ target |",
            "|---|---:|---:|---:|---:|",
        ]
        cum_t = cum_a = 0.0
        for hour, target, achieved in hours(history):
            cum_t += target
            cum_a += achieved
            lines.append(
                f"| {hour:02d}:00 | {target:,.0f} | {achieved:,.0f} | "
                f"{achieved / target if target else 0:.2f} | {cum_a / cum_t if cum_t else 0:.3f} |"
            )
        lines.append("")
    text = "\n".join(lines)
    RESULTS.write_text(text)
    return text
