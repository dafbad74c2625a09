"""The load day's subscription part, without Locust: the end of the day waits for late
deliveries and records how far each subscription got; lags are sampled over the run."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from loadtests.day import Day
from loadtests.profile import DayPlan, Mix
from loadtests.setup import Plan, Topic
from loadtests.subscriptions import SubscriptionDay, subscribed_topics

from loadtests import subscriptions


class Exchange:
    """Answers the teardown's calls like the exchange: a subscription's stats, its delete."""

    def __init__(self, day: SubscriptionDay) -> None:
        self.day = day
        self.deleted: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        sub = request.url.path.rsplit("/", 1)[1]
        if request.method == "DELETE":
            self.deleted.append(sub)
            return httpx.Response(204)
        per = self.day.delivered // max(1, len(self.day.subscriptions))
        stats = {
            "delivered": per,
            "backlog": self.day.published - per,
            "retried": 0,
            "dead_lettered": 0,
            "blocked": "quota_exceeded" if sub == "2" else None,
        }
        return httpx.Response(200, json={"id": int(sub), "stats": stats})


def day_with(published: int) -> tuple[SubscriptionDay, httpx.Client, Exchange]:
    day = SubscriptionDay(share=0.02, plan=DayPlan(records_per_day=1_000, day_seconds=60))
    day.subscriptions = {"wjw": 1, "ybj": 2}
    day.published = published
    exchange = Exchange(day)
    client = httpx.Client(base_url="http://exchange", transport=httpx.MockTransport(exchange))
    return day, client, exchange


def key_of(code: str) -> str:
    return f"exk_{code}"


def test_the_teardown_waits_for_deliveries_that_keep_arriving() -> None:
    day, client, exchange = day_with(published=50)
    arriving = threading.Event()

    def late_deliveries() -> None:
        arriving.set()
        for _ in range(day.owed):
            with day._lock:
                day.delivered += 1
            time.sleep(0.001)

    thread = threading.Thread(target=late_deliveries)
    thread.start()
    arriving.wait()
    day.teardown(client, key_of)
    thread.join()
    assert day.delivered == day.owed == 100
    # Read after the wait: nothing left behind on the exchange, then deleted.
    assert day.stages["wjw"]["backlog"] == 0
    assert day.stages["wjw"]["acknowledged"] == 50
    assert day.stages["ybj"]["published"] == 50
    assert exchange.deleted == ["1", "2"]


def test_a_stalled_delivery_ends_the_wait_and_shows_where_the_events_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    day, client, exchange = day_with(published=50)
    day.delivered = 60  # 40 never arrive
    with caplog.at_level("WARNING", logger="exchange.load"):
        day.teardown(client, key_of, idle=0.2)
    assert day.stages["wjw"] == {
        "published": 50,
        "acknowledged": 30,
        "backlog": 20,
        "retried": 0,
        "dead_lettered": 0,
        "received": 0,
        "duplicates": 0,
    }
    assert day.stages["ybj"]["blocked"] == "quota_exceeded"  # why it stopped
    assert "60 of 100 deliveries arrived" in caplog.text
    assert exchange.deleted == ["1", "2"]


def event(changed: dt.datetime) -> dict[str, Any]:
    return {"id": 1, "changed_at": changed.isoformat()}


def test_deliveries_after_the_days_end_are_counted_late() -> None:
    booked: list[tuple[str, str]] = []
    day, _, _ = day_with(published=0)
    day.topic = "101001001/000001"
    on_event = day._receiver_of("wjw", lambda who, topic: booked.append((who, topic)))
    now = dt.datetime.now(dt.UTC)
    day.day_ends = time.monotonic() + 3600
    on_event(event(now))
    day.day_ends = time.monotonic() - 1
    on_event(event(now))
    assert (day.delivered, day.late) == (2, 1)
    assert booked == [("wjw", "101001001/000001")] * 2


def test_the_lag_is_sampled_over_the_whole_run_not_its_first_deliveries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first 200,000 deliveries of a 5-minute day were its quiet morning: their lag
    said nothing of the busy hours'. A sample of 10 of 1,000 deliveries whose lag grows
    from 0 to 999 s keeps some of the later ones."""
    monkeypatch.setattr(subscriptions, "_LAG_SAMPLES", 10)
    day, _, _ = day_with(published=0)
    day._rng = random.Random(17)
    on_event = day._receiver_of("wjw", lambda who, topic: None)
    now = dt.datetime.now(dt.UTC)
    for n in range(1_000):
        on_event(event(now - dt.timedelta(seconds=n)))
    assert len(day.lags_ms) == 10
    assert max(day.lags_ms) > 100_000  # ms: not only the first 10 deliveries (≤ 9 s)
    p50, _, p99 = day.lag_percentiles()
    assert p50 <= p99


def _topic(code: str, provider: str, slug: str = "") -> Topic:
    return Topic(
        code=code,
        name=code,
        provider=provider,
        group="basic",
        resource_type="interface",
        key_type="id_number",
        shareable=("id_number", "name"),
        conditional=False,
        exchangeable=True,
        slug=slug,
    )


def test_the_users_never_apply_for_a_topic_a_subscriber_holds_by_subscription() -> None:
    """An application puts its terms (delivery ``interface``, a quota of 10,000 a day)
    into the department's one grant on the topic: a subscriber's application for its
    subscribed topic blocked its subscription for the rest of a 5-minute day."""
    household = _topic("101001001/000001", "gaj", subscriptions.TOPIC_SLUG)
    other = _topic("101001001/000002", "gaj", "household-members")
    held = _topic("201001001/000001", "rsj")
    plan = Plan(
        departments={"mzj": 1.0, "scjgj": 1.0},
        grants={"mzj": (held.code,), "scjgj": ()},
        topics={t.code: t for t in (household, other, held)},
        popularity={},
    )

    def day(share: float) -> Day:
        options = SimpleNamespace(subscription_share=share, skip_setup=False)
        found = Day(options=options, day=DayPlan(records_per_day=1_000), mix=Mix())
        found.plan = plan
        return found

    assert subscribed_topics(plan, "mzj") == {household.code}
    assert subscribed_topics(plan, "scjgj") == frozenset()  # not a subscriber
    # A subscriber: neither its users' grants nor its subscription's topic.
    assert [t.code for t in day(0.02).application_candidates("mzj")] == [other.code]
    # Anyone else may apply for the household topic; without subscriptions, so may mzj.
    assert household.code in {t.code for t in day(0.02).application_candidates("scjgj")}
    assert household.code in {t.code for t in day(0.0).application_candidates("mzj")}
