"""Benchmark of the exchange broker: lookups through the full pipeline vs. the department,
with a bare forwarding hop (nginx) in the same run.

One invocation, all on loopback, load generator included:

* departments: the mock department runtime (uvicorn, uvloop, httptools), every served
  department's default latency and error faults switched off (both paths would otherwise
  measure a sleep);
* exchange: the whole exchange app, one worker, SQLite audit with its journal;
* a second exchange of ``--workers`` processes (default 2; 1 leaves it out), as ``exchange
  up --workers N`` serves, its own SQLite, in front of the same departments: what a
  deployment that uses both cores gets (one process's event loop is one thread);
* nginx (Debian's, ``worker_processes 1``, a keepalive upstream of 64 connections): the
  same department behind a bare forwarding hop, the floor any intermediary pays;
* wrk (1 thread): 64 connections for throughput and p99, then 1 connection for latency.

Workloads (``--workload``, see ``bench/_stack.py``): ``single`` is one consumer looking up
one topic with one key per request over 2,000 ID numbers (where concurrent lookups share
a provider call: the broker's best case), plus the bulk export; ``spread`` is three
consumers looking up every exchangeable lookup topic of ten departments, topic, consumer
and key drawn at random per request. direct is the department's own ``…/query``; broker
is ``POST /api/v1/exchange/{code}/query`` with a department key: auth, grant check,
forward, item filtering, durable audit. Each round runs direct, nginx and the brokers back
to back, rotating which goes first; the figures are medians of the rounds.

    .venv/bin/python bench/broker.py [--workload single|spread] [--rounds 5] [--seconds 5]
    .venv/bin/python bench/broker.py --workload spread --profile /tmp/spread.txt

Results are printed and written to ``bench/results/broker.md`` (single) or
``bench/results/broker-spread.md`` (spread).

PostgreSQL (``--database both``): a SQLite and a PostgreSQL exchange in front of the same
departments, direct, SQLite and PostgreSQL back to back in each round, on a PostgreSQL
server of the run's own (``scripts/pg-start``, its own PGDATA and port) or on the one
``--postgres-url`` names (the run creates a database beside it and drops it after); each
audit log is checked with ``exchange audit verify`` after the run. Results:
``bench/results/broker-postgres-WORKLOAD.md``, one file per workload, rewritten whole.
``--smoke`` (CI) is one short round of that, exiting 1 on any non-2xx answer, socket
error or audit log that does not verify:

    .venv/bin/python bench/broker.py --database both --workload spread --rounds 3
    .venv/bin/python bench/broker.py --smoke --postgres-url postgresql+psycopg://…
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from _common import curl_seconds, figure, free_port, work_dir
from _postgres import Server, fresh_database, own_server, server_pids
from _stack import (
    DIRECT,
    KEY,
    POPULATION,
    ROOT,
    SINGLE_ITEMS,
    SINGLE_SLUG,
    Stack,
    Workload,
    departments,
    exchanges,
    lua,
    single_workload,
    spread_workload,
    stack,
)

from exchange.children import end_with_parent
from exchange.proctree import descendants

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
    proc = subprocess.Popen(
        [binary, "-p", str(work), "-c", str(conf)], preexec_fn=end_with_parent()
    )
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


#: What the script appends: the method and the history of these figures are explanation,
#: kept in bench/README.md rather than repeated (with old figures) in every results file.
NOTES = """
How to read these figures, and what was changed to reach them: `bench/README.md`
(section "broker").
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


def thread_cpu(pid: int) -> dict[int, float]:
    """User + system CPU seconds of each thread of a running process, by thread id."""
    spent = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        spent[int(tid)] = (int(fields[11]) + int(fields[12])) / _TICK
    return spent


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except (OSError, IndexError):  # a PostgreSQL backend that has ended meanwhile
            continue
    return total


Pids = list[int] | Callable[[], list[int]]


