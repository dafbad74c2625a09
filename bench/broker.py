"""Benchmark of the exchange broker: lookups through the full pipeline vs. the department,
with a bare forwarding hop (nginx) in the same run.

One invocation, all on loopback, load generator included, four processes:

* departments: the mock department runtime (uvicorn, uvloop, httptools), every served
  department's default latency and error faults switched off (both paths would otherwise
  measure a sleep);
* exchange: the whole exchange app, one worker, SQLite audit with its journal;
* nginx (Debian's, ``worker_processes 1``, a keepalive upstream of 64 connections): the
  same department behind a bare forwarding hop, the floor any intermediary pays;
* wrk (1 thread): 64 connections for throughput and p99, then 1 connection for latency.

Workloads (``--workload``, see ``bench/_stack.py``): ``single`` is one consumer looking up
one topic with one key per request over 2,000 ID numbers (where concurrent lookups share
a provider call: the broker's best case), plus the bulk export; ``spread`` is three
consumers looking up every exchangeable lookup topic of ten departments, topic, consumer
and key drawn at random per request. direct is the department's own ``…/query``; broker
is ``POST /api/v1/exchange/{code}/query`` with a department key: auth, grant check,
forward, item filtering, durable audit. Each round runs direct, nginx and broker back to
back, rotating which goes first; the figures are medians of the rounds.

    .venv/bin/python bench/broker.py [--workload single|spread] [--rounds 5] [--seconds 5]
    .venv/bin/python bench/broker.py --workload spread --profile /tmp/spread.txt

Results are printed and written to ``bench/results/broker.md`` (single) or
``bench/results/broker-spread.md`` (spread).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from _common import free_port
from _stack import (
    DIRECT,
    POPULATION,
    ROOT,
    SINGLE_ITEMS,
    SINGLE_SLUG,
    Stack,
    Workload,
    lua,
    single_workload,
    spread_workload,
    stack,
)

RESULTS = {
    "single": ROOT / "bench" / "results" / "broker.md",
    "spread": ROOT / "bench" / "results" / "broker-spread.md",
}
GRANTED = SINGLE_ITEMS
SLUG = SINGLE_SLUG

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    upstream department {{
        server 127.0.0.1:{dport};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://department;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""


@contextmanager
def nginx(work: Path, dept_url: str) -> Iterator[tuple[str, list[int]]]:
    """A bare nginx forwarding to the departments: (its URL, its master and worker pids)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise SystemExit("nginx is not installed (Debian: apt-get install -y nginx-light)")
    port = free_port()
    conf = work / "nginx.conf"
    dport = dept_url.rsplit(":", 1)[1]
    conf.write_text(NGINX_CONF.format(work=work, dport=dport, port=port))
    proc = subprocess.Popen([binary, "-p", str(work), "-c", str(conf)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            workers = [int(x) for x in children.read_text().split()] if children.exists() else []
            try:
                if workers and httpx.get(f"{url}/departments/gaj", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"nginx did not start: {(work / 'nginx-error.log').read_text()}")
            time.sleep(0.1)
        yield url, [proc.pid, *workers]
    finally:
        proc.terminate()
        proc.wait(10)


NOTES = """
## Reading these figures

The direct column is the baseline, measured in the same run against the same department
process. The machine has 2 cores shared by wrk, the department, the exchange and other
people's work (see the load average above); single runs move by ±20 %, which is why each
figure is a median of rounds and why direct and broker alternate within a round. The CPU
rows are each process's user + system time over a run divided by the requests served
(`/proc/<pid>/stat`; wrk's from `wait4`): through the broker, a lookup costs the
department, the exchange and wrk together what the three rows add up to, and on two
cores that sum bounds the throughput.

How the broker got here (first run: 473 req/s, p99 384 ms, 13.4 ms added at one
connection, 6.4k export records/s; that run also measured the departments' default 3-8 ms
latency on both paths), each step profiled with py-spy (`--profile`):

* the audit entry is made durable by copying its line into a memory-mapped journal
  segment (in the page cache at once, so a killed broker loses nothing, as SQLite WAL with
  `synchronous=NORMAL`), and a writer thread chains and group-commits journaled entries
  every 50 ms; before, each call waited for a commit through the writer thread;
* the exchange endpoints are served ahead of FastAPI's middleware and routing (the
  routes stay registered for OpenAPI and for whatever the fast path does not take);
* lookups go through a small pooled HTTP/1.1 client (httptools parser) instead of
  aiohttp, whose per-call machinery cost about as much CPU as the rest of the pipeline;
* routes are refreshed in the background (a blocking reload started one thread per
  waiting call), grant checks leave the loop only when a poll is due;
* `gc.freeze()` before serving: full collections over the long-lived heap paused the
  loop ~150 ms and set the p99;
* the export filter decodes only the granted items of each record (msgspec structs) in
  1 MiB batches; the audit writer inserts through the driver.

That was 5,852 req/s and a ratio of 3.69, with the exchange at ~210 µs and the department
at ~62 µs of CPU per lookup. Then (2026-11-26, each measured in this script):

* answers leave in one socket write (`exchange.serving`): uvicorn wrote the head and the
  body separately, two `send` calls and two wake-ups of the client per answer; the writes
  of a loop turn now go out together at its end (sending the head with its body at once
  instead measured 2.80-2.99 against 2.41-2.47: one burst per turn wakes the client once
  for many answers);
* lookups read three headers and the body straight from the ASGI scope and answer with
  two raw messages (no Starlette `Request`/`Response`); uvicorn's proxy-headers layer is
  off (nothing reads the client address). With the item above: ~145 µs per lookup,
  ratio ~3.0;
* concurrent small lookups of one topic share a provider call (`LookupBatcher`): one
  request to the department carries the keys of the lookups that arrived in the same
  loop turn, and each call gets its share, attributed by the topic's key item only when
  that is certain. The department's CPU per broker lookup fell from ~54 µs to ~11 µs
  and the exchange's to ~111-117 µs: the ratio went under 2.5. This workload (64
  connections looking up one topic) is sharing's best case: lookups spread over many
  topics share less, and a lookup alone in its turn costs what it did before.

The added latency at one connection sits at the target (per-round differences range
±0.05 ms around it): the extra hop itself (two more process wake-ups on loopback)
measured ~0.18 ms with a bare forwarding proxy on this machine, and an idle broker sends
a lookup at once rather than waiting a turn for others to share its provider call.
"""


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2)]


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def wrk(
    base: str, script: Path, seconds: int, connections: int, servers: dict[str, list[int]]
) -> dict[str, float]:
    """One wrk run: req/s, p50/p99 ms, non-2xx count, and CPU µs per request spent by wrk
    and by each of ``servers`` (name → its pids) during the run."""
    before = {name: _cpu(pids) for name, pids in servers.items()}
    proc = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed ({proc.returncode}): {out}")
    spent = {name: _cpu(pids) - before[name] for name, pids in servers.items()}
    spent["wrk"] = usage.ru_utime + usage.ru_stime
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = re.search(r"(\d+) requests in", out)
    count = max(float(done.group(1)) if done else rps * seconds, 1.0)
    # Anchored: a "+/- Stdev" figure such as 71.50% also ends in "50%".
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    cpu = {f"cpu_{name}": secs / count * 1e6 for name, secs in spent.items()}
    non2xx = float(bad.group(1)) if bad else 0.0
    return {"rps": rps, "p50": p50, "p99": p99, "non2xx": non2xx, **cpu}


