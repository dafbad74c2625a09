"""Benchmark of automatic distribution: push end to end, lag at half that rate, pull feed.

One invocation, one machine, loopback only:

* ``exchange up`` (one process, mock departments off) on a fresh SQLite file; a topic of
  gaj's and grants with delivery ``subscription`` for the consumers;
* consumers' endpoints: the SDK's :class:`exchange.client.PushReceiver` (signature checked,
  de-duplicated) in this process, each on its own loopback port;
* **baseline, ingest alone**: ``POST /changes`` of ``--events`` events in calls of 1,000,
  no subscriber (what accepting into the outbox costs);
* **push end to end**: the same volume with 1 (then 4) push subscriptions: from the first
  publish to the last event acknowledged by every endpoint;
* **lag at half rate**: events published paced at half the measured 1-subscription push
  rate for ``--lag-seconds``; lag = the endpoint's receipt time − the event's
  ``changed_at`` (same clock), p50/p99;
* **pull feed**: one consumer reads every event from cursor 0 in pages of 5,000;
  **baseline**: the same rows read straight from SQLite (``SELECT`` + JSON decode).

Run: ``.venv/bin/python bench/distribution.py [--events 50000] [--rounds 3]``. Results are
printed and written to ``bench/results/distribution.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from _common import free_port, setting, wait_up, work_dir

from exchange.client import PushReceiver
from exchange.provider_auth import derive_provider_secret
from exchange.security import demo_key

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "distribution.md"
KEY = "exk_operator_bench-distribution"
SECRET = "exms_bench-distribution"
CONSUMERS = ("wjw", "ybj", "mzj", "rsj")
ITEMS: list[dict[str, str | bool]] = [
    {"field": "id_number", "name": "公民身份号码", "sharing_type": "unconditional", "is_key": True},
    {"field": "name", "name": "姓名", "sharing_type": "unconditional"},
    {"field": "district_code", "name": "户籍地区划代码", "sharing_type": "unconditional"},
    {"field": "birth_date", "name": "出生日期", "sharing_type": "unconditional"},
    {"field": "mother_id", "name": "母亲身份号码", "sharing_type": "unconditional"},
]


def _auth(code: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo_key(KEY, code)}"}


class Endpoint:
    """A consumer endpoint: counts events and records each one's lag."""

    def __init__(self, consumer: str) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.lags: list[float] = []
        self.receiver = PushReceiver(
            self, secret=derive_provider_secret(SECRET, consumer), audience=consumer
        )

    def __call__(self, event: dict[str, Any]) -> None:
        now = time.time()
        changed = dt.datetime.fromisoformat(event["changed_at"]).timestamp()
        with self.lock:
            self.count += 1
            self.lags.append(now - changed)


def _events(start: int, n: int) -> list[dict[str, Any]]:
    at = dt.datetime.now(dt.UTC).isoformat()
    return [
        {
            "key": f"4401062026{i:08d}",
            "kind": "birth",
            "changed_at": at,
            "record": {
                "id_number": f"4401062026{i:08d}",
                "name": f"新生儿{i}",
                "district_code": "440106",
                "birth_date": "2026-12-01",
                "mother_id": "44010619900101002X",
            },
        }
        for i in range(start, start + n)
    ]


