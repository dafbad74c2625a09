"""Part of the day delivered by subscription: a source publishes, subscribers receive.

On the platform a share of the day's records is never asked for: it is distributed
automatically to the departments that subscribed (自动分发). The load test plays both
ends of that, on the machine it runs on:

- the **source**: public security (``gaj``, the source of household registration) posts
  record-level changes through ``POST /api/v1/exchange/{front}/{seq}/changes`` with its
  key, at the subscription share of the day's rate (as a department's own system would
  post them; the records are the synthetic city's, so they pass the exchange's checks);
- the **subscribers**: a few departments (:data:`SUBSCRIBERS`) hold a grant with delivery
  ``subscription`` and a push subscription to that topic, to an endpoint this process
  runs on loopback (the SDK's :class:`~exchange.client.PushReceiver`: signature checked,
  duplicates skipped).

Every delivered event is a record exchanged: it is booked in the records ledger (group and
action ``subscription``), so it counts towards the day's volume beside the lookups and
exports; the users' own target is the rest of the day. The summary adds the events
published and delivered, delivered events per second and the lag from the source's change
to its receipt (p50/p95/p99).

Runs in the local runner or the master (workers only make calls).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtests.profile import DayPlan

__all__ = ["SUBSCRIBERS", "SubscriptionDay"]

log = logging.getLogger("exchange.load")

SOURCE = "gaj"
TOPIC_SLUG = "household-registration"
#: Who subscribes to the births, moves and corrections of household registration.
SUBSCRIBERS = ("wjw", "ybj", "mzj", "rsj")
ITEMS = ("id_number", "name", "sex", "birth_date", "household_number", "registered_address")
#: The kind the load test publishes (a correction of the record at its source); the
#: subscriptions filter on it, so the mock departments' own living city is not counted.
KIND = "updated"
BATCH = 500
TICK = 0.25
_LAG_SAMPLES = 200_000


@dataclass
class SubscriptionDay:
    """The subscription share of one day: setup, the source's publishing, the receipts."""

    share: float
    plan: DayPlan
    topic: str | None = None
    subscriptions: dict[str, int] = field(default_factory=dict)
    published: int = 0
    delivered: int = 0
    duplicates: int = 0
    publish_failures: int = 0
    lags_ms: list[float] = field(default_factory=list)
    clock_offset: float = 0.0
    _stack: ExitStack = field(default_factory=ExitStack)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _records: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def consumers(self) -> int:
        return max(1, len(self.subscriptions))

    # -- setup --------------------------------------------------------------------------

    def setup(
        self,
        client: httpx.Client,
        units: set[str],
        key_of: Callable[[str], str],
        book: Callable[[str, str], None],
    ) -> None:
        """Grants with delivery ``subscription``, receivers, push subscriptions.

        ``client`` holds the operator key; ``units`` are the exchange's unit codes;
        ``book(consumer, topic)`` counts one delivered event in the records ledger."""
        from exchange.client import PushReceiver

        clock = client.get("/api/v1/clock").json()
        self.clock_offset = float(clock["offset_seconds"])
        today = dt.date.fromisoformat(clock["today"])
        self.topic = _find_topic(client)
        for consumer in (c for c in SUBSCRIBERS if c in units):
            auth = {"Authorization": f"Bearer {key_of(consumer)}"}
            applied = client.post(
                "/api/v1/applications",
                json={
                    "topic": self.topic,
                    "items": list(ITEMS),
                    "purpose": {"scope": "business_collaboration", "text": "户籍变动自动分发"},
                    "legal_function": "依职能共享:户籍变动信息订阅",
                    "valid_until": (today + dt.timedelta(days=365)).isoformat(),
                    "delivery": "subscription",
                },
                headers=auth,
            )
            _ok(applied)
            credential = client.post(f"/api/v1/departments/{consumer}/provider-credential")
            _ok(credential)
            receiver = PushReceiver(
                self._receiver_of(consumer, book),
                secret=credential.json()["credential"],
                audience=consumer,
            )
            endpoint = self._stack.enter_context(receiver.serve("127.0.0.1", 0))
            made = client.post(
                "/api/v1/subscriptions",
                json={
                    "topic": self.topic,
                    "items": list(ITEMS),
                    "filter": {"kinds": [KIND]},
                    "delivery": "push",
                    "endpoint": endpoint,
                },
                headers=auth,
            )
            _ok(made)
            self.subscriptions[consumer] = int(made.json()["id"])
        log.info(
            "subscriptions: %s push to loopback receivers, %.1f%% of the day",
            ", ".join(self.subscriptions),
            self.share * 100,
        )

    def _receiver_of(
        self, consumer: str, book: Callable[[str, str], None]
    ) -> Callable[[dict[str, Any]], None]:
        topic = self.topic or "?"

        def on_event(event: dict[str, Any]) -> None:
            changed = dt.datetime.fromisoformat(event["changed_at"]).timestamp()
            lag = (time.time() + self.clock_offset - changed) * 1000.0
            with self._lock:
                self.delivered += 1
                if len(self.lags_ms) < _LAG_SAMPLES:
                    self.lags_ms.append(lag)
            book(consumer, topic)

        return on_event

    def teardown(self, client: httpx.Client, key_of: Callable[[str], str]) -> None:
        """Wait briefly for the last deliveries, then delete the subscriptions and stop the
        receivers (no dead letters left behind on the exchange)."""
        deadline = time.monotonic() + 10.0
        while self.delivered < self.published * len(self.subscriptions):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for consumer, sub_id in self.subscriptions.items():
            try:
                client.delete(
                    f"/api/v1/subscriptions/{sub_id}",
                    headers={"Authorization": f"Bearer {key_of(consumer)}"},
                )
            except httpx.HTTPError as exc:
                log.warning("could not delete subscription %d: %s", sub_id, exc)
        self._stack.close()

    # -- the source -----------------------------------------------------------------------

    def publish_loop(
        self,
        host: str,
        key: str,
        keys: list[str],
        city: Any,
        elapsed: Callable[[], float],
        running: Callable[[], bool],
        fire: Callable[..., None],
    ) -> None:
        """Post the source's changes at the subscription share of the day's rate, each
        published event delivered to every subscriber (so 1/n of the share is posted)."""
        import gevent

        from exchange.departments.records import GENERATORS

        lookup = GENERATORS["household_registration"].lookup
        headers = {"Authorization": f"Bearer {key}"}
        i = 0
        with httpx.Client(base_url=host, headers=headers, timeout=30.0) as client:
            while running() and self.topic:
                owed = int(self.plan.records_by(elapsed()) / self.consumers) - self.published
                while owed > 0 and running():
                    n = min(owed, BATCH)
                    events = []
                    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_offset)
                    for _ in range(n):
                        person = keys[i % len(keys)]
                        i += 1
                        record = self._records.get(person)
                        if record is None:
                            full = lookup(city, person)
                            if full is None:
                                continue
                            record = self._records[person] = {f: full[f] for f in ITEMS}
                        events.append(
                            {
                                "key": person,
                                "kind": KIND,
                                "changed_at": now.isoformat(),
                                "record": record,
                            }
                        )
                    if not events:
                        break
                    started = time.perf_counter()
                    error: BaseException | None = None
                    try:
                        resp = client.post(
                            f"/api/v1/exchange/{self.topic}/changes", json={"events": events}
                        )
                        if resp.status_code != 202:
                            error = RuntimeError(f"{resp.status_code} {resp.text[:120]}")
                    except httpx.HTTPError as exc:
                        error = exc
                    fire(
                        request_type="POST",
                        name="/api/v1/exchange/[topic]/changes",
                        response_time=(time.perf_counter() - started) * 1000.0,
                        response_length=0,
                        exception=error,
                        context={},
                    )
                    if error is None:
                        self.published += len(events)
                        owed -= len(events)
                    else:
                        self.publish_failures += 1
                        gevent.sleep(1.0)
                        break
                gevent.sleep(TICK)

    # -- figures ----------------------------------------------------------------------------

    def lag_percentiles(self) -> tuple[float, float, float]:
        with self._lock:
            lags = sorted(self.lags_ms)
        if not lags:
            return 0.0, 0.0, 0.0

        def at(q: float) -> float:
            return lags[min(len(lags) - 1, int(q * len(lags)))]

        return at(0.50), at(0.95), at(0.99)


def _find_topic(client: httpx.Client) -> str:
    offset = 0
    while True:
        page = client.get(
            "/api/v1/catalog/topics", params={"provider": SOURCE, "limit": 200, "offset": offset}
        ).json()
        for item in page["items"]:
            if item.get("slug") == TOPIC_SLUG:
                return str(item["resource_code"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            raise SystemExit(f"the exchange has no {SOURCE} topic {TOPIC_SLUG}: no subscriptions")


def _ok(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        raise SystemExit(
            f"subscriptions setup: {resp.request.method} {resp.request.url.path} → "
            f"{resp.status_code} {resp.text[:300]}"
        )