def wrk(
    base: str, script: Path, seconds: int, connections: int, servers: Mapping[str, Pids]
) -> dict[str, float]:
    """One wrk run: req/s, p50/p99 ms, non-2xx answers and socket errors, and CPU µs per
    request spent by wrk and by each of ``servers`` (name → its pids, or a function naming
    them when the run starts) during the run."""
    named = {name: pids() if callable(pids) else pids for name, pids in servers.items()}
    before = {name: _cpu(pids) for name, pids in named.items()}
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
    spent = {name: _cpu(pids) - before[name] for name, pids in named.items()}
    spent["wrk"] = usage.ru_utime + usage.ru_stime
    rps = float(figure(r"Requests/sec:\s+([\d.]+)", out))
    done = re.search(r"(\d+) requests in", out)
    count = max(float(done.group(1)) if done else rps * seconds, 1.0)
    # Anchored: a "+/- Stdev" figure such as 71.50% also ends in "50%".
    p50 = _ms(figure(r"^\s*50%\s+(\S+)", out, re.MULTILINE))
    p99 = _ms(figure(r"^\s*99%\s+(\S+)", out, re.MULTILINE))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    cpu = {f"cpu_{name}": secs / count * 1e6 for name, secs in spent.items()}
    non2xx = float(bad.group(1)) if bad else 0.0
    failed = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = float(sum(int(n) for n in failed.groups())) if failed else 0.0
    return {
        "requests": count,
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "non2xx": non2xx,
        "errors": errors,
        **cpu,
    }


AUDIT_COUNTERS = {
    "exchange_audit_entries_total": "audit_entries",
    "exchange_audit_groups_total": "audit_groups",
    "exchange_audit_commit_seconds_total": "audit_commit_s",
}


def audit_counters(ex_url: str) -> dict[str, float]:
    """The exchange's audit writer counters (``/metrics``): entries and group commits so
    far, and the writer thread's time spent committing them."""
    text = httpx.get(
        f"{ex_url}/metrics", headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    ).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in AUDIT_COUNTERS:
            found[AUDIT_COUNTERS[name]] = float(value)
    return found


