"""Reliability over real processes: SIGKILL the exchange while it pushes, ten times, and
every accepted event still reaches the consumer (at least once; duplicates counted)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import OPERATOR_KEY
from tests.distribution.conftest import HOUSEHOLD, credential, person, wait_for
from tests.serve import exchange_up

from exchange.client import PushReceiver
from exchange.security import demo_key

pytestmark = pytest.mark.e2e

ROUNDS = 10
PER_ROUND = 200


class Counting:
    """Every event the endpoint received, duplicates included (the receiver skips those
    before its handler; it counts them)."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        time.sleep(0.002)  # a consumer doing some work: pushes are in flight when killed
        with self.lock:
            self.ids.add(int(event["id"]))

    def count(self) -> int:
        with self.lock:
            return len(self.ids)


def _setup(http: httpx.Client, endpoint: str) -> tuple[str, dict[str, str]]:
    gaj = {"Authorization": f"Bearer {demo_key(OPERATOR_KEY, 'gaj')}"}
    wjw = {"Authorization": f"Bearer {demo_key(OPERATOR_KEY, 'wjw')}"}
    # The seeded catalog may already source person.*: this topic sources nothing.
    body = HOUSEHOLD | {"category": "101009001", "slug": "e2e-household-changes"}
    created = http.post("/api/v1/catalog/topics", json=body, headers=gaj)
    assert created.status_code == 201, created.text
    topic: str = created.json()["resource_code"]
    applied = http.post(
        "/api/v1/applications",
        json={
            "topic": topic,
            "items": ["id_number", "name", "district_code"],
            "purpose": {"scope": "business_collaboration", "text": "出生一件事"},
            "legal_function": "《母婴保健法》",
            "valid_until": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
            "delivery": "subscription",
        },
        headers=wjw,
    )
    assert applied.status_code == 201, applied.text
    sub = http.post(
        "/api/v1/subscriptions",
        json={"topic": topic, "delivery": "push", "endpoint": endpoint},
        headers=wjw,
    )
    assert sub.status_code == 201, sub.text
    return topic, gaj


def _publish(http: httpx.Client, topic: str, gaj: dict[str, str], start: int) -> list[int]:
    ids: list[int] = []
    for chunk in range(0, PER_ROUND, 50):
        events = [
            {
                "key": person(n)["id_number"],
                "kind": "birth",
                "changed_at": dt.datetime.now(dt.UTC).isoformat(),
                "record": person(n),
            }
            for n in range(start + chunk, start + chunk + 50)
        ]
        resp = http.post(f"/api/v1/exchange/{topic}/changes", json={"events": events}, headers=gaj)
        assert resp.status_code == 202, resp.text
        ids.extend(resp.json()["event_ids"])
    return ids


def test_sigkill_during_delivery_loses_nothing(
    tmp_path: Path, database_url: str, record_property: Any
) -> None:
    env = {
        "EXCHANGE_MOCK_DEPARTMENTS": "false",
        "EXCHANGE_PROVIDER_SECRET": "exms_test",
        # A killed process's lease lapses quickly, so its successor takes over.
        "EXCHANGE_DISTRIBUTION_LEASE": "1",
        "EXCHANGE_DISTRIBUTION_BATCH": "20",
        # Fixed batches of 20 (no growth while behind): many batches to share or kill mid-way.
        "EXCHANGE_DISTRIBUTION_BATCH_MAX": "20",
        "EXCHANGE_DISTRIBUTION_BACKOFF": "0.05",
        "EXCHANGE_DISTRIBUTION_POLL": "0.1",
    }
    inbox = Counting()
    receiver = PushReceiver(inbox, secret=credential("wjw"), audience="wjw")
    accepted: list[int] = []
    kills_mid_delivery = 0
    with receiver.serve() as base:
        for round_ in range(ROUNDS + 1):
            with exchange_up(tmp_path, database_url, OPERATOR_KEY, **env) as srv:
                with httpx.Client(base_url=srv.url, timeout=30) as http:
                    if round_ == 0:
                        topic, gaj = _setup(http, f"{base}/push")
                    if round_ == ROUNDS:
                        # The last start: everything accepted must arrive.
                        wait_for(
                            lambda: inbox.ids >= set(accepted),
                            timeout=120,
                            what="every accepted event",
                        )
                        break
                    before = inbox.count()
                    accepted.extend(_publish(http, topic, gaj, round_ * PER_ROUND))
                    # Kill once delivery of this round is under way, not finished.
                    wait_for(lambda b=before: inbox.count() > b, timeout=60, what="pushes")
                if len(inbox.ids & set(accepted)) < len(accepted):
                    kills_mid_delivery += 1
                srv.process.kill()  # SIGKILL: no lifespan, no lease given back
                srv.process.wait()
    lost = set(accepted) - inbox.ids
    record_property("accepted", len(accepted))
    record_property("duplicates", receiver.duplicates)
    record_property("kills_mid_delivery", kills_mid_delivery)
    # The figures the issue asks to report (pytest -s shows them; junit has the properties).
    print(  # noqa: T201
        f"accepted {len(accepted)}, received {len(inbox.ids)}, lost {len(lost)}, "
        f"duplicates {receiver.duplicates}, kills mid-delivery {kills_mid_delivery}/{ROUNDS}"
    )
    assert not lost
    assert len(accepted) == ROUNDS * PER_ROUND
    assert kills_mid_delivery >= 1  # the test killed deliveries, not idle processes
