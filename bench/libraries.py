"""Benchmark of the base information libraries: gathering and lookups, on SQLite.

One invocation, on loopback, the mock departments and the exchange each in their own
process (``bench/_stack.py``; every served department's latency and error faults off):

1. **Gathering** of a city (``--population``, enterprises a fifth of it): a full pass of
   both libraries through the broker's bulk export as the library unit (zsj) after every
   source's application is approved by its provider; records/s = records gathered ÷ the
   pass's duration. Round 1 is **cold** (the departments derive every record), later
   rounds **warm** (the departments' export chunks cached: what the library side costs).
   Baseline in the same run: the same topics read through the broker's export over HTTP
   by a plain client that writes nothing (the read path alone).
2. **Lookups** of an assembled person record (one ID number per request, over 2,000
   people, consumer mzj) with wrk at 64 connections, against the baseline of the broker's
   own single-topic lookup (household registration, 4 items) in the same run, rounds
   alternating which goes first; medians.
3. **Full gathering of a large city** (``--big``, e.g. 1,000,000 people): one cold full pass
   from a fresh departments process and exchange; its wall time.

    .venv/bin/python bench/libraries.py [--population 100000] [--rounds 3] [--seconds 5]
                                        [--big 1000000]

Results are printed and written whole: the gathering rounds and lookups to
``bench/results/libraries.md``, the ``--big`` pass to ``bench/results/libraries-big.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _stack
import httpx
from _common import work_dir
from _stack import KEY, ROOT, single_workload, stack

from broker import cpu_seconds, wrk
from exchange.departments.city import City
from exchange.security import demo_key

OPERATOR = {"Authorization": f"Bearer {KEY}"}
BIG_HEADER = "## Full gathering of a city of"
LOOKUPS_HEADER = "## Lookups of an assembled person record through the broker"
RESULTS = ROOT / "bench" / "results" / "libraries.md"
BIG_RESULTS = ROOT / "bench" / "results" / "libraries-big.md"
NOT_MEASURED = "Not measured in this run (`--gather-only`)."


def _gather(http: httpx.Client, full: bool) -> dict[str, Any]:
    resp = http.post("/api/v1/libraries/gather", json={"full": full}, headers=OPERATOR)
    assert resp.status_code == 202, resp.text
    while True:
        status = http.get("/api/v1/libraries/gather", headers=OPERATOR).json()
        if not status["running"]:
            last: dict[str, Any] = status["last"]
            return last
        time.sleep(0.5)


def _tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and every process below it (the departments
    serve from worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += cpu_seconds(current)
        except (OSError, IndexError):
            continue
        todo.extend(children.get(current, ()))
    return total


def _prepare(http: httpx.Client) -> dict[str, Any]:
    """A first pass files the library unit's applications; the providers approve them.
    That pass's report (it gathers the sources whose items need no review)."""
    first = _gather(http, full=False)
    zsj = {"Authorization": f"Bearer {demo_key(KEY, 'zsj')}"}
    apps = http.get(
        "/api/v1/applications",
        params={"role": "consumer", "status": "pending_review", "limit": 100},
        headers=zsj,
    ).json()["items"]
    for app in apps:
        owner = {"Authorization": f"Bearer {demo_key(KEY, app['provider'])}"}
        resp = http.post(f"/api/v1/applications/{app['id']}/approve", json={}, headers=owner)
        assert resp.status_code == 200, resp.text
    # Until the exchange's grant cache holds every grant of the library unit: a pass that
    # starts before would find the sources not granted yet.
    libs = http.get("/api/v1/libraries", headers=OPERATOR).json()
    codes = [s["resource_code"] for lib in libs for s in lib["sources"]]
    deadline = time.monotonic() + 120
    while True:
        checks = [
            http.post(
                "/api/v1/authz/check", json={"consumer": "zsj", "topic": c}, headers=OPERATOR
            ).json()
            for c in codes
        ]
        if all(c.get("allowed") for c in checks):
            return first
        assert time.monotonic() < deadline, "the library unit's grants never took effect"
        time.sleep(0.5)


def _empty(database: Path) -> None:
    """Empty both libraries in the exchange's database file, between passes (the exchange
    idle): every record and conflict deleted, every source's quality check set back to
    look at all of it. The next full pass is then a first load into an empty library,
    from warm sources. The bench's shortcut (the exchange has no call that empties a
    library); the sources' counters and watermarks stay (a full pass starts at 0)."""
    con = sqlite3.connect(database, timeout=60)
    try:
        with con:
            con.execute("DELETE FROM library_record")
            con.execute("DELETE FROM library_conflict")
            con.execute("UPDATE library_source SET checked_until = 0")
    finally:
        con.close()