def with_audit(ex_url: str, measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """``measure``'s figures and what the exchange's audit writer did meanwhile: entries
    per group commit, and ms per group commit (on PostgreSQL each answer waits for one)."""
    before = audit_counters(ex_url)
    result = measure()
    after = audit_counters(ex_url)
    groups = after.get("audit_groups", 0.0) - before.get("audit_groups", 0.0)
    if groups > 0:
        entries = after["audit_entries"] - before["audit_entries"]
        spent = after["audit_commit_s"] - before["audit_commit_s"]
        result["audit_group"] = entries / groups
        result["audit_commit_ms"] = spent / groups * 1e3
    return result


def export_rate(url: str, headers: dict[str, str], limit: int, out: Path) -> tuple[float, int]:
    """(records/s, records) of one streamed export read by curl into ``out``."""
    auth = [arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")]
    elapsed = curl_seconds(["-o", str(out), *auth, f"{url}?limit={limit}"], max_seconds=300)
    lines = out.read_bytes().count(b"\n")
    return lines / elapsed, lines


def profile(out: Path, pid: int, load: Callable[[], dict[str, float]]) -> None:
    """py-spy's collapsed stacks of ``pid`` while ``load`` runs, and the top frames."""
    spy = subprocess.Popen(
        [
            *(
                shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--duration",
                "10",
            ),
            *("--format", "raw", "--nonblocking", "--threads", "-o", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # py-spy attaches
    before = thread_cpu(pid)
    result = load()
    spent = {tid: secs - before.get(tid, 0.0) for tid, secs in thread_cpu(pid).items()}
    spy.wait(30)
    cpu = next(v for k, v in result.items() if k.startswith("cpu_exchange"))
    print(f"broker {result['rps']:.0f} req/s, {cpu:.0f} µs CPU per request")
    own: dict[str, int] = {}
    names: dict[int, str] = {pid: "MainThread"}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        if thread := re.match(r"thread \((\d+)\): (.*?);", stack):
            names[int(thread.group(1))] = thread.group(2)
        for frame in set(stack.split(";")):
            own[frame] = own.get(frame, 0) + int(count)
    print("CPU µs per request by thread (from /proc; the samples below are wall-clock):")
    for tid, secs in sorted(spent.items(), key=lambda kv: -kv[1]):
        if secs > 0:
            print(f"{secs / result['requests'] * 1e6:8.1f}  {names.get(tid, '?')} ({tid})")
    print(f"{total} samples; frames by inclusive share:")
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:60]:
        print(f"{n / total:6.1%}  {frame}")


def cprofile(out: Path, pid: int, load: Callable[[], dict[str, float]]) -> None:
    """cProfile of the exchange's event-loop thread, timed by its CPU clock, while ``load``
    runs; prints the functions by own and by cumulative CPU per request (inflated by the
    profiler's own cost per call: read the shares, not the sums)."""
    import pstats
    import signal

    out.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR2)  # start
    result = load()
    os.kill(pid, signal.SIGUSR2)  # stop and dump
    deadline = time.monotonic() + 30
    while not out.exists() or out.stat().st_size == 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"the exchange wrote no profile to {out}")
        time.sleep(0.1)
    time.sleep(0.5)  # the dump is written in one go; let it finish
    requests = result["requests"]
    print(f"broker {result['rps']:.0f} req/s, {result['cpu_exchange']:.0f} µs CPU per request")
    stats = pstats.Stats(str(out))
    # total_tt and stats are pstats.Stats's own (undocumented) attributes, not in typeshed.
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"event loop thread: {total / requests * 1e6:.0f} µs CPU per request (profiled)")
    rows = stats.stats  # type: ignore[attr-defined]
    for title, index in (("own", 2), ("cumulative", 3)):
        print(f"\nby {title} CPU, µs per request (calls per request):")
        ranked = sorted(rows.items(), key=lambda kv: -kv[1][index])[:45]
        for (path, line, name), (_, calls, tt, ct, _) in ranked:
            where = f"{Path(path).parent.name}/{Path(path).name}:{line}" if line else path
            value = tt if index == 2 else ct
            print(f"{value / requests * 1e6:8.1f} {calls / requests:6.2f}  {name}  {where}")


def leaked(path: Path, allowed: set[str]) -> bool:
    """Whether any exported record holds an item outside ``allowed``."""
    import orjson

    with path.open("rb") as fh:
        return any(set(orjson.loads(line)) - allowed for line in fh if line.strip())


PATHS = ("direct", "nginx", "broker")
#: the suffix of a path's run paced to ``--paced`` req/s in a round's row
PACED = "@paced"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", choices=("single", "spread"), default="single")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgres", "both"),
        default="sqlite",
        help="The exchange's database: sqlite (results in broker.md / broker-spread.md), "
        "postgres (printed only), or both: a SQLite and a PostgreSQL exchange in front of the "
        "same departments, measured side by side (results in broker-postgres-WORKLOAD.md).",
    )
    parser.add_argument(
        "--postgres-url",
        help="A PostgreSQL server to use (any database on it: the run creates its own beside "
        "it and drops it after); default: a server of the run's own (scripts/pg-start, its "
        "own PGDATA and port).",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="Seconds, not minutes (CI): one short round of --database both, exit 1 unless "
        "every answer was 2xx, no socket error and both audit logs verify; writes no results.",
    )
    parser.add_argument(
        "--cprofile",
        type=Path,
        help="Only profile (SQLite): cProfile the exchange's event-loop thread on its CPU "
        "clock (stats into this file) during one broker run at --connections, then stop.",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="A second broker path: an exchange of this many processes (`exchange up "
        "--workers N`, its own SQLite) in front of the same departments, measured in the "
        "same rounds (the lookup figures; the export stays one process's); 1 leaves it out.",
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--paced",
        type=float,
        default=5000.0,
        metavar="RATE",
        help="Also run every path paced to RATE req/s (64 connections) in each round: CPU "
        "per lookup at one equal load, beside each path's own saturation; 0 leaves it out.",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="Only profile: sample the exchange with py-spy (collapsed stacks into this file) "
        "during one broker run at --connections, then stop.",
    )
    args = parser.parse_args()
    if args.smoke:
        args.database, args.rounds, args.seconds = "both", 1, 2
    if args.database != "sqlite":
        raise SystemExit(with_postgres(args))
    work = work_dir("bench-broker-")
    load_before = os.getloadavg()
    profiling = args.cprofile is not None or args.profile is not None
    paths = PATHS if args.workers <= 1 or profiling else (*PATHS, "workers")
    with (
        stack(work, cprofile=args.cprofile) as st,
        nginx(work, st.dept_url) as (nginx_url, nginx_pids),
        ExitStack() as held,
    ):
        make = single_workload if args.workload == "single" else spread_workload
        workload = make(st)
        scripts = {"direct": work / "direct.lua", "broker": work / "broker.lua"}
        scripts["direct"].write_text(lua(workload, direct=True))
        scripts["broker"].write_text(lua(workload, direct=False))
        bases = {"direct": st.dept_url, "nginx": nginx_url, "broker": st.ex_url}
        scripts["nginx"] = scripts["direct"]
        paced: dict[str, Path] = {}
        if args.paced:
            paced["direct"] = paced["nginx"] = work / "direct-paced.lua"
            paced["direct"].write_text(lua(workload, direct=True, rate=args.paced))
            paced["broker"] = work / "broker-paced.lua"
            paced["broker"].write_text(lua(workload, direct=False, rate=args.paced))
        servers: dict[str, Pids] = {
            "department": [st.department.pid],
            "exchange": [st.exchange.pid],
            "nginx": nginx_pids,
        }
        watched = dict.fromkeys(paths, servers)
        if "workers" in paths:
            started = held.enter_context(
                exchanges(
                    st.dept_url,
                    {"workers": (work / "workers", None)},
                    workers={"workers": args.workers},
                )
            )
            url, supervisor = started["workers"]
            # Its own seeded catalogue and grants: the same topics, consumers and keys.
            scripts["workers"] = work / "workers.lua"
            theirs = make(Stack(st.dept_url, url, st.department, supervisor))
            scripts["workers"].write_text(lua(theirs, direct=False))
            if args.paced:
                paced["workers"] = work / "workers-paced.lua"
                paced["workers"].write_text(lua(theirs, direct=False, rate=args.paced))
            bases["workers"] = url
            # Its CPU is the supervisor's and its workers' together.
            watched["workers"] = {**servers, "exchange": lambda: descendants(supervisor.pid)}

        def run(kind: str, seconds: int, connections: int) -> dict[str, float]:
            return wrk(bases[kind], scripts[kind], seconds, connections, watched[kind])

        for kind in paths:  # warm every path (the broker's routes, grants, connections)
            run(kind, 2, 64)
        if args.cprofile is not None:
            cprofile(args.cprofile, st.exchange.pid, lambda: run("broker", 6, args.connections))
            return
        if args.profile is not None:
            profile(args.profile, st.exchange.pid, lambda: run("broker", 11, args.connections))
            return
        rounds: list[dict[str, dict[str, float]]] = []
        for r in range(args.rounds):
            row: dict[str, dict[str, float]] = {}
            # Rotate which path goes first: the machine's load drifts within a round.
            order = paths[r % len(paths) :] + paths[: r % len(paths)]
            for connections, suffix in ((64, ""), (1, "1")):
                for kind in order:
                    row[kind + suffix] = run(kind, args.seconds, connections)
            for kind in order if paced else ():
                row[kind + PACED] = wrk(bases[kind], paced[kind], args.seconds, 64, watched[kind])
            rounds.append(row)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v['rps']:.0f}/s" for k, v in row.items()))
        exports = _exports(st, workload, work, args.rounds) if args.workload == "single" else None
        load_after = os.getloadavg()
    text = report(args, workload, paths, rounds, exports, load_before, load_after)
    print(text)
    out = RESULTS[args.workload]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