class Bench:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=60)
        self.next = 0
        self.topics: list[str] = []

    def topic(self, slug: str, consumers: tuple[str, ...]) -> str:
        body = {
            "category": "101009001",
            "group": "basic",
            "name": f"出生登记变动 {slug}",
            "slug": slug,
            "provider": "gaj",
            "abstract": "出生登记的变动事件。",
            "resource_type": "interface",
            "items": ITEMS,
            "sharing": {"type": "unconditional", "usage_scopes": ["business_collaboration"]},
            "update_cycle": "realtime",
        }
        resp = self.http.post("/api/v1/catalog/topics", json=body, headers=_auth("gaj"))
        assert resp.status_code == 201, resp.text
        code: str = resp.json()["resource_code"]
        for consumer in consumers:
            resp = self.http.post(
                "/api/v1/applications",
                json={
                    "topic": code,
                    "items": [i["field"] for i in ITEMS],
                    "purpose": {"scope": "business_collaboration", "text": "出生一件事"},
                    "legal_function": "《母婴保健法》",
                    "valid_until": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
                    "delivery": "subscription",
                },
                headers=_auth(consumer),
            )
            assert resp.status_code == 201, resp.text
        return code

    def subscribe(self, consumer: str, topic: str, **body: Any) -> int:
        resp = self.http.post(
            "/api/v1/subscriptions", json={"topic": topic, **body}, headers=_auth(consumer)
        )
        assert resp.status_code == 201, resp.text
        sub: int = resp.json()["id"]
        return sub

    def publish(self, topic: str, n: int, per_call: int = 1000) -> None:
        sent = 0
        while sent < n:
            k = min(per_call, n - sent)
            # orjson: the producer's encoding is not the exchange's cost (2 shared cores).
            resp = self.http.post(
                f"/api/v1/exchange/{topic}/changes",
                content=orjson.dumps({"events": _events(self.next, k)}),
                headers={**_auth("gaj"), "Content-Type": "application/json"},
            )
            assert resp.status_code == 202, resp.text
            self.next += k
            sent += k


