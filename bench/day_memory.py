"""A load day's memory: ``exchange load`` from a fresh exchange, as a user starts it, with
the exchange's processes sampled every 10 s, judged by issue 17's rule: each exchange
process ends the day within twice its start memory plus its declared caches (the
``exchange_memory_declared_bytes`` of its ``/metrics``, see ``src/exchange/bounds.py``).

    .venv/bin/python bench/day_memory.py [--day-minutes 5] [-- extra exchange load options]

The exchange is started by ``exchange load`` on a free loopback port in a new directory
(a fresh SQLite database). The start of the day is ``exchange load``'s own reading (when
its first progress shows the day began, after the grants are set up), the end is after
Locust exits; both are in its ``day_summary.json``. Results are printed and written to
``bench/results/day-memory.md``; the day's volume, hour by hour, and its chart to
``bench/results/load-day.md`` (``bench/_day_report.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import _day_report
import httpx
from _common import free_port, work_dir

from exchange import proctree

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "day-memory.md"
KEY = "exk_operator_day_memory"
SAMPLE_S = 10.0


def declared(url: str) -> float | None:
    """The answering process's declared budget, bytes (None when it does not answer)."""
    try:
        text = httpx.get(
            f"{url}/metrics", headers={"Authorization": f"Bearer {KEY}"}, timeout=10
        ).text
    except httpx.HTTPError:
        return None
    found = re.search(r"^exchange_memory_declared_bytes ([\d.e+]+)$", text, re.M)
    return float(found.group(1)) if found else None


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def role(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
    if "departments" in cmd:
        return "mock departments"
    # The departments' export workers and their tracker are spawned like uvicorn's
    # workers: their parent tells them apart.
    below_departments = role(_parent(pid)) == "mock departments"
    if "resource_tracker" in cmd:
        return "departments' resource tracker" if below_departments else "resource tracker"
    if "multiprocessing" in cmd or "spawn_main" in cmd:
        return "departments' export worker" if below_departments else "exchange worker"
    if "exchange.cli up" in cmd or " up " in cmd:
        return "exchange up (supervisor)"
    if "locust" in cmd:
        # Locust's --processes forks its workers: the same command line, the master above.
        return "Locust worker" if role(_parent(pid)).startswith("Locust") else "Locust master"
    if "exchange.cli load" in cmd:
        return "exchange load"
    return cmd[:60]


#: The day's busy hours (simulated, Beijing time): where a 5-minute day fell short.
PEAK_HOURS = (9.0, 17.0)


def _sim_hour(progress: Path) -> float | None:
    """The simulated hour ``exchange load``'s progress file shows now (None before the day)."""
    try:
        return float(json.loads(progress.read_text())["sim_hour"])
    except (OSError, ValueError, KeyError):
        return None


class CpuByHour:
    """Each process's CPU between samples, kept for the whole day and for its busy hours:
    which process used how much of the machine's cores when the day was at its peak."""

    def __init__(self) -> None:
        self.last: dict[int, tuple[float, float]] = {}
        self.day: dict[int, float] = {}
        self.peak: dict[int, float] = {}
        self.peak_best: dict[int, float] = {}
        self.day_s = 0.0
        self.peak_s = 0.0

    def add(self, hour: float | None, processes: Iterable[proctree.ProcessFigures]) -> None:
        now = time.monotonic()
        in_day = hour is not None and 0.0 < hour < 24.0
        in_peak = hour is not None and PEAK_HOURS[0] <= hour < PEAK_HOURS[1]
        span = 0.0
        for p in processes:
            before = self.last.get(p.pid)
            self.last[p.pid] = (now, p.cpu_s)
            if before is None:
                continue
            span = now - before[0]
            used = p.cpu_s - before[1]
            if in_day:
                self.day[p.pid] = self.day.get(p.pid, 0.0) + used
            if in_peak:
                self.peak[p.pid] = self.peak.get(p.pid, 0.0) + used
                self.peak_best[p.pid] = max(self.peak_best.get(p.pid, 0.0), used / span)
        if in_day:
            self.day_s += span
        if in_peak:
            self.peak_s += span

    def table(self, roles: dict[int, str]) -> list[str]:
        """Markdown rows: cores each process used over the day and over its busy hours."""
        rows = [
            "| process | cores over the day | over its busy hours | busiest sample |",
            "|---|---:|---:|---:|",
        ]
        total_day = sum(self.day.values())
        total_peak = sum(self.peak.values())
        for pid in sorted(self.day, key=lambda p: -self.peak.get(p, 0.0)):
            if self.day[pid] < 0.5:
                continue  # idle helpers (resource trackers, the load command itself)
            rows.append(
                f"| {roles.get(pid, '?')} ({pid}) | {self.day[pid] / max(self.day_s, 1e-9):.2f} "
                f"| {self.peak.get(pid, 0.0) / max(self.peak_s, 1e-9):.2f} "
                f"| {self.peak_best.get(pid, 0.0):.2f} |"
            )
        rows.append(
            f"| **every process** | {total_day / max(self.day_s, 1e-9):.2f} | "
            f"{total_peak / max(self.peak_s, 1e-9):.2f} | |"
        )
        return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--day-minutes", type=float, default=5.0)
    parser.add_argument("extra", nargs="*", help="more `exchange load` options")
    args = parser.parse_args()
    work = work_dir("bench-day-memory-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "EXCHANGE_OPERATOR_KEY": KEY,
        "EXCHANGE_HOST": "127.0.0.1",
        "EXCHANGE_PORT": str(port),
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
    }
    out = work / "out"
    command = [
        *(sys.executable, "-m", "exchange.cli", "load"),
        *("--day-minutes", str(args.day_minutes), "--out", str(out)),
        *args.extra,
    ]
    load_before = os.getloadavg()
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=work, env=env)
    roles: dict[int, str] = {}
    budgets: list[float] = []
    peaks: dict[int, float] = {}
    cpu = CpuByHour()
    while proc.poll() is None:
        time.sleep(SAMPLE_S)
        everything = proctree.sample(proc.pid)
        if everything is not None:
            for p in everything.processes:
                roles.setdefault(p.pid, role(p.pid))
            cpu.add(_sim_hour(out / "progress.json"), everything.processes)
        up = [p for p in proctree.descendants(proc.pid) if role(p).startswith("exchange up")]
        if not up:
            continue
        tree = proctree.sample(up[0])
        if tree is None:
            continue
        for p in tree.processes:
            peaks[p.pid] = max(peaks.get(p.pid, 0.0), p.rss_bytes / 2**20)
        budget = declared(url)
        if budget is not None:
            budgets.append(budget)
        print(
            f"{time.monotonic() - started:6.0f} s  "
            + ", ".join(f"{roles[p.pid]} {p.rss_bytes / 2**20:.0f} MB" for p in tree.processes)
        )
    load_after = os.getloadavg()
    summary_file = out / "day_summary.json"
    if not summary_file.exists():
        raise SystemExit(f"exchange load exited {proc.returncode} without a summary; see {out}")
    summary = json.loads(summary_file.read_text())
    print(
        _day_report.write(
            summary,
            out,
            command=" ".join(["exchange load --day-minutes", f"{args.day_minutes:g}", *args.extra]),
            exit_code=proc.returncode,
            load=(load_before, load_after),
        )
    )
    resources = summary.get("resources") or {}
    start = {p["pid"]: p for p in resources.get("exchange_start", {}).get("processes", [])}
    end = {p["pid"]: p for p in resources.get("exchange_end", {}).get("processes", [])}
    budget_mb = max(budgets, default=0.0) / 2**20
    log = out / "exchange.log"
    flushes = log.read_text(errors="replace").count("usage flush failed") if log.exists() else 0
    rows, verdicts = [], []
    for pid, first in start.items():
        last = end.get(pid)
        if last is None:
            continue
        name = roles.get(pid, first["name"])
        allowed = 2 * first["rss_mb"] + (budget_mb if name == "exchange worker" else 0.0)
        ok = last["rss_mb"] <= allowed
        if name == "exchange worker":
            verdicts.append(ok)
        judged = f"{allowed:,.1f} | {'**met**' if ok else '**not met**'} |"
        rows.append(
            f"| {name} ({pid}) | {first['rss_mb']:,.1f} | {last['rss_mb']:,.1f} | "
            f"{peaks.get(pid, 0.0):,.1f} | "
            + (judged if name == "exchange worker" else f"({allowed:,.1f}) | |")
        )
    # The whole exchange (every process but the departments'): its sum against twice its
    # start plus every worker's declared caches.
    departments = ("mock departments", "departments'")
    mine = [pid for pid in start if pid in end and not roles.get(pid, "").startswith(departments)]
    workers = sum(roles.get(pid) == "exchange worker" for pid in mine)
    first_mb = sum(start[pid]["rss_mb"] for pid in mine)
    last_mb = sum(end[pid]["rss_mb"] for pid in mine)
    allowed_mb = 2 * first_mb + workers * budget_mb
    verdicts.append(last_mb <= allowed_mb)
    rows.append(
        f"| **the exchange** ({len(mine)} processes, {workers} workers) | {first_mb:,.1f} | "
        f"{last_mb:,.1f} | | {allowed_mb:,.1f} | "
        f"{'**met**' if last_mb <= allowed_mb else '**not met**'} |"
    )
    text = "\n".join(
        [
            "# A load day's memory",
            "",
            f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}. One run of "
            f"`bench/day_memory.py --day-minutes {args.day_minutes:g}`: `exchange load "
            f"--day-minutes {args.day_minutes:g} {' '.join(args.extra)}` starting a fresh "
            "exchange (SQLite, its defaults: worker processes and the mock departments in "
            "their own) on this machine, beside other people's work: load average "
            f"{', '.join(f'{x:.2f}' for x in load_before)} before, "
            f"{', '.join(f'{x:.2f}' for x in load_after)} after. Start and end are "
            "`exchange load`'s own readings (`day_summary.json`); the peak is the highest "
            f"of the samples taken every {SAMPLE_S:.0f} s.",
            "",
            "Rule (issue 17): an exchange process ends the day within 2 × its start memory "
            f"plus its declared caches ({budget_mb:,.1f} MB per worker, "
            "`exchange_memory_declared_bytes`; the bounded structures are listed in the "
            "README, *Memory over hours*). The mock departments are the departments' "
            "process and its export workers, not the exchange: shown with 2 × start for "
            "reference.",
            "",
            f'"usage flush failed" (database is locked) in the exchange log: {flushes}.',
            "",
            "| process | RSS at the day's start (MB) | at its end | peak sampled | allowed | |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "## CPU by process",
            "",
            f"Each process's CPU between the samples (every {SAMPLE_S:.0f} s), over the "
            "simulated day and over its busy hours "
            f"({PEAK_HOURS[0]:02.0f}:00–{PEAK_HOURS[1]:02.0f}:00, where a short day falls "
            "behind), in cores of the machine's "
            f"{os.cpu_count()}; the busiest sample is the highest 10-second share in those "
            "hours. A process near 1.00 is one core's worth: the one that limits the day.",
            "",
            *cpu.table(roles),
            "",
            f"The day: {summary.get('records_in_day', 0):,} records within its "
            f"{summary.get('day_seconds', 0):,.0f} s of {summary.get('target_day', 0):,} "
            f"({summary.get('volume_ratio', 0):.1%} of the run's target), "
            f"{summary.get('requests', 0):,} requests, {summary.get('failures', 0):,} failed.",
            "",
        ]
    )
    print(text)
    print("verdict:", "met" if verdicts and all(verdicts) else "not met")
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
