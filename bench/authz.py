"""Benchmark of the grant check: decisions/s in process, and over HTTP.

One invocation, one machine, loopback only:

* 10,000 active grants (150 consumers x 67 topics, 2–6 items each, half with a daily quota)
  written to a fresh SQLite database, loaded by one :class:`GrantCache`;
* in process: ``GrantCache.check`` over 200,000 pre-drawn requests (90 % held pairs asking
  for 1–3 granted items or for all, 10 % pairs with no grant), against a baseline of the
  same loop calling a function that does one dict lookup; medians of several rounds, and
  per-call latency percentiles (``perf_counter_ns`` around each call, timer included);
* HTTP: ``POST /api/v1/authz/check`` on the whole exchange app (uvicorn + httptools +
  uvloop, one process) driven by ``wrk`` (one thread, 64 connections, the same bodies),
  against a baseline route added to the same app for the run: the same request and
  response models, the same key authentication and consumer rule, async like the check,
  answering a fixed decision instead of asking the grant cache. The difference between
  the two is what the check costs over HTTP.

Run: ``.venv/bin/python bench/authz.py [--rounds 5] [--seconds 5]``. Results are printed
and written to ``bench/results/authz.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson
from _common import figure, free_port, wait_up

from exchange.authz.cache import GrantCache
from exchange.authz.models import Grant
from exchange.catalog.models import Topic
from exchange.children import end_with_parent
from exchange.clock import Clock
from exchange.db.engine import Database
from exchange.db.migrate import ensure_current
from exchange.members.models import Department

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "authz.md"
KEY = "bench-operator"
CONSUMERS = 150
TOPICS = 67
GRANTS = 10_000
ITEMS = [f"item_{i}" for i in range(8)]

Request = tuple[str, str, tuple[str, ...] | None]
#: the baseline route the run adds to the app: the check's route without the check
BASELINE_PATH = "/bench/check-fixed"


def seed(url: str, rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """Write departments and 10,000 active grants; return (consumer, topic, items)."""
    db = Database(url)
    ensure_current(db)
    today = dt.date.today()
    held: list[tuple[str, str, list[str]]] = []
    with db.session() as session:
        session.add_all(
            Department(code=f"d{c:03d}", name=f"部门{c:03d}", kind="municipal", area_code="440100")
            for c in range(CONSUMERS)
        )
        session.add(
            Department(code="gaj", name="广州市公安局", kind="municipal", area_code="440100")
        )
        session.flush()
        # A grant names its topic (a foreign key): the topics exist, as in a real catalog.
        session.add_all(
            Topic(
                category=f"1010{t:05d}",
                sequence="000001",
                resource_code=f"1010{t:05d}/000001",
                name=f"主题{t:03d}",
                provider="gaj",
                classification="basic",
                group="basic",
                resource_type="interface",
                sharing_type="unconditional",
                data={},
                search_text="",
                published_on=today,
            )
            for t in range(TOPICS)
        )
        session.flush()
        for c in range(CONSUMERS):
            for t in range(TOPICS):
                if len(held) == GRANTS:
                    break
                items = sorted(rng.sample(ITEMS, rng.randint(2, 6)))
                topic = f"1010{t:05d}/000001"
                held.append((f"d{c:03d}", topic, items))
                session.add(
                    Grant(
                        consumer=f"d{c:03d}",
                        provider="gaj",
                        resource_code=topic,
                        items=items,
                        purpose_scope="data_verification",
                        purpose_text="bench",
                        legal_function="bench",
                        delivery="interface",
                        valid_from=today - dt.timedelta(days=1),
                        valid_until=today + dt.timedelta(days=365),
                        # Half carry a quota so the quota arithmetic is on the measured path.
                        daily_quota=10**9 if len(held) % 2 else None,
                        status="active",
                    )
                )
    db.dispose()
    return held


def draw(held: list[tuple[str, str, list[str]]], n: int, rng: random.Random) -> list[Request]:
    out: list[Request] = []
    for _ in range(n):
        if rng.random() < 0.1:
            out.append((f"d{rng.randrange(CONSUMERS):03d}", "309999999/999999", ("item_0",)))
            continue
        consumer, topic, items = rng.choice(held)
        if rng.random() < 0.2:
            out.append((consumer, topic, None))
        else:
            out.append(
                (consumer, topic, tuple(rng.sample(items, rng.randint(1, min(3, len(items))))))
            )
    return out


def rate(fn: Callable[[str, str, Iterable[str] | None], object], reqs: list[Request]) -> float:
    started = time.perf_counter()
    for consumer, topic, items in reqs:
        fn(consumer, topic, items)
    return len(reqs) / (time.perf_counter() - started)


def latencies(cache: GrantCache, reqs: list[Request]) -> list[int]:
    clock = time.perf_counter_ns
    check = cache.check
    out = []
    for consumer, topic, items in reqs:
        t0 = clock()
        check(consumer, topic, items)
        out.append(clock() - t0)
    return out


def pct(values: list[int], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] / 1000


def start_exchange(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "EXCHANGE_DATABASE_URL": url,
        "EXCHANGE_OPERATOR_KEY": KEY,
        "EXCHANGE_MOCK_DEPARTMENTS": "false",
        "EXCHANGE_LOG_LEVEL": "warning",
    }
    code = (
        "import uvicorn\n"
        "from fastapi import Request\n"
        "from exchange.app import create_app\n"
        "from exchange.authz.schemas import CheckRequest, CheckResult\n"
        "from exchange.config import Settings\n"
        "from exchange.context import ctx_of\n"
        "from exchange.errors import NotPermitted\n"
        "app = create_app(Settings())\n"
        # The check's route with the grant cache's answer replaced by a fixed one.
        "async def fixed(body: CheckRequest, request: Request) -> CheckResult:\n"
        "    caller = ctx_of(request).auth.authenticate(request.headers.get('authorization'))\n"
        "    if not caller.is_operator and caller.code != body.consumer:\n"
        "        raise NotPermitted('not yours', code='not_your_department')\n"
        "    return CheckResult(allowed=True, reason='granted', grant_id=1,\n"
        "                       items=sorted(body.items or ()), remaining_quota=None)\n"
        f"app.add_api_route('{BASELINE_PATH}', fixed, methods=['POST'],"
        " response_model=CheckResult)\n"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, loop='uvloop',"
        " http='httptools', log_level='warning', access_log=False)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], env=env, preexec_fn=end_with_parent())


def wrk(url: str, seconds: int, script: Path | None) -> tuple[float, int, str]:
    """(requests/s, non-2xx count, p99 latency text) of one wrk run."""
    cmd = ["wrk", "-t1", "-c64", f"-d{seconds}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(figure(r"Requests/sec:\s+([\d.]+)", out))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    # Anchored to the latency table's row: a stdev share like "79.99%" also ends in 99%.
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE)
    return rps, int(bad.group(1)) if bad else 0, p99.group(1) if p99 else "?"


def lua_script(path: Path, reqs: list[Request], route: str) -> None:
    bodies = []
    for consumer, topic, items in reqs[:2000]:
        body: dict[str, object] = {"consumer": consumer, "topic": topic}
        if items is not None:
            body["items"] = list(items)
        bodies.append(orjson.dumps(body).decode())
    lines = ",\n".join("  [[" + b + "]]" for b in bodies)
    path.write_text(
        "local bodies = {\n" + lines + "\n}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #bodies + 1\n"
        '  return wrk.format("POST", "' + route + '", {["Content-Type"] = '
        '"application/json", ["Authorization"] = "Bearer ' + KEY + '"}, bodies[i])\n'
        "end\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--no-http", action="store_true", help="in-process figures only")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rng = random.Random(2020)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        started = time.perf_counter()
        held = seed(url, rng)
        seeded = time.perf_counter() - started
        reqs = draw(held, args.calls, rng)

        db = Database(url)
        cache = GrantCache(db, Clock(db))
        started = time.perf_counter()
        cache.check(*reqs[0])
        load_ms = (time.perf_counter() - started) * 1000
        allowed = sum(cache.check(c, t, i).allowed for c, t, i in reqs[:10_000])
        table = {(c, t): items for c, t, items in held}

        def baseline(consumer: str, topic: str, _items: Iterable[str] | None) -> object:
            return table.get((consumer, topic))

        base_rounds, check_rounds = [], []
        for _ in range(args.rounds):
            base_rounds.append(rate(baseline, reqs))
            check_rounds.append(rate(cache.check, reqs))
        lat = latencies(cache, reqs)
        timer = latencies_of_timer(len(reqs))
        cache.close()
        db.dispose()

        base_med = statistics.median(base_rounds)
        check_med = statistics.median(check_rounds)
        p50, p99, p999 = pct(lat, 0.5), pct(lat, 0.99), pct(lat, 0.999)
        print(f"seeded {len(held):,} grants in {seeded:.1f}s; cache load {load_ms:.0f} ms")
        print(f"baseline dict lookup: {base_med:,.0f}/s  {[f'{r:,.0f}' for r in base_rounds]}")
        print(f"GrantCache.check:     {check_med:,.0f}/s  {[f'{r:,.0f}' for r in check_rounds]}")
        print(f"latency p50 {p50:.2f} µs, p99 {p99:.2f} µs, p99.9 {p999:.2f} µs")

        http: dict[str, tuple[list[float], int, list[str]]] = {}
        if not args.no_http:
            if shutil.which("wrk") is None:
                raise SystemExit("wrk is needed for the HTTP figures: apt-get install -y wrk")
            port = free_port()
            proc = start_exchange(url, port)
            try:
                base = f"http://127.0.0.1:{port}"
                wait_up(base + "/healthz", proc)
                script = Path(tmp) / "check.lua"
                lua_script(script, reqs, "/api/v1/authz/check")
                fixed = Path(tmp) / "fixed.lua"
                lua_script(fixed, reqs, BASELINE_PATH)
                wrk(base + "/api/v1/authz/check", 1, script)  # warm-up
                wrk(base + BASELINE_PATH, 1, fixed)
                for name, target, lua in (
                    ("fixed", base + BASELINE_PATH, fixed),
                    ("check", base + "/api/v1/authz/check", script),
                ):
                    rounds, bad, p99s = [], 0, []
                    for _ in range(args.rounds):
                        rps, nbad, p99_text = wrk(target, args.seconds, lua)
                        rounds.append(rps)
                        bad += nbad
                        p99s.append(p99_text)
                    http[name] = (rounds, bad, p99s)
                    med = statistics.median(rounds)
                    print(f"HTTP {name}: {med:,.0f} req/s {rounds} non-2xx {bad}")
            finally:
                proc.terminate()
                proc.wait(10)

    write_results(
        args,
        seeded=seeded,
        load_ms=load_ms,
        allowed=allowed,
        base_rounds=base_rounds,
        check_rounds=check_rounds,
        p50=p50,
        p99=p99,
        p999=p999,
        timer=timer,
        http=http,
        load=(load_before, os.getloadavg()),
    )


def latencies_of_timer(n: int) -> float:
    """Median cost of the two timer reads themselves, in µs."""
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        out.append(clock() - t0)
    return statistics.median(out) / 1000


Load = tuple[float, float, float]


def write_results(
    args: argparse.Namespace,
    *,
    seeded: float,
    load_ms: float,
    allowed: int,
    base_rounds: list[float],
    check_rounds: list[float],
    p50: float,
    p99: float,
    p999: float,
    timer: float,
    http: dict[str, tuple[list[float], int, list[str]]],
    load: tuple[Load, Load],
) -> None:
    check_med = statistics.median(check_rounds)
    met = "met" if check_med >= 200_000 and p99 <= 50 else "**NOT met**"
    fmt = ", ".join
    lines = [
        "# Authorization check benchmark",
        "",
        f"Measured in one run of `bench/authz.py` on {platform.node()} ({os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}), {dt.datetime.now():%Y-%m-%d %H:%M}. "
        f"{GRANTS:,} active grants ({CONSUMERS} consumers x {TOPICS} topics), SQLite; "
        f"medians of {args.rounds} rounds, warm (the cache loaded, the server answered a "
        "warm-up run). Load average (1, 5, 15 min) "
        + ", ".join(f"{x:.2f}" for x in load[0])
        + " before, "
        + ", ".join(f"{x:.2f}" for x in load[1])
        + " after: the machine is shared, compare figures of the same run.",
        "",
        "## In process: `GrantCache.check`",
        "",
        f"{args.calls:,} pre-drawn requests per round: 90 % held pairs (1–3 granted items, or "
        f"all items), 10 % pairs without a grant; {allowed:,} of the first 10,000 allowed. "
        "Half the grants carry a daily quota. Cache load of all grants: "
        f"{load_ms:.0f} ms (seeding {seeded:.1f} s).",
        "",
        "| what | median decisions/s | rounds |",
        "|---|---:|---|",
        f"| baseline: function doing one dict lookup | {statistics.median(base_rounds):,.0f} | "
        f"{fmt(f'{x:,.0f}' for x in base_rounds)} |",
        f"| `GrantCache.check` | **{check_med:,.0f}** | {fmt(f'{x:,.0f}' for x in check_rounds)} |",
        "",
        f"Per-call latency (timer reads included, ~{timer:.2f} µs): p50 {p50:.2f} µs, "
        f"**p99 {p99:.2f} µs**, p99.9 {p999:.2f} µs.",
        "",
        f"Target ≥ 200,000/s and p99 ≤ 50 µs: {met}. The check is "
        f"{check_med / statistics.median(base_rounds):.0%} of the bare dict-lookup rate.",
        "",
    ]
    if http:
        lines += [
            "## Over HTTP: `POST /api/v1/authz/check`",
            "",
            "The whole exchange app in one uvicorn process (httptools, uvloop), operator key, "
            f"`wrk` one thread 64 connections {args.seconds} s per round on the same 2 CPUs, "
            "cycling over 2,000 request bodies.",
            "",
            "| what | median req/s | rounds | wrk p99 per round | non-2xx |",
            "|---|---:|---|---|---:|",
        ]
        for name, label in (
            (
                "fixed",
                f"baseline: `POST {BASELINE_PATH}`, the check's route answering a fixed decision",
            ),
            ("check", "`POST /api/v1/authz/check`"),
        ):
            rounds, bad, p99s = http[name]
            lines.append(
                f"| {label} | **{statistics.median(rounds):,.0f}** | "
                f"{fmt(f'{x:,.0f}' for x in rounds)} | {fmt(p99s)} | {bad} |"
            )
        fixed_med = statistics.median(http["fixed"][0])
        check_http = statistics.median(http["check"][0])
        lines += [
            "",
            "The baseline is the check's own route (same request and response models, same "
            "key authentication and consumer rule, async) with the grant cache's answer "
            f"replaced by a fixed one: the check runs at {check_http / fixed_med:.0%} of it, "
            f"{1e6 / check_http - 1e6 / fixed_med:+.1f} µs of wall time per request at 64 "
            "connections (wrk shares the 2 CPUs), against the "
            f"{1e6 / check_med:.1f} µs a check costs in process.",
            "",
        ]
    RESULTS.write_text("\n".join(lines))
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
