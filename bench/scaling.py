"""Benchmark: broker lookups with 1 and 2 exchange worker processes, on SQLite and PostgreSQL.

One invocation, all on loopback, load generator included:

* departments: ``exchange serve departments``, the definitions' default latency switched
  off for gaj (otherwise every case measures the same asyncio.sleep);
* exchange: ``exchange up --workers N`` (N = 1: the single process; N = 2: uvicorn's
  supervisor and two workers accepting on one socket), its mock departments off, the
  broker reaching the departments process above;
* wrk (1 thread, 64 connections): ``POST /api/v1/exchange/{code}/query`` with one key and
  mzj's key, keys drawn (seeded) from 2,000 existing ID numbers: auth, grant check, forward, item
  filtering, durable audit entry.

Each round runs the four cases (SQLite 1, SQLite 2, PostgreSQL 1, PostgreSQL 2), the order
of worker counts alternating between rounds, each on a freshly started exchange (seeded
once per database), 2 s of warm-up then ``--seconds`` measured; figures are medians of the
rounds. CPU per request is each process's user + system time over the run divided by the
requests served (workers summed; wrk's from ``wait4``).

    .venv/bin/python bench/scaling.py [--postgres postgresql+psycopg://user@host/db] \\
        [--rounds 3] [--seconds 5]

Without ``--postgres`` (or ``EXCHANGE_BENCH_POSTGRES_URL``) the run starts a PostgreSQL
server of its own (``bench/_postgres.py``, as the broker benchmark does) and deletes it
after; a database named with ``--postgres`` is emptied first. Results are printed and
written to ``bench/results/scaling.md``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from _common import free_port, setting, wait_up, work_dir
from _postgres import fresh_database, own_server
from _stack import Target, Workload, lua, spawned_workers
from sqlalchemy import text

from broker import Pids, wrk
from exchange.db.engine import Database
from exchange.departments.city import City
from exchange.security import demo_key

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scaling.md"
KEY = "exk_operator_bench"
POPULATION = 100_000
SLUG = "household-registration"
GRANTED = ("id_number", "name", "sex", "birth_date")
WORKERS = (1, 2)


def _env(database_url: str, port: int | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "EXCHANGE_OPERATOR_KEY": KEY,
        # The brokers sign provider calls; the departments process verifies with it.
        "EXCHANGE_PROVIDER_SECRET": "bench-provider-secret",
        "EXCHANGE_DATABASE_URL": database_url,
        "EXCHANGE_POPULATION": str(POPULATION),
        "EXCHANGE_ENTERPRISES": "2000",
        "EXCHANGE_MOCK_DEPARTMENTS": "false",
        "EXCHANGE_LOG_LEVEL": "warning",
    }
    if port is not None:
        env["EXCHANGE_PORT"] = str(port)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "exchange.cli", *args]


def worker_pids(proc: subprocess.Popen[bytes], workers: int) -> list[int]:
    """The processes serving: the process itself, or the supervisor's spawned workers."""
    if workers == 1:
        return [proc.pid]
    deadline = time.monotonic() + 30
    while True:
        spawned = spawned_workers(proc.pid)
        if len(spawned) == workers or time.monotonic() > deadline:
            return spawned
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def grant(url: str) -> str:
    """mzj holds a grant for four unconditional items of household registration."""
    auth = {"Authorization": f"Bearer {demo_key(KEY, 'mzj')}"}
    with httpx.Client(base_url=url, timeout=30) as http:
        topics = http.get(
            "/api/v1/catalog/topics", params={"provider": "gaj", "limit": 50}, headers=auth
        ).json()["items"]
        code: str = next(t["resource_code"] for t in topics if t.get("slug") == SLUG)
        held = http.post(
            "/api/v1/authz/check", json={"consumer": "mzj", "topic": code}, headers=auth
        ).json()
        if held.get("allowed"):
            return code
        today = http.get("/api/v1/clock", headers=auth).json()["today"]
        body = {
            "topic": code,
            "items": list(GRANTED),
            "purpose": {"scope": "data_verification", "text": "benchmark"},
            "legal_function": "benchmark",
            "valid_until": f"{int(today[:4]) + 1}{today[4:]}",
        }
        made = http.post("/api/v1/applications", json=body, headers=auth)
        assert made.status_code == 201, made.text
    return code


