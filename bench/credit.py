"""Benchmark of credit double publicity: red/black list batch queries and submissions.

One invocation, one machine, loopback only:

* a fresh SQLite database (or ``--database-url``), seeded with the core catalog, the 151
  units and the list grants, then ``--records`` penalty decisions about ``--codes``
  enterprises of the default synthetic city (100,000 people, 20,000 enterprises), 0-4
  each, dated over the last three years (so some codes are black-listed, some red);
* the whole exchange app in one uvicorn process (httptools, uvloop), driven by one
  keep-alive ``httpx`` client, one request at a time, as the customs (``gzhg``);
* list queries: ``POST /api/v1/credit/lists/query`` with 1,000 codes, *first* (codes never
  asked before; the server rates the city's enterprises in the background from start-up)
  and *again* (the same batch repeated), against two
  baselines measured in the same run: ``GET /healthz`` (the HTTP floor) and the same query
  with 1 code (the fixed cost of a list call: auth, grant check, audit);
* in process: ``credit.lists.query`` for other batches (no HTTP, no audit), *cold* with
  an empty rating cache (each code rated when asked: the worst case, a city larger than
  the cache) and *warm*;
* submissions: ``POST /api/v1/credit/records`` batches of 1,000 new penalty decisions as
  the market regulator, against the same batch again (all duplicates: validation and the
  lookup, no insert).

Run: ``.venv/bin/python bench/credit.py [--rounds 20]``. Prints the figures and rewrites
``bench/results/credit.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import free_port, wait_up

from exchange.config import Settings
from exchange.credit import lists, service
from exchange.credit.schemas import SubmitBatch
from exchange.db.engine import Database
from exchange.db.migrate import ensure_current
from exchange.departments.city import City
from exchange.security import demo_key
from exchange.seed import seed

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "credit.md"
KEY = "bench-operator"
SCJGJ_CODE = "114401009713466374"
CATEGORIES = (("罚款",), ("警告",), ("罚款", "没收违法所得"), ("责令停产停业",))


def penalty(code: str, number: str, day: dt.date, rng: random.Random) -> dict[str, Any]:
    cats = CATEGORIES[rng.choices(range(4), weights=(70, 20, 8, 2))[0]]
    fine = rng.randint(500, 150_000) if "罚款" in cats else None
    return {
        "kind": "penalty",
        "decision_number": number,
        "party_kind": "legal_person",
        "party_name": f"广州{code[-6:]}有限公司",
        "credit_code": code,
        "legal_representative": "张三",
        "legal_basis": "《中华人民共和国食品安全法》第一百二十四条",
        "content": "、".join(cats),
        "violation_facts": "销售不符合食品安全标准的食品",
        "categories": list(cats),
        "fine_amount": None if fine is None else f"{fine}.00",
        "decision_date": day.isoformat(),
        "authority": "广州市市场监督管理局",
        "authority_code": SCJGJ_CODE,
    }


def preload(
    db: Database, settings: Settings, codes: list[str], n: int, rng: random.Random
) -> float:
    """Publish ``n`` penalties about ``codes`` through the service; seconds taken."""
    from exchange.authz.calendar import WorkingCalendar
    from exchange.clock import Clock

    clock = Clock(db)
    now = clock.now()
    today = clock.today()
    deadlines = service.Deadlines(
        WorkingCalendar.from_settings(settings.holidays, settings.workdays, uncovered="weekdays")
    )
    started = time.perf_counter()
    for start in range(0, n, 1000):
        batch = [
            penalty(
                rng.choice(codes),
                f"穗市监罚〔预〕{i}号",
                today - dt.timedelta(days=rng.randint(0, 3 * 365)),
                rng,
            )
            for i in range(start, min(n, start + 1000))
        ]
        with db.session() as session:
            service.submit(
                session, "scjgj", SubmitBatch.model_validate({"records": batch}),
                now=now, deadlines=deadlines,
            )  # fmt: skip
    return time.perf_counter() - started


def start_exchange(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    code = (
        "import uvicorn\n"
        "from exchange.app import create_app\n"
        "from exchange.config import Settings\n"
        f"uvicorn.run(create_app(Settings()), host='127.0.0.1', port={port}, loop='uvloop',"
        " http='httptools', log_level='warning', access_log=False)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **env})


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (Linux ``/proc``): unlike wall time, it does
    not grow with the other work on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def summary(ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"{statistics.median(ms):.1f} | {p95:.1f} | {len(ms)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--codes", type=int, default=20_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rng = random.Random(13)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        env = {
            "EXCHANGE_DATABASE_URL": url,
            "EXCHANGE_OPERATOR_KEY": KEY,
            "EXCHANGE_MOCK_DEPARTMENTS": "false",
            "EXCHANGE_CATALOG_PROFILE": "core",
            "EXCHANGE_CALENDAR_UNCOVERED": "weekdays",
            "EXCHANGE_AUDIT_KEY_FILE": f"{tmp}/audit.key",
            "EXCHANGE_AUDIT_MIRROR": f"{tmp}/audit-checkpoints.ndjson",
            "EXCHANGE_LOG_LEVEL": "warning",
        }
        os.environ.update(env)
        settings = Settings()
        city = City(settings.seed, settings.population, settings.enterprises)
        codes = city.sample_credit_codes(min(args.codes, settings.enterprises), seed=5)
        db = Database(url)
        ensure_current(db)
        seed(db, settings, KEY, __import__("exchange.clock", fromlist=["Clock"]).Clock(db))
        load_s = preload(db, settings, codes, args.records, rng)
        print(f"preloaded {args.records:,} penalties in {load_s:.1f} s")

        # In process: the list rules over the database, no HTTP, no audit.
        ratings = lists.Ratings(city)
        today = dt.datetime.now(dt.UTC).date()
        batches = [rng.sample(codes, 1000) for _ in range(args.rounds)]
        inproc_cold: list[float] = []
        inproc_warm: list[float] = []
        black = red = 0
        for batch in batches:
            with db.sessions() as session:
                inproc_cold.append(
                    timed(lambda b=batch: lists.query(session, b, today=today, ratings=ratings))
                )
                answers = lists.query(session, batch, today=today, ratings=ratings)
                inproc_warm.append(
                    timed(lambda b=batch: lists.query(session, b, today=today, ratings=ratings))
                )
            black += sum(any(m["name"] == "black" for m in a["lists"]) for a in answers)
            red += sum(any(m["name"] == "red" for m in a["lists"]) for a in answers)
        db.dispose()

        port = free_port()
        proc = start_exchange(env, port)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_up(base + "/healthz", proc)
            gzhg = {"Authorization": f"Bearer {demo_key(KEY, 'gzhg')}"}
            scjgj = {"Authorization": f"Bearer {demo_key(KEY, 'scjgj')}"}
            query = "/api/v1/credit/lists/query"
            with httpx.Client(base_url=base, timeout=60) as http:

                def post(path: str, body: Any, headers: dict[str, str]) -> None:
                    resp = http.post(path, json=body, headers=headers)
                    if resp.status_code != 200:
                        raise SystemExit(f"{path}: {resp.status_code} {resp.text[:300]}")

                for _ in range(5):  # warm-up: connections, grant cache, code paths
                    http.get("/healthz")
                    post(query, {"credit_codes": codes[:1]}, gzhg)
                health: list[float] = []
                one: list[float] = []
                cold: list[float] = []
                warm: list[float] = []
                cpu = dict.fromkeys(("health", "one", "cold", "warm"), 0.0)
                fresh = [rng.sample(codes, 1000) for _ in range(args.rounds)]

                def step(series: list[float], name: str, fn: Any) -> None:
                    before = cpu_seconds(proc.pid)
                    series.append(timed(fn))
                    cpu[name] += cpu_seconds(proc.pid) - before

                for batch in fresh:
                    step(health, "health", lambda: http.get("/healthz"))
                    step(one, "one", lambda b=batch: post(query, {"credit_codes": b[:1]}, gzhg))
                    step(cold, "cold", lambda b=batch: post(query, {"credit_codes": b}, gzhg))
                    step(warm, "warm", lambda b=batch: post(query, {"credit_codes": b}, gzhg))
                submit: list[float] = []
                dup: list[float] = []
                for r in range(max(5, args.rounds // 2)):
                    day = dt.date.today() - dt.timedelta(days=1)
                    body = {
                        "records": [
                            penalty(rng.choice(codes), f"穗市监罚〔测〕{r}-{i}号", day, rng)
                            for i in range(1000)
                        ]
                    }
                    submit.append(timed(lambda b=body: post("/api/v1/credit/records", b, scjgj)))
                    dup.append(timed(lambda b=body: post("/api/v1/credit/records", b, scjgj)))
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    load = os.getloadavg()
    rows = {
        "GET /healthz (baseline: HTTP floor)": health,
        "list query, 1 code (baseline: fixed cost)": one,
        "list query, 1,000 codes, first time asked": cold,
        "list query, 1,000 codes, asked again": warm,
        "in process lists.query, 1,000 codes, cold ratings": inproc_cold,
        "in process lists.query, 1,000 codes, warm ratings": inproc_warm,
        "submit 1,000 new penalties": submit,
        "the same 1,000 again (all duplicates, baseline)": dup,
    }
    cpu_ms = {k: v * 1000 / len(fresh) for k, v in cpu.items()}
    cpu_line = (
        f"Server CPU per request (user + system, mean over {len(fresh)}; 10 ms ticks): "
        f"healthz {cpu_ms['health']:.1f} ms, 1 code {cpu_ms['one']:.1f} ms, 1,000 codes "
        f"first {cpu_ms['cold']:.1f} ms, again {cpu_ms['warm']:.1f} ms."
    )
    print(cpu_line)
    per_s = 1000 / (statistics.median(submit) / 1000)
    dup_s = 1000 / (statistics.median(dup) / 1000)
    lines = [f"| {name} | {summary(ms)} |" for name, ms in rows.items()]
    print("\n".join(lines))
    print(f"submissions: {per_s:,.0f} records/s (duplicates {dup_s:,.0f}/s)")
    print(f"black {black / len(batches):.0f}, red {red / len(batches):.0f} per 1,000 codes")
    if args.no_write:
        return
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite (file, WAL)"
    slowest = max(statistics.median(cold), statistics.median(warm))
    verdict = "met" if slowest <= 50 else "NOT met"
    RESULTS.write_text(
        "# Credit double publicity: list queries and submissions\n\n"
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `bench/credit.py` on "
        f"{platform.machine()} with {os.cpu_count()} CPUs shared with other work (load "
        f"average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end), Python "
        f"{platform.python_version()}, {backend}.\n\n"
        f"Case: {args.records:,} penalty decisions about {len(codes):,} enterprises of the "
        "default synthetic city (100,000 people, 20,000 enterprises) preloaded through the "
        f"service ({load_s:.1f} s); of each batch of 1,000 codes asked, on average "
        f"{black / len(batches):.0f} are on the black list and {red / len(batches):.0f} on "
        "the red one. The whole exchange in one uvicorn process; one keep-alive client, "
        "one request at a time, as the customs (`gzhg`, holding the seeded grant); every "
        "list call is audited (journal mode). *First time asked*: 1,000 codes not asked "
        "before (the server rated the city's enterprises in the background at start-up); "
        "*asked again*: the same batch. In process: *cold* with an empty rating cache (each "
        "code rated when asked, the case of a city larger than the cache), *warm* after. "
        "Submissions "
        "as the market regulator (`scjgj`), batches of 1,000 new decisions; the baseline "
        "resubmits the same batch (validation and lookup, nothing inserted).\n\n"
        "| what | median ms | p95 ms | requests |\n|---|---|---|---|\n"
        + "\n".join(lines)
        + f"\n\n{cpu_line} The CPU figure does not grow with the machine's other work as "
        "wall time does: it is the server's own cost of an answer.\n"
        + f"\nSubmissions: **{per_s:,.0f} records/s** (median batch; the all-duplicate "
        f"baseline {dup_s:,.0f} records/s). Issue 13's bound for a batch list query of "
        f"1,000 codes is 50 ms: **{verdict}** in this run (medians {statistics.median(cold):.1f} "
        f"ms first time asked, {statistics.median(warm):.1f} ms asked again).\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