@contextmanager
def postgres_database(args: argparse.Namespace) -> Iterator[tuple[Server, str]]:
    """The run's PostgreSQL server and a fresh database on it (migrated; dropped after)."""
    with ExitStack() as held:
        if args.postgres_url:
            server = Server(args.postgres_url)
        else:
            server = held.enter_context(own_server())
        yield server, held.enter_context(fresh_database(server))


def audit_verify(home: Path, database_url: str) -> tuple[bool, str]:
    """``exchange audit verify`` on an exchange's database, run where its state lives."""
    done = subprocess.run(
        [sys.executable, "-m", "exchange.cli", "audit", "verify", "--database-url", database_url],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    said = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode == 0, said[-1] if said else f"exit {done.returncode}"


def with_postgres(args: argparse.Namespace) -> int:
    """``--database postgres`` or ``both``; the exit status (``--smoke``: 1 on any error)."""
    work = work_dir("bench-broker-")
    load_before = os.getloadavg()
    homes = {"sqlite": work / "sqlite", "postgres": work / "postgres"}
    kinds = ("sqlite", "postgres") if args.database == "both" else ("postgres",)
    with postgres_database(args) as (server, pg_url):
        urls = {"sqlite": f"sqlite:///{homes['sqlite']}/exchange.db", "postgres": pg_url}
        with ExitStack() as running:
            dept_url, dept = running.enter_context(departments())
            started = running.enter_context(
                exchanges(dept_url, {kind: (homes[kind], urls[kind]) for kind in kinds})
            )
            stacks = {k: Stack(dept_url, started[k][0], dept, started[k][1]) for k in kinds}
            make = single_workload if args.workload == "single" else spread_workload
            workloads = {kind: make(st) for kind, st in stacks.items()}
            workload = workloads["postgres"]
            scripts = {"direct": work / "direct.lua"}
            scripts["direct"].write_text(lua(workload, direct=True))
            bases = {"direct": dept_url}
            for kind in kinds:
                scripts[kind] = work / f"{kind}.lua"
                scripts[kind].write_text(lua(workloads[kind], direct=False))
                bases[kind] = stacks[kind].ex_url
            servers: dict[str, Pids] = {"department": [dept.pid]}
            servers.update({f"exchange_{k}": [st.exchange.pid] for k, st in stacks.items()})
            servers["postgres"] = server_pids(server, pg_url)

            def run(kind: str, seconds: int, connections: int) -> dict[str, float]:
                def measure() -> dict[str, float]:
                    return wrk(bases[kind], scripts[kind], seconds, connections, servers)

                return measure() if kind == "direct" else with_audit(bases[kind], measure)

            for kind in bases:  # warm every path
                run(kind, 1 if args.smoke else 2, 64)
            if args.profile is not None:
                pid = stacks["postgres"].exchange.pid
                profile(args.profile, pid, lambda: run("postgres", 11, 64))
                return 0
            paths = ("direct", *kinds)
            rounds: list[dict[str, dict[str, float]]] = []
            for r in range(args.rounds):
                row: dict[str, dict[str, float]] = {}
                order = paths[r % len(paths) :] + paths[: r % len(paths)]
                for connections, suffix in ((64, ""), (1, "1")):
                    for kind in order:
                        row[kind + suffix] = run(kind, args.seconds, connections)
                rounds.append(row)
                said = ", ".join(f"{k} {v['rps']:.0f}/s" for k, v in row.items())
                print(f"round {r + 1}: {said}")
            load_after = os.getloadavg()
        # The exchanges have stopped (their writers committed and signed a close): the
        # audit trail of each run must verify.
        verified = {kind: audit_verify(homes[kind], urls[kind]) for kind in kinds}
    for kind, (ok, said) in verified.items():
        print(f"audit verify ({kind}): {'ok' if ok else 'FAILED'}: {said}")
    errors = {
        kind: (v["non2xx"], v["errors"])
        for r in rounds
        for kind, v in r.items()
        if v["non2xx"] or v["errors"]
    }
    if args.smoke:
        failed = bool(errors) or not all(ok for ok, _ in verified.values())
        print(
            f"smoke: {'FAILED' if failed else 'ok'}; "
            f"non-2xx and socket errors by path: {errors or 'none'}"
        )
        return 1 if failed else 0
    if args.database == "both":
        text = compare_report(args, workload, rounds, verified, server, load_before, load_after)
        print(text)
        path = results_postgres(workload.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(postgres_head(workload.name) + text.strip() + "\n")
    return 0


def results_postgres(workload: str) -> Path:
    """The results file of one workload's PostgreSQL-beside-SQLite run (one file each,
    rewritten whole by that run)."""
    return ROOT / "bench" / "results" / f"broker-postgres-{workload}.md"


def postgres_head(workload: str) -> str:
    return f"""# Broker benchmark: PostgreSQL beside SQLite, {workload} workload

One run of `bench/broker.py --database both --workload {workload}`: the mock departments,
wrk (1 thread), one exchange on SQLite (its audit journaled, group-committed behind) and
one on PostgreSQL (`fsync=off`, so a commit does not wait for the disk, like SQLite's
`synchronous=NORMAL` in WAL mode), all on this 2-core machine. Both exchanges serve the same
departments with the same seeded catalogue and grants; each round runs direct, SQLite and
PostgreSQL back to back (rotating which goes first), and the figures are medians of the
rounds. Target (issue 17): the broker's throughput on PostgreSQL at least 80 % of SQLite's,
on both workloads. How to read these figures: `bench/README.md` (section "broker on
PostgreSQL").

"""


def compare_report(
    args: argparse.Namespace,
    workload: Workload,
    rounds: list[dict[str, dict[str, float]]],
    verified: dict[str, tuple[bool, str]],
    server: Server,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    def med(kind: str, field: str) -> float:
        return statistics.median(r[kind].get(field, 0.0) for r in rounds)

    paths = ("direct", "sqlite", "postgres")
    share = med("postgres", "rps") / med("sqlite", "rps")
    share_by_round = [r["postgres"]["rps"] / r["sqlite"]["rps"] for r in rounds]
    where = "a server of the run's own (scripts/pg-start)" if server.pgdata else "a named server"
    verdict = "**met**" if share >= 0.8 else "**not met**"
    checked = "; ".join(
        f"{kind}: {'ok' if ok else 'FAILED'} ({said})" for kind, (ok, said) in verified.items()
    )
    lines = [
        f"## {workload.name} workload",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}; {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; PostgreSQL on {where}. Medians of "
        f"{args.rounds} rounds of {args.seconds} s, warm (every path ran 2 s before). Load "
        f"average {', '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{', '.join(f'{x:.2f}' for x in load_after)} after.",
        "",
        "| measure | direct to department | broker, SQLite | broker, PostgreSQL | "
        "PostgreSQL ÷ SQLite |",
        "|---|---|---|---|---|",
        "| req/s, 64 connections | "
        + " | ".join(f"{med(k, 'rps'):,.0f}" for k in paths)
        + f" | **{share:.0%}** (target ≥ 80 %: {verdict}) |",
        "| p99 ms, 64 connections | " + " | ".join(f"{med(k, 'p99'):.1f}" for k in paths) + " | |",
        "| median ms, 1 connection | "
        + " | ".join(f"{med(k + '1', 'p50'):.3f}" for k in paths)
        + " | |",
        "| req/s, 1 connection | "
        + " | ".join(f"{med(k + '1', 'rps'):,.0f}" for k in paths)
        + f" | {med('postgres1', 'rps') / med('sqlite1', 'rps'):.0%} |",
        "| non-2xx answers, socket errors | "
        + " | ".join(f"{med(k, 'non2xx'):.0f}, {med(k, 'errors'):.0f}" for k in paths)
        + " | |",
        *(
            f"| CPU µs per lookup in {label}, 64 connections | "
            + " | ".join(f"{med(k, 'cpu_' + who):.0f}" for k in paths)
            + " | |"
            for who, label in (
                ("department", "the department"),
                ("exchange_sqlite", "the SQLite exchange"),
                ("exchange_postgres", "the PostgreSQL exchange"),
                ("postgres", "PostgreSQL's server processes"),
                ("wrk", "wrk"),
            )
        ),
        *(
            f"| audit {label}, {n} connection{'s' if n > 1 else ''} | – | "
            + " | ".join(f"{med(k + suffix, field):{fmt}}" for k in paths[1:])
            + " | |"
            for n, suffix in ((64, ""), (1, "1"))
            for field, label, fmt in (
                ("audit_group", "entries per group commit", ".1f"),
                ("audit_commit_ms", "ms per group commit (writer thread)", ".2f"),
            )
        ),
        "",
        "PostgreSQL ÷ SQLite per round: " + ", ".join(f"{x:.0%}" for x in share_by_round),
        "",
        "Per round, req/s (64 connections, then 1): "
        + "; ".join(", ".join(f"{k} {v['rps']:.0f}" for k, v in r.items()) for r in rounds),
        "",
        f"`exchange audit verify` after the run: {checked}",
    ]
    return "\n".join(lines) + "\n"


Exports = tuple[list[float], list[tuple[float, int]], list[bool]]


def _exports(st: Stack, workload: Workload, work: Path, rounds: int) -> Exports:
    """Warm bulk exports of the single workload's topic: direct and through the broker."""
    code = workload.targets[0].code
    auth = {"Authorization": f"Bearer {workload.consumers['mzj']}"}
    direct_export = f"{st.dept_url}/departments/gaj/topics/{SLUG}/export"
    broker_export = f"{st.ex_url}/api/v1/exchange/{code}/export"
    saved = work / "export.ndjson"
    # Warm both: the department's cache holds the whole chunks (direct) and, once the
    # broker has asked for the granted items, those cut to them (through the broker).
    export_rate(direct_export, DIRECT, POPULATION, saved)
    export_rate(broker_export, auth, POPULATION, saved)
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
    paths: tuple[str, ...],
    rounds: list[dict[str, dict[str, float]]],
    exports: Exports | None,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    def med(kind: str, field: str) -> float:
        return statistics.median(r[kind][field] for r in rounds)

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    brokers = [k for k in paths if k in ("broker", "workers")]
    name = {"broker": "1 process", "workers": f"{args.workers} processes"}
    label = {
        "direct": "direct to department",
        "nginx": "through nginx",
        "broker": "through broker, 1 process",
        "workers": f"through broker, {args.workers} processes (`--workers {args.workers}`)",
    }

    def each(ok: Callable[[str], bool]) -> str:
        """The verdict of each broker path, named when there are several."""
        if len(brokers) == 1:
            return verdict(ok(brokers[0]))
        return "; ".join(f"{name[k]}: {verdict(ok(k))}" for k in brokers)

    def ratio(kind: str) -> float:
        return med("direct", "rps") / med(kind, "rps")

    def added(kind: str) -> float:
        return med(kind + "1", "p50") - med("direct1", "p50")

    def cpu_ratio(kind: str, suffix: str = "") -> float:
        return med(kind + suffix, "cpu_exchange") / med("direct" + suffix, "cpu_department")

    paced = bool(rounds) and f"direct{PACED}" in rounds[0]
    rate = f"{args.paced:,.0f}"

    def row(measure: str, cells: dict[str, str], target: str = "", said: str = "") -> str:
        return "| " + " | ".join([measure, *(cells.get(k, "") for k in paths), target, said]) + " |"

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
    processes = (
        f" and a second exchange of {args.workers} processes (`exchange up --workers "
        f"{args.workers}`: uvicorn's supervisor and its workers on one socket, its own "
        "SQLite and audit journals, seeded and granted alike)"
        if "workers" in paths
        else ""
    )
    lines = [
        f"# Broker benchmark: {workload.name} workload",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}. One run of "
        f"`bench/broker.py --workload {workload.name}`: wrk (1 thread), the mock departments, "
        f"nginx and the exchange (**SQLite**, one process){processes}, each in its own "
        f"process on the same machine; medians of {args.rounds} rounds of {args.seconds} s, "
        "the paths back to back in each round (rotating which goes first). Load average "
        "(1, 5, 15 min) "
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
        "against a killed process) before the answer, group-committed to SQLite behind it. "
        "The department is one process on every path.",
        "",
        "| measure | " + " | ".join(label[k] for k in paths) + " | target | |",
        "|---" * (len(paths) + 3) + "|",
        row("req/s, 64 connections", {k: f"{med(k, 'rps'):,.0f}" for k in paths}),
        row(
            "p99 ms, 64 connections",
            {k: f"{med(k, 'p99'):.1f}" for k in paths},
            "broker ≤ 50",
            each(lambda k: med(k, "p99") <= 50),
        ),
        row(
            "direct ÷ path throughput",
            {k: f"{ratio(k):.2f}" for k in paths if k != "direct"},
            "broker ≤ 2.5",
            each(lambda k: ratio(k) <= 2.5),
        ),
        row(
            "median ms, 1 connection",
            {k: f"{med(k + '1', 'p50'):.3f}" for k in paths},
            "added ≤ 0.300",
            f"nginx adds {added('nginx'):.3f}, "
            + ", ".join(f"broker ({name[k]}) {added(k):.3f}" for k in brokers)
            + ": "
            + each(lambda k: added(k) <= 0.3),
        ),
        row("non-2xx answers", {k: f"{med(k, 'non2xx'):.0f}" for k in paths}, "0"),
        *(
            row(
                f"CPU µs per lookup in {who}, 64 connections",
                {k: f"{med(k, 'cpu_' + who):.0f}" for k in paths},
            )
            for who in ("department", "nginx", "exchange", "wrk")
        ),
        row(
            "exchange's CPU per lookup ÷ department's per direct lookup, 64 connections "
            "(each path at its own saturation)",
            {k: f"{cpu_ratio(k):.2f}" for k in brokers},
            "≤ 2",
            each(lambda k: cpu_ratio(k) <= 2),
        ),
    ]
    if paced:
        lines += [
            row(
                f"req/s served, every path paced to {rate} req/s (64 connections)",
                {k: f"{med(k + PACED, 'rps'):,.0f}" for k in paths},
            ),
            *(
                row(
                    f"CPU µs per lookup in {who}, every path paced to {rate} req/s",
                    {k: f"{med(k + PACED, 'cpu_' + who):.0f}" for k in paths},
                )
                for who in ("department", "nginx", "exchange")
            ),
            row(
                "exchange's CPU per lookup ÷ department's per direct lookup, every path "
                f"paced to {rate} req/s (one equal load)",
                {k: f"{cpu_ratio(k, PACED):.2f}" for k in brokers},
                "≤ 2",
                each(lambda k: cpu_ratio(k, PACED) <= 2),
            ),
        ]
    if exports is not None:
        direct_exports, done, leaks = exports
        export_med = statistics.median(e[0] for e in done)
        lines.append(
            row(
                f"bulk export records/s ({done[0][1]:,} records, warm)",
                {
                    "direct": f"{statistics.median(direct_exports):,.0f}",
                    "broker": f"{export_med:,.0f}",
                },
                "≥ 70 % of direct, items filtered",
                f"{export_med / statistics.median(direct_exports):.0%}; ungranted item seen: "
                f"{'YES' if any(leaks) else 'no'}",
            )
        )
    lines += [
        "",
        f"Per round, req/s (64 connections, then 1{f', then paced to {rate}' if paced else ''}): "
        + "; ".join(", ".join(f"{k} {v['rps']:.0f}" for k, v in r.items()) for r in rounds),
        "",
        f"Per round, median ms at 1 connection ({' / '.join(paths)}): "
        + ", ".join(" / ".join(f"{r[k + '1']['p50']:.3f}" for k in paths) for r in rounds),
        "",
        *(
            f"Per round, broker ({name[k]}) p99 ms at 64 connections: "
            + ", ".join(f"{r[k]['p99']:.1f}" for r in rounds)
            for k in brokers
        ),
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
