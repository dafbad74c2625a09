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
import random
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtests.profile import DayPlan
from loadtests.setup import Plan

__all__ = ["SUBSCRIBERS", "SubscriptionDay", "subscribed_topics"]

log = logging.getLogger("exchange.load")

SOURCE = "gaj"
TOPIC_SLUG = "household-registration"
#: Who subscribes to the births, moves and corrections of household registration.
SUBSCRIBERS = ("wjw", "ybj", "mzj", "rsj")
ITEMS = ("id_number", "name", "sex", "birth_date", "household_number", "registered_address")
#: The kind the load test publishes (a correction of the record at its source); the
#: subscriptions filter on it, so the mock departments' own living city is not counted.
KIND = "updated"
#: events per publishing call: the API's most (1,000). A call cost 0.2–1.5 s on a busy
#: exchange whatever its size, and the source posts one call at a time, so 500 a call
#: capped it near the busy hours' rate of a 5-minute day.
BATCH = 1000
TICK = 0.25
#: The teardown waits for the last deliveries while they keep arriving: it gives up after
#: this many seconds without one, or after ``DRAIN_MAX`` in all.
DRAIN_IDLE = 15.0
DRAIN_MAX = 120.0
_LAG_SAMPLES = 200_000


def subscribed_topics(plan: Plan, dept: str) -> frozenset[str]:
    """The topics ``dept`` holds a subscription grant for in this run (none for others).

    A grant is one per department and topic: a new application for the same topic puts
    its terms into it. The users' applications (delivery ``interface``, a daily quota of
    10,000) once did so for a subscriber in the middle of a 5-minute day: its subscription
    was blocked by the quota for the rest of the day (``quota_exceeded``), 155,962 of its
    187,383 events left on the exchange.
    """
    if dept not in SUBSCRIBERS:
        return frozenset()
    return frozenset(
        t.code for t in plan.topics.values() if t.provider == SOURCE and t.slug == TOPIC_SLUG
    )


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
    #: ``time.monotonic()`` at the day's end (set when the day starts); deliveries after
    #: it are counted in ``late`` (they do not count towards the day)
    day_ends: float = 0.0
    late: int = 0
    _stack: ExitStack = field(default_factory=ExitStack)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=random.Random)
    _records: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: consumer → its loopback receiver (its own counts: received, duplicates skipped)
    receivers: dict[str, Any] = field(default_factory=dict)
    #: consumer → the exchange's and the receiver's counts at the end (see :meth:`stages_of`)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

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
            self.receivers[consumer] = receiver
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
                if self.day_ends and time.monotonic() > self.day_ends:
                    self.late += 1
                # A uniform sample of the whole run (reservoir sampling): the first
                # 200,000 alone were the quiet morning, never the busy hours' lag.
                if len(self.lags_ms) < _LAG_SAMPLES:
                    self.lags_ms.append(lag)
                else:
                    slot = self._rng.randrange(self.delivered)
                    if slot < _LAG_SAMPLES:
                        self.lags_ms[slot] = lag
            book(consumer, topic)

        return on_event

    @property
    def owed(self) -> int:
        """Deliveries owed: every published event to every subscriber."""
        return self.published * len(self.subscriptions)

    def teardown(
        self,
        client: httpx.Client,
        key_of: Callable[[str], str],
        *,
        idle: float = DRAIN_IDLE,
        most: float = DRAIN_MAX,
    ) -> None:
        """Wait for the last deliveries while they keep arriving, record how far each
        subscription got (:meth:`stages_of`), then delete the subscriptions and stop the
        receivers (no dead letters left behind on the exchange).

        Deliveries after the day's end do not count towards it (the ledger books them
        when they arrive); waiting for them tells a late delivery from a lost one. A wait
        of 10 s once left a 5-minute day's backlog (a third of its deliveries) unexplained.
        """
        started = last = time.monotonic()
        seen = self.delivered
        while self.delivered < self.owed:
            now = time.monotonic()
            if self.delivered != seen:
                seen, last = self.delivered, now
            if now - last > idle or now - started > most:
                break
            time.sleep(0.1)
        for consumer, sub_id in self.subscriptions.items():
            self.stages[consumer] = self.stages_of(client, consumer, sub_id, key_of)
        if self.delivered < self.owed:
            log.warning(
                "subscriptions: %s of %s deliveries arrived; by subscriber: %s",
                f"{self.delivered:,}",
                f"{self.owed:,}",
                self.stages,
            )
        for consumer, sub_id in self.subscriptions.items():
            try:
                client.delete(
                    f"/api/v1/subscriptions/{sub_id}",
                    headers={"Authorization": f"Bearer {key_of(consumer)}"},
                )
            except httpx.HTTPError as exc:
                log.warning("could not delete subscription %d: %s", sub_id, exc)
        self._stack.close()

    def stages_of(
        self, client: httpx.Client, consumer: str, sub_id: int, key_of: Callable[[str], str]
    ) -> dict[str, Any]:
        """One subscriber's events at each stage: published by the source, acknowledged
        by its endpoint as the exchange counts them (``acknowledged``), still after the
        subscription's cursor (``backlog``), retried and dead-lettered pushes, and what
        its receiver handed on (``received``) or skipped as seen before (``duplicates``),
        and why its grant blocks delivery (``blocked``, when it does). The exchange's
        figures are -1 when it could not be asked."""
        try:
            resp = client.get(
                f"/api/v1/subscriptions/{sub_id}",
                headers={"Authorization": f"Bearer {key_of(consumer)}"},
            )
            stats = resp.json().get("stats", {}) if resp.status_code == 200 else {}
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not read subscription %d: %s", sub_id, exc)
            stats = {}
        receiver = self.receivers.get(consumer)
        blocked = {"blocked": str(stats["blocked"])} if stats.get("blocked") else {}
        return {
            "published": self.published,
            "acknowledged": int(stats.get("delivered", -1)),
            "backlog": int(stats.get("backlog", -1)),
            "retried": int(stats.get("retried", -1)),
            "dead_lettered": int(stats.get("dead_lettered", -1)),
            "received": receiver.received if receiver is not None else 0,
            "duplicates": receiver.duplicates if receiver is not None else 0,
            **blocked,
        }

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