def export_rate(url: str, headers: dict[str, str], limit: int, out: Path) -> tuple[float, int]:
    """(records/s, records) of one streamed export read by curl into ``out``."""
    auth = [arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")]
    started = time.perf_counter()
    subprocess.run(
        ["curl", "-sf", "-o", str(out), *auth, f"{url}?limit={limit}"], check=True, timeout=300
    )
    elapsed = time.perf_counter() - started
    lines = out.read_bytes().count(b"\n")
    return lines / elapsed, lines


def profile(out: Path, pid: int, load: Callable[[], dict[str, float]]) -> None:
    """py-spy's collapsed stacks of ``pid`` while ``load`` runs, and the top frames."""
    spy = subprocess.Popen(
        [
            *("py-spy", "record", "--pid", str(pid), "--rate", "500", "--duration", "5"),
            *("--format", "raw", "--nonblocking", "--threads", "-o", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # py-spy attaches
    result = load()
    spy.wait(30)
    print(f"broker {result['rps']:.0f} req/s, {result['cpu_exchange']:.0f} µs CPU per request")
    own: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for frame in set(stack.split(";")):
            own[frame] = own.get(frame, 0) + int(count)
    print(f"{total} samples; frames by inclusive share:")
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:60]:
        print(f"{n / total:6.1%}  {frame}")


def leaked(path: Path, allowed: set[str]) -> bool:
    """Whether any exported record holds an item outside ``allowed``."""
    import orjson

    with path.open("rb") as fh:
        return any(set(orjson.loads(line)) - allowed for line in fh if line.strip())


PATHS = ("direct", "nginx", "broker")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", choices=("single", "spread"), default="single")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument(
        "--profile",
        type=Path,
        help="Only profile: sample the exchange with py-spy (collapsed stacks into this file) "
        "during one broker run at 64 connections, then stop.",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-broker-"))
    load_before = os.getloadavg()
    with stack(work) as st, nginx(work, st.dept_url) as (nginx_url, nginx_pids):
        workload = single_workload(st) if args.workload == "single" else spread_workload(st)
        scripts = {"direct": work / "direct.lua", "broker": work / "broker.lua"}
        scripts["direct"].write_text(lua(workload, direct=True))
        scripts["broker"].write_text(lua(workload, direct=False))
        bases = {"direct": st.dept_url, "nginx": nginx_url, "broker": st.ex_url}
        scripts["nginx"] = scripts["direct"]
        servers = {
            "department": [st.department.pid],
            "exchange": [st.exchange.pid],
            "nginx": nginx_pids,
        }

        def run(kind: str, seconds: int, connections: int) -> dict[str, float]:
            return wrk(bases[kind], scripts[kind], seconds, connections, servers)

        for kind in PATHS:  # warm every path (the broker's routes, grants, connections)
            run(kind, 2, 64)
        if args.profile is not None:
            profile(args.profile, st.exchange.pid, lambda: run("broker", 6, 64))
            return
        rounds: list[dict[str, dict[str, float]]] = []
        for r in range(args.rounds):
            row: dict[str, dict[str, float]] = {}
            # Rotate which path goes first: the machine's load drifts within a round.
            order = PATHS[r % 3 :] + PATHS[: r % 3]
            for connections, suffix in ((64, ""), (1, "1")):
                for kind in order:
                    row[kind + suffix] = run(kind, args.seconds, connections)
            rounds.append(row)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v['rps']:.0f}/s" for k, v in row.items()))
        exports = _exports(st, workload, work, args.rounds) if args.workload == "single" else None
        load_after = os.getloadavg()
    text = report(args, workload, rounds, exports, load_before, load_after)
    print(text)
    out = RESULTS[args.workload]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


Exports = tuple[list[float], list[tuple[float, int]], list[bool]]


def _exports(st: Stack, workload: Workload, work: Path, rounds: int) -> Exports:
    """Warm bulk exports of the single workload's topic: direct and through the broker."""
    code = workload.targets[0].code
    auth = {"Authorization": f"Bearer {workload.consumers['mzj']}"}
    direct_export = f"{st.dept_url}/departments/gaj/topics/{SLUG}/export"
    broker_export = f"{st.ex_url}/api/v1/exchange/{code}/export"
    saved = work / "export.ndjson"
    export_rate(direct_export, DIRECT, POPULATION, saved)  # warm the department's cache
    direct_exports: list[float] = []
    exports: list[tuple[float, int]] = []
    leaks: list[bool] = []
    for _ in range(rounds):
        direct_exports.append(export_rate(direct_export, DIRECT, POPULATION, saved)[0])
        exports.append(export_rate(broker_export, auth, POPULATION, saved))
        leaks.append(leaked(saved, set(GRANTED)))
    return direct_exports, exports, leaks


def report(
    args: argparse.Namespace,
    workload: Workload,
    rounds: list[dict[str, dict[str, float]]],
    exports: Exports | None,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    def med(kind: str, field: str) -> float:
        return statistics.median(r[kind][field] for r in rounds)

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    ratio = med("direct", "rps") / med("broker", "rps")
    hop = med("direct", "rps") / med("nginx", "rps")
    added = med("broker1", "p50") - med("direct1", "p50")
    added_hop = med("nginx1", "p50") - med("direct1", "p50")
    cpu_ex = med("broker", "cpu_exchange")
    cpu_dept = med("direct", "cpu_department")
    if workload.name == "single":
        what = (
            "Workload **single** (warm): one consumer (mzj), one topic (household "
            "registration, 4 of its 13 items granted), one key per request cycling over "
            "2,000 existing ID numbers: concurrent lookups share a provider call, the "
            "broker's best case."
        )
    else:
        what = (
            f"Workload **spread** (warm): {len(workload.targets)} topics of "
            f"{len(workload.providers)} providers ({', '.join(sorted(workload.providers))}), "
            f"{len(workload.consumers)} consumers ({', '.join(workload.consumers)}), each "
            "request a topic, a consumer and a key (of 2,000 per topic) drawn at random; "
            "every shareable item granted."
        )
    lines = [
        f"# Broker benchmark: {workload.name} workload",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}. One run of "
        f"`bench/broker.py --workload {workload.name}`: wrk (1 thread), the mock departments, "
        "nginx and the exchange (**SQLite**), each in its own process on the same machine; "
        f"medians of {args.rounds} rounds of {args.seconds} s, direct, nginx and broker back "
        "to back in each round. Load average (1, 5, 15 min) "
        f"{', '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{', '.join(f'{x:.2f}' for x in load_after)} after: the machine is shared and busy "
        "(other people's test suites), so absolute figures move between runs; the ratios "
        "within a run are the figures to read.",
        "",
        what,
        "",
        "Single-key `POST …/query`; department latency and error faults off. nginx: a bare "
        "forwarding hop in front of the same department (keepalive upstream). Broker "
        "pipeline: key auth, grant check, forward (pooled HTTP/1.1; lookups arriving "
        "together share a provider call), item filtering, audit entry journaled (durable "
        "against a killed process) before the answer, group-committed to SQLite behind it.",
        "",
        "| measure | direct to department | through nginx | through broker | target | |",
        "|---|---|---|---|---|---|",
        "| req/s, 64 connections | "
        + " | ".join(f"{med(k, 'rps'):,.0f}" for k in PATHS)
        + " | | |",
        "| p99 ms, 64 connections | "
        + " | ".join(f"{med(k, 'p99'):.1f}" for k in PATHS)
        + " | broker ≤ 50 | |",
        f"| direct ÷ path throughput | | {hop:.2f} | {ratio:.2f} | broker ≤ 2.5 "
        f"| {verdict(ratio <= 2.5)} |",
        "| median ms, 1 connection | "
        + " | ".join(f"{med(k + '1', 'p50'):.3f}" for k in PATHS)
        + f" | added ≤ 0.300 | nginx adds {added_hop:.3f}, broker {added:.3f}: "
        f"{verdict(added <= 0.3)} |",
        "| non-2xx answers | " + " | ".join(f"{med(k, 'non2xx'):.0f}" for k in PATHS) + " | 0 | |",
        *(
            f"| CPU µs per lookup in {who}, 64 connections | "
            + " | ".join(f"{med(k, 'cpu_' + who):.0f}" for k in PATHS)
            + " | | |"
            for who in ("department", "nginx", "exchange", "wrk")
        ),
        f"| exchange's CPU per lookup ÷ department's per direct lookup | | | "
        f"{cpu_ex / cpu_dept:.2f} | ≤ 2 | {verdict(cpu_ex <= 2 * cpu_dept)} |",
    ]
    if exports is not None:
        direct_exports, done, leaks = exports
        export_med = statistics.median(e[0] for e in done)
        lines.append(
            f"| bulk export records/s ({done[0][1]:,} records, warm) | "
            f"{statistics.median(direct_exports):,.0f} | | {export_med:,.0f} "
            f"| ≥ 70 % of direct, items filtered | "
            f"{export_med / statistics.median(direct_exports):.0%}; ungranted item seen: "
            f"{'YES' if any(leaks) else 'no'} |"
        )
    lines += [
        "",
        "Per round, req/s (64 connections, then 1): "
        + "; ".join(", ".join(f"{k} {v['rps']:.0f}" for k, v in r.items()) for r in rounds),
        "",
        "Per round, median ms at 1 connection (direct / nginx / broker): "
        + ", ".join(" / ".join(f"{r[k + '1']['p50']:.3f}" for k in PATHS) for r in rounds),
        "",
        "Per round, broker p99 ms at 64 connections: "
        + ", ".join(f"{r['broker']['p99']:.1f}" for r in rounds),
        "",
    ]
    if exports is not None:
        lines += [
            "Per round, export records/s through the broker: "
            + ", ".join(f"{e[0]:,.0f}" for e in exports[1]),
            "",
        ]
    return "\n".join(lines) + NOTES


if __name__ == "__main__":
    main()