def case(
    database_url: str, workers: int, seconds: int, work: Path, servers: dict[str, Pids]
) -> dict[str, float]:
    """Start ``exchange up --workers N``, load it, stop it; wrk's figures."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work / f"exchange-{workers}.log").open("ab")
    proc = subprocess.Popen(
        _cli("up", "--workers", str(workers)),
        env=_env(database_url, port),
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_up(f"{url}/healthz", proc, timeout=120)
        code = grant(url)
        script = work / "broker.lua"
        city = City(2020, POPULATION, 2000)
        keys = [city.id_number_of(i) for i in range(0, 20_000, 10)]
        target = Target(
            code,
            "gaj",
            f"/api/v1/exchange/{code}/query",
            f"/departments/gaj/topics/{SLUG}/query",
            tuple(keys),
        )
        single = Workload("single", (target,), {"mzj": demo_key(KEY, "mzj")})
        script.write_text(lua(single, direct=False))
        pids = worker_pids(proc, workers)
        assert len(pids) == workers, f"found workers {pids}"
        watched = {**servers, **{f"exchange{i}": [pid] for i, pid in enumerate(pids)}}
        wrk(url, script, 2, 64, watched)  # warm: caches, connections, the journal
        row = wrk(url, script, seconds, 64, watched)
        row["cpu_exchange"] = sum(row.pop(f"cpu_exchange{i}") for i in range(workers))
        return row
    finally:
        stop(proc)
        log.close()


def prepare(database_url: str, dept_url: str, work: Path) -> None:
    """An empty database, seeded with the departments at ``dept_url``."""
    if database_url.startswith("postgresql"):
        db = Database(database_url)
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.dispose()
    subprocess.run(
        _cli("db", "upgrade"),
        env=_env(database_url),
        cwd=work,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        _cli("seed", "--departments-url", f"{dept_url}/departments"),
        env=_env(database_url),
        cwd=work,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--postgres", default=os.environ.get("EXCHANGE_BENCH_POSTGRES_URL"))
    args = parser.parse_args()
    with ExitStack() as held:
        if args.postgres:
            postgres = args.postgres
        else:
            postgres = held.enter_context(fresh_database(held.enter_context(own_server())))
        run(args, postgres)


def run(args: argparse.Namespace, postgres: str) -> None:
    work = work_dir("bench-scaling-")
    databases = {"SQLite": f"sqlite:///{work}/exchange.db", "PostgreSQL": postgres}
    dport = free_port()
    dept_url = f"http://127.0.0.1:{dport}"
    dept = subprocess.Popen(
        _cli("serve", "departments", "--port", str(dport)),
        env={**_env(""), "EXCHANGE_DATABASE_URL": databases["SQLite"]},
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        wait_up(f"{dept_url}/healthz", dept)
        httpx.put(
            f"{dept_url}/departments/_faults/gaj",
            json={"latency_ms": 0, "jitter_ms": 0},
            headers={"Authorization": f"Bearer {KEY}"},
        ).raise_for_status()
        for url in databases.values():
            prepare(url, dept_url, work)
        load_before = os.getloadavg()
        for r in range(args.rounds):
            order = WORKERS if r % 2 == 0 else WORKERS[::-1]
            for name, url in databases.items():
                for workers in order:
                    row = case(url, workers, args.seconds, work, {"department": [dept.pid]})
                    rows.setdefault((name, workers), []).append(row)
                    print(
                        f"round {r + 1} {name} x{workers}: {row['rps']:,.0f} req/s, "
                        f"p99 {row['p99']:.1f} ms, non-2xx {row['non2xx']:.0f}",
                        flush=True,
                    )
    finally:
        stop(dept)
    write(rows, args, load_before)


def write(
    rows: dict[tuple[str, int], list[dict[str, float]]],
    args: argparse.Namespace,
    load_before: tuple[float, float, float],
) -> None:
    def med(key: tuple[str, int], field: str) -> float:
        return statistics.median(r[field] for r in rows[key])

    lines = [
        "# Broker throughput with 1 and 2 exchange processes, SQLite and PostgreSQL",
        "",
        'How to read these figures: `bench/README.md` (section "scaling").',
        "",
        setting(load_before),
        "",
        "Workload: single-key "
        "lookups of household registration through the broker (warm caches, durable "
        "audit), wrk with 1 thread and 64 connections on the same machine; medians of "
        f"{args.rounds} rounds of {args.seconds} s. Baseline: 1 process on the same "
        "database in the same run.",
        "",
        "| database | processes | req/s | vs 1 | p50 ms | p99 ms | non-2xx | exchange µs/req "
        "| department µs/req | wrk µs/req |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("SQLite", "PostgreSQL"):
        base = med((name, 1), "rps")
        for workers in WORKERS:
            key = (name, workers)
            lines.append(
                f"| {name} | {workers} | {med(key, 'rps'):,.0f} | "
                f"{med(key, 'rps') / base:.2f} | {med(key, 'p50'):.1f} | {med(key, 'p99'):.1f} | "
                f"{med(key, 'non2xx'):.0f} | {med(key, 'cpu_exchange'):.0f} | "
                f"{med(key, 'cpu_department'):.0f} | {med(key, 'cpu_wrk'):.0f} |"
            )
    lines += ["", "Each round:", ""]
    for key, runs in sorted(rows.items()):
        lines.append(f"- {key[0]} x{key[1]}: " + ", ".join(f"{r['rps']:,.0f}" for r in runs))
    # The file is rewritten whole from this run: notes kept from an earlier run would sit
    # beside figures they were not written about.
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