def _read_rate(http: httpx.Client) -> tuple[float, int]:
    """Every library source read through the broker's export over HTTP, nothing written."""
    zsj = {"Authorization": f"Bearer {demo_key(KEY, 'zsj')}"}
    libs = http.get("/api/v1/libraries", headers=OPERATOR).json()
    records = 0
    started = time.perf_counter()
    for lib in libs:
        for src in lib["sources"]:
            items = ",".join(["id_number" if lib["library"] == "person" else "credit_code"])
            offset = 0
            while True:
                with http.stream(
                    "GET",
                    f"/api/v1/exchange/{src['resource_code']}/export",
                    params={"offset": offset, "limit": 100_000, "items": items},
                    headers=zsj,
                ) as resp:
                    assert resp.status_code == 200, resp.read()
                    for chunk in resp.iter_bytes():
                        records += chunk.count(b"\n")
                    nxt = int(resp.headers["x-next-offset"])
                    total = int(resp.headers["x-total-rows"])
                if nxt >= total or nxt == offset:
                    break
                offset = nxt
    return records / (time.perf_counter() - started), records


def _lookup_lua(keys: list[str], key: str) -> str:
    pool = ",".join(f'"{k}"' for k in keys)
    return (
        f"local keys = {{{pool}}}\nmath.randomseed(2020)\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        "request = function()\n  return wrk.format(nil, "
        '"/api/v1/libraries/person/query", nil, '
        "'{\"keys\":[\"' .. keys[math.random(#keys)] .. '\"]}')\nend\n"
    )


def _rate(g: dict[str, Any]) -> float:
    """The records gathered over the time spent gathering them (the quality check that ends
    a pass is reported beside it)."""
    spent = float(g["seconds"]) - float(g["check_seconds"])
    return float(g["total"]) / spent


def _cpu_cell(gathers: list[dict[str, Any]]) -> str:
    """The median CPU a record of the passes cost each process (the pass's quality check
    included)."""
    per = [(g["cpu"][0] / g["total"], g["cpu"][1] / g["total"]) for g in gathers]
    ex = statistics.median(x for x, _ in per) * 1e6
    dept = statistics.median(y for _, y in per) * 1e6
    return f"{ex:.1f}, {dept:.1f}"


#: the cases of a run's passes, as the results name them
CASES = {
    "cold": "full pass, cold sources (round 1: the library held what the preparing pass gathered)",
    "regather": "re-gather of an unchanged city, warm sources (median)",
    "first": "first load into an empty library, warm sources (median)",
}


def _median_of(
    gathers: list[dict[str, Any]], case: str, rate: Callable[[dict[str, Any]], float]
) -> float:
    return statistics.median(rate(g) for g in gathers if g["case"] == case)


def _whole(g: dict[str, Any]) -> float:
    """The records gathered over the whole pass (its quality check included)."""
    return float(g["total"]) / float(g["seconds"])


def _gathering_lines(
    args: argparse.Namespace,
    prepared: dict[str, Any],
    gathers: list[dict[str, Any]],
    reads: list[float],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> list[str]:
    """The results' header and gathering section."""
    total = gathers[0]["total"]
    rows = []
    for case, label in CASES.items():
        mine = [g for g in gathers if g["case"] == case]
        if not mine:
            continue
        rows.append(
            f"| {label} | {statistics.median(_whole(g) for g in mine):,.0f} | "
            f"{statistics.median(_rate(g) for g in mine):,.0f} | {_cpu_cell(mine)} | passes: "
            + "; ".join(
                f"{g['seconds']:.2f} s, check {float(g['check_seconds']):.2f} s" for g in mine
            )
            + " |"
        )
    judged = [
        _median_of(gathers, c, _whole) for c in ("regather", "first") if c in _cases(gathers)
    ] or [_whole(gathers[0])]
    verdict = "met" if min(judged) >= 200_000 else "NOT met"
    return [
        "# Base information libraries: gathering and lookups",
        "",
        'How to read these figures: `bench/README.md` (section "libraries").',
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, shared; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after. SQLite (WAL), one exchange "
        "process and one departments process on loopback, wrk 1 thread. Script: "
        "`bench/libraries.py`.",
        "",
        f"## Gathering, a city of {args.population:,} people and {args.population // 5:,} "
        "enterprises",
        "",
        f"Full passes of both libraries through the broker ({total:,} records from "
        f"{len(gathers[0]['gathered'])} sources), {args.rounds} rounds in one run: round 1 "
        "cold (the departments derive every record; the preparing pass had gathered "
        f"{prepared['total']:,} records), each later round a re-gather of the unchanged city "
        "and a first load into the library emptied just before (alternating which goes "
        "first), both from warm sources (the departments' export chunks cached).",
        "",
        "| case | records/s, whole pass | records/s, gathering alone | CPU µs/record: "
        "exchange, departments | detail |",
        "|---|---:|---:|---:|---|",
        *rows,
        f"| baseline: the same sources read through the broker's export over HTTP, nothing "
        f"written (median) | {statistics.median(reads):,.0f} | | | rounds: "
        + ", ".join(f"{x:,.0f}" for x in reads)
        + " |",
        "",
        "Target ≥ 200,000 records/s into the libraries on SQLite, judged on the whole pass "
        "(what a caller waits for, the quality check included), for the first load and the "
        f"re-gather alike: **{verdict}** (the lower of the two: {min(judged):,.0f}).",
        "",
    ]


def _cases(gathers: list[dict[str, Any]]) -> set[str]:
    return {g["case"] for g in gathers}


def _small(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Gathering rounds and lookups on a city of ``--population``: the results' first part
    (its gathering lines, and its lookups' lines: none with ``--gather-only``)."""
    load_before = os.getloadavg()
    _stack.POPULATION, _stack.ENTERPRISES = args.population, args.population // 5
    _stack.EXPORT_CACHE_MIB = args.departments_cache
    work = work_dir("bench-libraries-")
    gathers: list[dict[str, Any]] = []
    reads: list[float] = []
    lookups: dict[str, list[dict[str, float]]] = {"library": [], "broker": [], "spread": []}
    with stack(work) as st, httpx.Client(base_url=st.ex_url, timeout=600) as http:
        prepared = _prepare(http)
        for r in range(args.rounds):
            cases = ["cold"] if r == 0 else ["regather", "first"][:: 1 if r % 2 else -1]
            for case in cases:
                if case == "first":
                    _empty(work / "exchange.db")
                cpu = (_tree_cpu(st.exchange.pid), _tree_cpu(st.department.pid))
                last = _gather(http, full=True)
                last["cpu"] = (
                    _tree_cpu(st.exchange.pid) - cpu[0],
                    _tree_cpu(st.department.pid) - cpu[1],
                )
                last["case"] = case
                gathers.append(last)
                print(
                    f"round {r + 1}, {case}: {last['total']:,} records in "
                    f"{last['seconds']:.2f} s (check {last['check_seconds']:.2f} s), whole "
                    f"{_whole(last):,.0f}/s; CPU s: exchange {last['cpu'][0]:.2f}, "
                    f"departments {last['cpu'][1]:.2f}"
                )
            rate, n = _read_rate(http)
            reads.append(rate)
            print(f"  baseline read through the broker: {n:,} records, {rate:,.0f}/s")
        if args.gather_only:
            return (
                _gathering_lines(args, prepared, gathers, reads, load_before, os.getloadavg()),
                [],
            )
        workload = single_workload(st)
        city = City(2020, args.population, args.population // 5)
        keys = [city.id_number_of(i) for i in range(0, min(args.population, 20_000), 10)]
        # People across the whole city (50,000 at most: wrk's Lua holds 65,536 constants a
        # function): most lookups find the subject outside the exchange's memory of
        # recently read ones (library_cache_subjects, 20,000 by default).
        stride = max(1, args.population // 50_000)
        everyone = [city.id_number_of(i) for i in range(0, args.population, stride)]
        scripts = {
            "library": work / "library.lua",
            "broker": work / "broker.lua",
            "spread": work / "spread.lua",
        }
        scripts["library"].write_text(_lookup_lua(keys, demo_key(KEY, "mzj")))
        scripts["spread"].write_text(_lookup_lua(everyone, demo_key(KEY, "mzj")))
        scripts["broker"].write_text(_stack.lua(workload, direct=False))
        servers = {"exchange": [st.exchange.pid], "department": [st.department.pid]}
        for r in range(args.rounds):
            order = (
                ("library", "broker", "spread") if r % 2 == 0 else ("broker", "library", "spread")
            )
            for name in order:
                got = wrk(st.ex_url, scripts[name], args.seconds, 64, servers)
                lookups[name].append(got)
                print(f"lookups {name}: {got['rps']:,.0f} req/s p99 {got['p99']:.1f} ms")
    load_after = os.getloadavg()

    lib_rps = statistics.median(x["rps"] for x in lookups["library"])
    brk_rps = statistics.median(x["rps"] for x in lookups["broker"])
    lib_p99 = statistics.median(x["p99"] for x in lookups["library"])
    brk_p99 = statistics.median(x["p99"] for x in lookups["broker"])
    lib_cpu = statistics.median(x["cpu_exchange"] for x in lookups["library"])
    spr_rps = statistics.median(x["rps"] for x in lookups["spread"])
    spr_p99 = statistics.median(x["p99"] for x in lookups["spread"])
    spr_cpu = statistics.median(x["cpu_exchange"] for x in lookups["spread"])
    brk_cpu = statistics.median(x["cpu_exchange"] for x in lookups["broker"])
    lines = _gathering_lines(args, prepared, gathers, reads, load_before, load_after)
    return lines, [
        LOOKUPS_HEADER,
        "",
        f"64 connections, {args.seconds} s per run, {args.rounds} rounds, medians. library: "
        "`POST /api/v1/libraries/person/query` with one ID number (every source's elements "
        "mzj may see, audited), drawn from 2,000 people (their records held in the "
        f"exchange's memory after the first read) or from {len(everyone):,} across the "
        "city (most read from the library's tables: the memory holds 20,000); baseline "
        "broker: "
        "`POST /api/v1/exchange/{household}/query`, one key, 4 items, forwarded to the "
        "department (its best case).",
        "",
        "| case | req/s | p99 ms | exchange CPU µs/request |",
        "|---|---:|---:|---:|",
        f"| library lookup, 2,000 people | {lib_rps:,.0f} | {lib_p99:.1f} | {lib_cpu:,.0f} |",
        f"| library lookup, the whole city | {spr_rps:,.0f} | {spr_p99:.1f} | {spr_cpu:,.0f} |",
        f"| baseline: broker single-topic lookup | {brk_rps:,.0f} | {brk_p99:.1f} | "
        f"{brk_cpu:,.0f} |",
        "",
        f"Target ≥ 5,000 req/s: **{'met' if lib_rps >= 5_000 else 'NOT met'}** "
        f"(library ÷ broker {lib_rps / brk_rps:.2f}).",
        "",
    ]
    return lines


def _big(args: argparse.Namespace) -> list[str]:
    """One cold full pass of a city of ``--big`` people from fresh processes."""
    load_before = os.getloadavg()
    _stack.POPULATION, _stack.ENTERPRISES = args.big, args.big // 5
    work = work_dir("bench-libraries-big-")
    with stack(work) as st, httpx.Client(base_url=st.ex_url, timeout=1800) as http:
        _prepare(http)
        started = time.perf_counter()
        big = _gather(http, full=True)
        wall = time.perf_counter() - started
        print(f"big city: {big['total']:,} records in {wall:.0f} s")
    load_after = os.getloadavg()
    total = int(big["total"])
    check = float(big["check_seconds"])
    gathering = wall - check
    factor = 20_000_000 / args.big
    return [
        f"{BIG_HEADER} {args.big:,} people",
        "",
        f"One cold full pass of both libraries from fresh processes (a city of {args.big:,} "
        f"people and {args.big // 5:,} enterprises; SQLite; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after): {total:,} records in "
        f"**{wall / 60:.1f} minutes**, of which gathering {gathering:.0f} s "
        f"({total / gathering:,.0f} records/s, the departments deriving every record) and the "
        f"quality check {check:.0f} s. Per source: "
        + ", ".join(f"{k} {v:,}" for k, v in big["gathered"].items())
        + ".",
        "",
        f"A city of 20,000,000 people at these rates (linear: every source's rows grow with "
        f"the population; derived, not measured): about {total * factor:,.0f} records, "
        f"{gathering * factor / 60:,.0f} minutes of gathering and {check * factor / 60:,.0f} "
        "of quality check.",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--population", type=int, default=100_000, help="0: only the --big pass")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--big", type=int, default=0, help="also a cold full pass of this city")
    parser.add_argument(
        "--gather-only",
        action="store_true",
        help="only the gathering rounds (the results file says the lookups were not measured)",
    )
    parser.add_argument(
        "--departments-cache",
        type=int,
        default=1024,
        help="the departments' export chunk cache, MiB: 1024 holds every library source of a "
        "city of 100,000 whole and projected, so warm rounds read cached chunks (256, the "
        "default setting, does not: they are derived again every round)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--big-results", type=Path, default=BIG_RESULTS)
    args = parser.parse_args()
    # Each part rewrites its own file whole, from what this run measured.
    if args.population:
        gathering, lookups = _small(args)
        if not lookups:
            lookups = [LOOKUPS_HEADER, "", NOT_MEASURED, ""]
        text = "\n".join(gathering + lookups) + "\n"
        args.results.write_text(text)
        print(text)
    if args.big:
        text = "\n".join(["# Base information libraries: a full gathering", "", *_big(args)])
        args.big_results.write_text(text)
        print(text)


if __name__ == "__main__":
    main()