def _wait(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for deliveries")
        time.sleep(0.005)


def ingest(bench: Bench, n: int) -> float:
    topic = bench.topic(f"bench-ingest-{bench.next}", ())
    t0 = time.perf_counter()
    bench.publish(topic, n)
    return n / (time.perf_counter() - t0)


def push(bench: Bench, n: int, consumers: tuple[str, ...]) -> tuple[float, float]:
    """(source events/s, deliveries/s) from first publish to last acknowledgement."""
    topic = bench.topic(f"bench-push-{len(consumers)}-{bench.next}", consumers)
    endpoints = []
    servers = []
    for consumer in consumers:
        ep = Endpoint(consumer)
        server = ep.receiver.serve()
        base = server.__enter__()
        servers.append(server)
        endpoints.append(ep)
        bench.subscribe(consumer, topic, delivery="push", endpoint=f"{base}/push")
    try:
        t0 = time.perf_counter()
        bench.publish(topic, n)
        _wait(lambda: all(e.count >= n for e in endpoints), timeout=600)
        elapsed = time.perf_counter() - t0
    finally:
        for server in servers:
            server.__exit__(None, None, None)
    return n / elapsed, n * len(consumers) / elapsed


def lag(bench: Bench, rate: float, seconds: float) -> tuple[float, float, float, int]:
    """Publish paced at ``rate`` events/s; (p50, p99, max) lag in seconds and events."""
    topic = bench.topic(f"bench-lag-{bench.next}", ("wjw",))
    ep = Endpoint("wjw")
    with ep.receiver.serve() as base:
        bench.subscribe("wjw", topic, delivery="push", endpoint=f"{base}/push")
        tick = 0.1
        per_tick = max(1, int(rate * tick))
        total = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            due = start + (total / per_tick) * tick
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            bench.publish(topic, per_tick, per_call=per_tick)
            total += per_tick
        _wait(lambda: ep.count >= total, timeout=120)
    lags = sorted(ep.lags)
    q = statistics.quantiles(lags, n=100)
    return q[49], q[98], lags[-1], total


def pull(bench: Bench, topic: str, consumer: str, n: int) -> float:
    sub = bench.subscribe(consumer, topic, delivery="pull", from_cursor=0)
    cursor = 0
    got = 0
    t0 = time.perf_counter()
    with httpx.Client(base_url=bench.url, timeout=60) as http:
        while got < n:
            resp = http.get(
                f"/api/v1/subscriptions/{sub}/events",
                params={"cursor": cursor, "limit": 5000},
                headers=_auth(consumer),
            )
            assert resp.status_code == 200, resp.text
            page = orjson.loads(resp.content)  # the consumer's parser: its choice
            got += len(page["events"])
            cursor = page["next_cursor"]
            if not page["events"] and not page["more"]:
                break
    return got / (time.perf_counter() - t0)


def raw_read(path: Path, topic: str) -> float:
    """Baseline: the same rows straight from SQLite, JSON decoded, nothing else."""
    conn = sqlite3.connect(path)
    t0 = time.perf_counter()
    rows = conn.execute(
        "SELECT id, record_key, kind, changed_at, record FROM distribution_event "
        "WHERE resource_code = ? ORDER BY id",
        (topic,),
    ).fetchall()
    for row in rows:
        json.loads(row[4])
    elapsed = time.perf_counter() - t0
    conn.close()
    return len(rows) / elapsed


def results_text(
    args: argparse.Namespace, n: int, table: str, load_before: tuple[float, float, float]
) -> str:
    """The results file, whole: the setting line, the case, the figures and the targets
    (how to read them is bench/README.md's)."""
    cpu = platform.processor() or platform.machine()
    return f"""# Distribution benchmark

How to read these figures: `bench/README.md` (section "distribution").

{setting(load_before)}

One `exchange up` process (mock departments off) on a fresh SQLite file, on {cpu};
consumers' endpoints are the SDK's `PushReceiver` servers in the benchmark's own process
on loopback; medians of {args.rounds} rounds of {n:,} events (lag: one paced run of
{args.lag_seconds:g} s).

{table}

Events/s for push is source events accepted → acknowledged by every subscribed endpoint,
from the first publish to the last acknowledgement (publishing included: the
producer, the exchange and the consumers share the 2 cores). Targets (issue 11): push
≥ 5,000 events/s, p99 lag ≤ 1 s at half that rate, pull ≥ 50,000 events/s.
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lag-seconds", type=float, default=20.0)
    args = parser.parse_args()
    load_before = os.getloadavg()
    tmp = work_dir("bench-distribution-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "EXCHANGE_DATABASE_URL": f"sqlite:///{tmp}/exchange.db",
        "EXCHANGE_OPERATOR_KEY": KEY,
        "EXCHANGE_PROVIDER_SECRET": SECRET,
        "EXCHANGE_PORT": str(port),
        "EXCHANGE_MOCK_DEPARTMENTS": "false",
        "EXCHANGE_AUDIT_KEY_FILE": str(tmp / "audit.key"),
        "EXCHANGE_AUDIT_MIRROR": str(tmp / "mirror.ndjson"),
        "EXCHANGE_LICENCE_KEY_FILE": str(tmp / "licence.key"),
    }
    log = (tmp / "exchange.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "exchange.cli", "up"], env=env, stdout=log, stderr=log
    )
    try:
        wait_up(f"{url}/healthz", proc, timeout=180)
        bench = Bench(url)
        n = args.events
        rounds = range(args.rounds)
        ingest_rates = [ingest(bench, n) for _ in rounds]
        push1 = [push(bench, n, ("wjw",)) for _ in rounds]
        push4 = [push(bench, n, CONSUMERS) for _ in rounds]
        push1_rate = statistics.median(r[0] for r in push1)
        lag_result = lag(bench, push1_rate / 2, args.lag_seconds)
        pull_topic = bench.topic("bench-pull", ("wjw",))
        bench.publish(pull_topic, n)
        pull_rates = [pull(bench, pull_topic, "wjw", n) for _ in rounds]
        raw_rates = [raw_read(tmp / "exchange.db", pull_topic) for _ in rounds]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    med = statistics.median
    lines = [
        f"| baseline: ingest alone (POST /changes, 1,000 a call, no subscriber) | "
        f"{med(ingest_rates):,.0f} events/s |",
        f"| push end to end, 1 subscription | {push1_rate:,.0f} events/s |",
        f"| push end to end, 4 subscriptions (same events to each) | "
        f"{med(r[0] for r in push4):,.0f} events/s = {med(r[1] for r in push4):,.0f} "
        "deliveries/s |",
        f"| push lag at {push1_rate / 2:,.0f} events/s (half the 1-subscription rate), "
        f"{lag_result[3]:,} events | p50 {lag_result[0] * 1000:,.0f} ms, p99 "
        f"{lag_result[1] * 1000:,.0f} ms, max {lag_result[2] * 1000:,.0f} ms |",
        f"| pull feed, 1 consumer, pages of 5,000 | {med(pull_rates):,.0f} events/s |",
        f"| baseline: the same rows read straight from SQLite + JSON decode | "
        f"{med(raw_rates):,.0f} events/s |",
    ]
    table = "\n".join(["| case | median |", "|---|---|", *lines])
    print(table)
    RESULTS.write_text(results_text(args, n, table, load_before))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
