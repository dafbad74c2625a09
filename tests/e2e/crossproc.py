"""Two ``exchange up`` processes on one database, a consumer hammering process 2 while
process 1 acknowledges a change: how many calls that started after the acknowledgement
were still served (the rule says none).

Used by ``tests/e2e/test_freshness_e2e.py`` (one trial of each kind, in CI) and by
``bench/freshness.py`` (more trials, written to ``bench/results/freshness.md``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.serve import Server, exchange_up

from exchange.departments.city import City
from exchange.security import demo_key

OPERATOR_KEY = "exk_operator_crossproc"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
POPULATION = 2_000
ENTERPRISES = 500
SLUG = "household-registration"
GRANTED = ["id_number", "name", "sex", "birth_date"]
NARROWED = "sex"  # the item grant narrowing removes
KINDS = ("key_rotation", "deactivation", "grant_revoke", "grant_narrowing", "topic_retirement")
#: the consumers keep calling after the acknowledgement for at least this long, and until
#: this many calls have started after it (or ``AFTER_LIMIT`` seconds passed)
AFTER = 0.5
AFTER_CALLS = 30
AFTER_LIMIT = 20.0
CONSUMERS = 6


@dataclass
class Call:
    started: float
    ended: float
    status: int
    forbidden: bool  # served what the change forbids


@dataclass
class Trial:
    kind: str
    database: str
    ack_ms: float
    before_ok: int = 0
    after: int = 0
    served_after: int = 0
    calls: list[Call] = field(default_factory=list, repr=False)


@dataclass
class Pair:
    one: Server
    two: Server
    consumer_key: str
    ids: list[str]


@contextmanager
def two_processes(tmp: Path, database_url: str) -> Iterator[Pair]:
    """Process 1 seeds the database and is up before process 2 starts."""

    def up() -> AbstractContextManager[Server]:
        return exchange_up(
            tmp,
            database_url,
            OPERATOR_KEY,
            EXCHANGE_CATALOG_PROFILE="core",
            EXCHANGE_POPULATION=str(POPULATION),
            EXCHANGE_ENTERPRISES=str(ENTERPRISES),
            EXCHANGE_LOG_LEVEL="warning",
        )

    with ExitStack() as stack:
        one = stack.enter_context(up())
        two = stack.enter_context(up())
        city = City(2020, POPULATION, ENTERPRISES)
        ids = [city.id_number_of(i) for i in range(0, 200, 7)]
        yield Pair(one, two, demo_key(OPERATOR_KEY, "mzj"), ids)


def _ok(resp: httpx.Response) -> None:
    assert resp.status_code < 300, f"{resp.request.method} {resp.request.url}: {resp.text}"


def _topic(http: httpx.Client, slug: str) -> dict[str, Any]:
    found = http.get("/api/v1/catalog/topics", params={"provider": "gaj", "limit": 200})
    _ok(found)
    return next(t for t in found.json()["items"] if t.get("slug") == slug)


def fresh_topic(http: httpx.Client, trial: int) -> str:
    """A new gaj topic served by the household-registration API (so it can be narrowed or
    retired once per trial); its items re-share the elements rather than source them."""
    code = _topic(http, SLUG)["resource_code"]
    meta = http.get(f"/api/v1/catalog/topics/{code}/versions/1").json()["metadata"]
    meta["slug"] = None
    meta["name"] = f"户籍登记信息(复核{trial}-{time.monotonic_ns()})"
    meta["published_on"] = None
    for item in meta["items"]:
        item["is_source"] = False
    made = http.post("/api/v1/catalog/topics", json=meta, headers=OPERATOR)
    _ok(made)
    return str(made.json()["resource_code"])


def grant(http: httpx.Client, key: str, code: str) -> int:
    today = http.get("/api/v1/clock", headers=OPERATOR).json()["today"]
    body = {
        "topic": code,
        "items": GRANTED,
        "purpose": {"scope": "data_verification", "text": "居民家庭经济状况核对"},
        "legal_function": "《社会救助暂行办法》第十一条",
        "valid_until": f"{int(today[:4]) + 1}{today[4:]}",
    }
    made = http.post("/api/v1/applications", json=body, headers={"Authorization": f"Bearer {key}"})
    _ok(made)
    return int(made.json()["grant_id"])


def _hammer(
    url: str,
    key: Callable[[], str],
    code: str,
    ids: list[str],
    forbidden: Callable[[httpx.Response], bool],
    stop: threading.Event,
    out: list[Call],
) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        i = 0
        while not stop.is_set():
            i += 1
            started = time.monotonic()
            resp = http.post(
                f"/api/v1/exchange/{code}/query",
                json={"keys": [ids[i % len(ids)]]},
                headers={"Authorization": f"Bearer {key()}"},
            )
            out.append(Call(started, time.monotonic(), resp.status_code, forbidden(resp)))


def _served(resp: httpx.Response) -> bool:
    return resp.status_code == 200


def _narrowed_item_served(resp: httpx.Response) -> bool:
    return resp.status_code == 200 and any(NARROWED in r for r in resp.json()["records"])


def _change(one: httpx.Client, kind: str, code: str, gid: int) -> Callable[[], httpx.Response]:
    """The acknowledging call of each kind, made on process 1 (as the operator)."""
    if kind == "key_rotation":
        return lambda: one.post("/api/v1/departments/mzj/keys")
    if kind == "deactivation":
        return lambda: one.patch("/api/v1/departments/mzj", json={"active": False})
    if kind == "grant_revoke":
        return lambda: one.post(f"/api/v1/grants/{gid}/revoke", json={"reason": "复核"})
    if kind == "grant_narrowing":
        topic = one.get(f"/api/v1/catalog/topics/{code}").json()
        items = [i for i in topic["items"] if i["field"] != NARROWED]
        body = {"items": items, "reason": "复核: 性别不再共享"}
        return lambda: one.patch(f"/api/v1/catalog/topics/{code}", json=body)
    if kind == "topic_retirement":
        return lambda: one.post(f"/api/v1/catalog/topics/{code}/retire", json={"reason": "复核"})
    raise ValueError(kind)


def run_trial(pair: Pair, kind: str, n: int, database: str) -> Trial:
    """Set up what ``kind`` changes, hammer process 2, change it on process 1, count."""
    with httpx.Client(base_url=pair.one.url, timeout=30, headers=OPERATOR) as one:
        code = fresh_topic(one, n)
        gid = grant(one, pair.consumer_key, code)
        key = pair.consumer_key
        forbidden = _narrowed_item_served if kind == "grant_narrowing" else _served
        change = _change(one, kind, code, gid)
        calls: list[Call] = []
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=_hammer,
                args=(pair.two.url, lambda: key, code, pair.ids, forbidden, stop, calls),
                daemon=True,
            )
            for _ in range(CONSUMERS)
        ]
        for t in threads:
            t.start()
        try:
            # Process 2 serves the consumer before the change (else the trial proves nothing).
            deadline = time.monotonic() + 30
            while not any(c.forbidden for c in calls):
                assert time.monotonic() < deadline, f"process 2 never served {kind} before"
                time.sleep(0.02)
            started = time.monotonic()
            resp = change()
            acked = time.monotonic()
            _ok(resp)
            # Bounded: enough calls that started after the answer, or the limit.
            limit = acked + AFTER_LIMIT
            while time.monotonic() < limit and (
                time.monotonic() < acked + AFTER
                or sum(1 for c in calls if c.started > acked) < AFTER_CALLS
            ):
                time.sleep(0.02)
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        if kind == "key_rotation":
            pair.consumer_key = str(resp.json()["api_key"])
        elif kind == "deactivation":
            _ok(one.patch("/api/v1/departments/mzj", json={"active": True}))
    trial = Trial(kind, database, ack_ms=(acked - started) * 1000, calls=calls)
    trial.before_ok = sum(1 for c in calls if c.ended < started and c.forbidden)
    after = [c for c in calls if c.started > acked]
    trial.after = len(after)
    trial.served_after = sum(1 for c in after if c.forbidden)
    return trial
