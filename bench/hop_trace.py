"""Where a crossing lookup's added latency goes, step by step (issue 12, the hop).

Starts a city and a province as bench/federation.py does, with tracepoints loaded into
both (bench/_hoptrace/sitecustomize.py, through PYTHONPATH), and runs wrk at one
connection with the department's jitter off: single lookups at the city, then crossing
lookups through the province, alternating. Prints, per case and process, the median of
every step between two tracepoints of a call (the clock is CLOCK_MONOTONIC, one clock for
both processes) and each process's CPU per lookup (all threads, and the event loop's
thread alone, from /proc). The figures are quoted in bench/results/federation-lookups.md
("Where the hop goes"); this script writes no results file of its own.

    .venv/bin/python bench/hop_trace.py [--seconds 6] [--rounds 2] [--population 100000]
"""

from __future__ import annotations

import argparse
import bisect
import collections
import glob
import itertools
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import free_port, work_dir  # noqa: E402

import federation as pair  # noqa: E402  (bench/federation.py: starting and granting)
from exchange.departments.city import City  # noqa: E402
from exchange.security import demo_key  # noqa: E402

Event = tuple[str, int, int]


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_one(url: str, script: Path, seconds: int) -> tuple[int, float]:
    """(requests, median ms) of wrk at one connection."""
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", "1", "-d", f"{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    count = re.search(r"(\d+) requests in", out)
    median = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    if count is None or median is None:
        raise SystemExit(f"wrk's output unread: {out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[median.group(2)]
    return int(count.group(1)), float(median.group(1)) * scale


def load_events(prefix: str, port: int) -> list[Event]:
    """The events of the process serving ``port`` (its file with the most events)."""
    files = glob.glob(f"{prefix}-{port}-*.tsv")
    best = max(files, key=lambda f: Path(f).stat().st_size)
    events = []
    for line in Path(best).read_text().splitlines():
        name, t, where, _ = line.split("\t")
        events.append((name, int(t), int(where)))
    return events


def steps(
    events: list[Event], windows: list[tuple[int, int]], external: set[int] | None, own: set[int]
) -> tuple[list[int], dict[str, list[int]]]:
    """Per call from outside (a read from a port not in ``own``, and in ``external`` when
    given) to its answer: the whole, and the time between consecutive tracepoints."""
    totals: list[int] = []
    between: dict[str, list[int]] = collections.defaultdict(list)
    starts = [e[1] for e in events]
    for start, end in windows:
        call: list[tuple[str, int]] | None = None
        source = 0
        for name, t, where in events[bisect.bisect_left(starts, start) :]:
            if t > end:
                break
            outside = where not in own and (external is None or where in external)
            if name == "in" and outside:
                call, source = [("in", t)], where
                continue
            if call is None:
                continue
            if name in ("in", "out") and not outside:
                name += " (department)"
            call.append((name, t))
            if name == "out" and where == source:
                for (a, ta), (b, tb) in itertools.pairwise(call):
                    between[f"{a} -> {b}"].append(tb - ta)
                totals.append(call[-1][1] - call[0][1])
                call = None
    return totals, between


def report(title: str, totals: list[int], between: dict[str, list[int]]) -> None:
    if not totals:
        return
    print(f"\n{title}: median {statistics.median(totals) / 1000:,.1f} µs over {len(totals)}")
    for key, values in sorted(between.items(), key=lambda kv: -len(kv[1])):
        if len(values) >= 0.3 * len(totals):
            print(f"  {statistics.median(values) / 1000:9.1f} µs  {key}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--population", type=int, default=100_000)
    args = ap.parse_args()
    tmp = work_dir("hop-trace-")
    prefix = str(tmp / "trace")
    os.environ["HOP_TRACE"] = prefix
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE / "_hoptrace"), os.environ.get("PYTHONPATH")) if p
    )
    city_port, province_port = free_port(), free_port()
    procs = [
        pair.start("province", province_port, city_port, tmp / "province", args.population),
        pair.start("city", city_port, province_port, tmp / "city", args.population),
    ]
    city, province = f"http://127.0.0.1:{city_port}", f"http://127.0.0.1:{province_port}"
    windows: dict[str, list[tuple[int, int]]] = {"single": [], "crossing": []}
    try:
        http = httpx.Client(timeout=600)
        op = {"Authorization": f"Bearer {pair.CITY_OP}"}
        code, mounted = mount(http, city, province)
        codes = City(2020, args.population, 20_000).sample_credit_codes(500, seed=11)
        scripts = {
            "single": (city, f"/api/v1/exchange/{code}/query", "gdzsj", pair.CITY_OP),
            "crossing": (
                province,
                f"/api/v1/exchange/{mounted}/query",
                "gd-scjgj",
                pair.PROVINCE_OP,
            ),
        }
        files = {}
        for case, (_, path, who, operator) in scripts.items():
            files[case] = tmp / f"{case}.lua"
            files[case].write_text(pair.lua(path, demo_key(operator, who), codes))
        for case, (url, *_) in scripts.items():
            pair.wrk(url, files[case], 4, 3)  # warm
        http.put(f"{city}/departments/_faults/scjgj", json={"jitter_ms": 0}, headers=op)
        pids = {"province": procs[0].pid, "city": procs[1].pid}
        for _ in range(args.rounds):
            for case, (url, *_) in scripts.items():
                before = {k: (cpu_seconds(p), cpu_seconds(p, p)) for k, p in pids.items()}
                started = time.perf_counter_ns()
                count, median = wrk_one(url, files[case], args.seconds)
                windows[case].append((started, time.perf_counter_ns()))
                cpu = []
                for k, p in pids.items():
                    whole, loop = cpu_seconds(p) - before[k][0], cpu_seconds(p, p) - before[k][1]
                    cpu.append(
                        f"{k} {whole / count * 1e6:,.0f} µs ({loop / count * 1e6:,.0f} loop)"
                    )
                print(
                    f"{case}: {count} lookups, median {median:.2f} ms; CPU per lookup: "
                    + ", ".join(cpu),
                    flush=True,
                )
        for proc in procs:
            os.kill(proc.pid, signal.SIGUSR2)
        time.sleep(2)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    events = {
        "province": load_events(prefix, province_port),
        "city": load_events(prefix, city_port),
    }
    clients = {k: {e[2] for e in v if e[0] == "csend"} for k, v in events.items()}
    everyone = clients["city"] | clients["province"]
    report("single, the city", *steps(events["city"], windows["single"], None, everyone))
    report(
        "crossing, the province", *steps(events["province"], windows["crossing"], None, everyone)
    )
    report(
        "crossing, the city",
        *steps(events["city"], windows["crossing"], clients["province"], clients["city"]),
    )


def mount(http: httpx.Client, city: str, province: str) -> tuple[str, str]:
    """The enterprise topic published, mounted and granted both ways (as bench/federation.py
    does): (the city's code, the province's)."""
    code, mounted = pair.publish_and_mount(http, city, province, "enterprise-registration")
    pair.apply(http, city, demo_key(pair.CITY_OP, "gdzsj"), code)
    pair.apply(http, province, demo_key(pair.PROVINCE_OP, "gd-scjgj"), mounted)
    return code, mounted


if __name__ == "__main__":
    main()
