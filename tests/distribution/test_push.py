"""Push delivery in-process, to endpoints on loopback run by the SDK's ``PushReceiver``:
signed batches with granted items only, retries then dead letters, no head-of-line
blocking across consumers, suspend/resume, and a revoke that stops delivery at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR
from tests.distribution.conftest import (
    Depts,
    Inbox,
    change,
    credential,
    endpoint,
    grant,
    person,
    publish,
    subscribe,
    wait_for,
)

from exchange.client import PushReceiver

GRANTED = ["id_number", "name", "district_code"]


@pytest.fixture
def granted(client: TestClient, depts: Depts, topic: str) -> int:
    grant(client, depts["ybj"], topic, GRANTED)
    return grant(client, depts["wjw"], topic, GRANTED)


def stats(client: TestClient, headers: dict[str, str], sub: int) -> dict[str, Any]:
    resp = client.get(f"/api/v1/subscriptions/{sub}", headers=headers)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()["stats"]
    return out


def test_push_delivers_signed_batches_of_granted_items(
    client: TestClient, depts: Depts, topic: str, granted: int
) -> None:
    with endpoint("wjw") as (url, inbox, receiver):
        sub = subscribe(client, depts["wjw"], topic=topic, delivery="push", endpoint=url)
        ids = publish(
            client, depts["gaj"], topic, [change(person(n, household_size=4)) for n in range(20)]
        )
        wait_for(lambda: len(inbox.ids()) >= 20, what="20 events pushed")
        assert inbox.ids() == ids  # in order, once
        event = inbox.events[0]
        assert set(event["record"]) == set(GRANTED)  # never household_size: not granted
        assert (event["topic"], event["kind"], event["key"]) == (
            topic,
            "birth",
            person(0)["id_number"],
        )
        assert event["changed_at"]
        assert receiver.duplicates == 0
        wait_for(lambda: stats(client, depts["wjw"], sub["id"])["delivered"] == 20)
        now = stats(client, depts["wjw"], sub["id"])
        assert now["backlog"] == 0
        assert now["last_lag_ms"] is not None
    entries = client.get(
        "/api/v1/audit/entries", params={"consumer": "wjw"}, headers=OPERATOR
    ).json()["entries"]
    pushes = [e for e in entries if e["kind"] == "push"]
    assert sum(p["records"] for p in pushes) == 20
    assert {p["outcome"] for p in pushes} == {"ok"}
    assert pushes[0]["items"] == sorted(GRANTED)
    assert pushes[0]["case"] == f"subscription:{sub['id']}"
    assert client.get("/api/v1/audit/verify", headers=OPERATOR).json()["ok"] is True
    metrics = client.get("/metrics", headers=OPERATOR).text
    assert (
        f'exchange_subscription_delivered_total{{consumer="wjw",delivery="push",subscription="{sub["id"]}"'
        in metrics
    )
    assert 'exchange_distribution_events_total{delivery="push",outcome="delivered"} 20.0' in metrics


def test_an_unsigned_or_forged_push_is_refused() -> None:
    receiver = PushReceiver(Inbox(), secret=credential("wjw"), audience="wjw")
    status, _ = receiver.handle("POST", "/in", b'{"events": []}', {})
    assert status == 401
    status, _ = receiver.handle(
        "POST",
        "/in",
        b"{}",
        {"x-exchange-signature": "t=1,n=x,v1=" + "0" * 64, "x-request-id": "r"},
    )
    assert status == 401


@pytest.fixture
def hang() -> Iterator[threading.Event]:
    released = threading.Event()
    yield released
    released.set()


def test_failing_endpoints_retry_then_dead_letter_without_blocking_others(
    client: TestClient, depts: Depts, topic: str, granted: int, hang: threading.Event
) -> None:
    def broken(_event: dict[str, Any]) -> None:
        raise RuntimeError("consumer bug")  # the receiver answers 500

    def hanging(_event: dict[str, Any]) -> None:
        hang.wait(30)

    failing = PushReceiver(broken, secret=credential("wjw"), audience="wjw")
    stuck = PushReceiver(hanging, secret=credential("wjw"), audience="wjw")
    with (
        failing.serve() as bad_url,
        stuck.serve() as hung_url,
        endpoint("ybj") as (good_url, inbox, _),
    ):
        bad = subscribe(client, depts["wjw"], topic=topic, delivery="push", endpoint=bad_url)
        hung = subscribe(client, depts["wjw"], topic=topic, delivery="push", endpoint=hung_url)
        gone = subscribe(
            client, depts["wjw"], topic=topic, delivery="push", endpoint="http://127.0.0.1:9/x"
        )
        good = subscribe(client, depts["ybj"], topic=topic, delivery="push", endpoint=good_url)
        ids = publish(client, depts["gaj"], topic, [change(person(n)) for n in range(3)])
        # The healthy consumer is served while the others fail, time out and hang.
        wait_for(lambda: inbox.ids() == ids, what="the healthy subscription's events")
        for sub in (bad, hung, gone):
            wait_for(
                lambda s=sub: stats(client, depts["wjw"], s["id"])["dead_lettered"] == 3,
                what=f"dead letters of {sub['id']}",
            )
        bad_stats = stats(client, depts["wjw"], bad["id"])
        assert bad_stats["retried"] == 9  # 3 attempts of 3 events
        assert bad_stats["dead_letters"] == 3
        assert bad_stats["delivered"] == 0
        assert stats(client, depts["wjw"], hung["id"])["last_error"] == "consumer.timeout"
        assert stats(client, depts["wjw"], gone["id"])["last_error"].startswith(
            "consumer.unreachable"
        )
        # The unreachable one's consumer discards its dead letters.
        resp = client.post(
            f"/api/v1/subscriptions/{gone['id']}/dead-letters/discard",
            json={},
            headers=depts["wjw"],
        )
        assert resp.json()["count"] == 3
        # The feed moved on: later events reach the healthy consumer, and the dead
        # letters wait for their consumer's decision.
        later = publish(client, depts["gaj"], topic, [change(person(9))])
        wait_for(lambda: inbox.ids() == ids + later, what="later event")
        assert stats(client, depts["ybj"], good["id"])["dead_lettered"] == 0
        url = f"/api/v1/subscriptions/{bad['id']}/dead-letters"
        letters = client.get(url, headers=depts["wjw"]).json()
        assert [d["event_id"] for d in letters["items"]] == ids
        assert letters["items"][0]["error"] == "consumer.http_500"
        assert client.get(url, headers=depts["ybj"]).status_code == 404
        # The broken one's consumer fixes its endpoint and retries one dead letter.
        fixed = Inbox()
        failing.handler = fixed
        resp = client.post(
            f"{url}/retry", json={"ids": [letters["items"][0]["id"]]}, headers=depts["wjw"]
        )
        assert resp.json()["count"] == 1
        wait_for(lambda: ids[0] in fixed.ids(), what="the retried dead letter")

        def held() -> list[int]:
            page = client.get(url, headers=depts["wjw"]).json()
            return [d["event_id"] for d in page["items"]]

        # Delivered, it is no longer a dead letter; the others still are.
        wait_for(lambda: ids[0] not in held(), what="the dead letter cleared")
        assert set(ids[1:]) <= set(held())
    entries = client.get(
        "/api/v1/audit/entries", params={"consumer": "wjw"}, headers=OPERATOR
    ).json()["entries"]
    outcomes = {e["outcome"] for e in entries if e["kind"] == "push"}
    assert {"consumer.http_500", "consumer.timeout", "ok"} <= outcomes


def test_suspend_then_resume_delivers_what_accumulated(
    client: TestClient, depts: Depts, topic: str, granted: int
) -> None:
    with endpoint("wjw") as (url, inbox, _):
        sub = subscribe(client, depts["wjw"], topic=topic, delivery="push", endpoint=url)
        path = f"/api/v1/subscriptions/{sub['id']}"
        assert client.post(f"{path}/suspend", headers=depts["wjw"]).status_code == 200
        ids = publish(client, depts["gaj"], topic, [change(person(n)) for n in range(4)])
        wait_for(lambda: stats(client, depts["wjw"], sub["id"])["backlog"] == 4)
        assert inbox.ids() == []
        assert client.post(f"{path}/resume", headers=depts["wjw"]).status_code == 200
        wait_for(lambda: inbox.ids() == ids, what="what accumulated")
        wait_for(lambda: stats(client, depts["wjw"], sub["id"])["delivered"] == 4)
        # Replay from the start, as a consumer that lost its state would.
        resp = client.post(f"{path}/replay", json={"cursor": 0}, headers=depts["wjw"])
        assert resp.status_code == 200
        wait_for(lambda: stats(client, depts["wjw"], sub["id"])["delivered"] == 8)


def test_no_delivery_after_the_revoke_is_acknowledged(
    client: TestClient, depts: Depts, topic: str, granted: int
) -> None:
    with endpoint("wjw") as (url, inbox, _):
        sub = subscribe(client, depts["wjw"], topic=topic, delivery="push", endpoint=url)
        stop = threading.Event()
        published: list[int] = []

        def source() -> None:
            n = 0
            while not stop.is_set() and n < 2000:
                published.extend(publish(client, depts["gaj"], topic, [change(person(n))]))
                n += 1

        feeder = threading.Thread(target=source)
        feeder.start()
        try:
            wait_for(lambda: len(inbox.ids()) >= 5, what="delivery under way")
            resp = client.post(
                f"/api/v1/grants/{granted}/revoke",
                json={"reason": "停止联办"},
                headers=depts["gaj"],
            )
            acknowledged = time.monotonic()
            assert resp.status_code == 200, resp.text

            def blocked() -> str | None:
                out = stats(client, depts["wjw"], sub["id"])
                return out["blocked"] if out["backlog"] > 0 else None

            wait_for(lambda: blocked() == "grant_revoked", what="delivery blocked")
        finally:
            stop.set()
            feeder.join(30)
        assert inbox.arrived
        assert all(at <= acknowledged for at in inbox.arrived)
