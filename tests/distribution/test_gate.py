"""The revocation gate waits only on changes that take access away: a revoke, a narrowed
grant, a suspended or deleted subscription; not a new grant, more items or a new topic."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR
from tests.distribution.conftest import HOUSEHOLD, Depts, grant, subscribe, wait_for

from exchange.context import AppContext
from exchange.distribution.gate import RevocationGate


@pytest.fixture
def gate(client: TestClient, ctx: AppContext) -> RevocationGate:
    runtime = ctx.distribution
    assert runtime is not None
    assert runtime.distributor is not None
    return runtime.distributor.gate


def _apply(
    client: TestClient, headers: dict[str, str], topic: str, items: list[str], **extra: Any
) -> dict[str, Any]:
    body = {
        "topic": topic,
        "items": items,
        "purpose": {"scope": "business_collaboration", "text": "新生儿出生一件事联办"},
        "legal_function": "《母婴保健法》第二十三条",
        "valid_until": (dt.date.today() + dt.timedelta(days=365)).isoformat(),
        "delivery": "subscription",
        **extra,
    }
    resp = client.post("/api/v1/applications", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


def test_widening_changes_do_not_move_the_gate(
    client: TestClient, depts: Depts, topic: str, gate: RevocationGate
) -> None:
    before = gate.generation
    grant(client, depts["wjw"], topic, ["id_number", "name"])  # a new grant
    _apply(client, depts["wjw"], topic, ["id_number", "name", "district_code"])  # more items
    other = {**HOUSEHOLD, "name": "户籍迁移信息", "slug": "household-moves"}
    resp = client.post("/api/v1/catalog/topics", json=other, headers=depts["gaj"])
    assert resp.status_code == 201, resp.text
    sub = subscribe(client, depts["wjw"], topic=topic, delivery="pull")
    resumed = client.post(f"/api/v1/subscriptions/{sub['id']}/resume", headers=depts["wjw"])
    assert resumed.status_code == 200
    assert gate.generation == before


def test_narrowing_changes_move_the_gate(
    client: TestClient, depts: Depts, topic: str, gate: RevocationGate
) -> None:
    granted = grant(client, depts["wjw"], topic, ["id_number", "name"])
    sub = subscribe(client, depts["wjw"], topic=topic, delivery="pull")
    path = f"/api/v1/subscriptions/{sub['id']}"
    steps = [
        lambda: client.post(f"{path}/suspend", headers=depts["wjw"]),
        lambda: client.delete(path, headers=depts["wjw"]),
        # The same items for a shorter time: the grant in force is narrowed.
        lambda: _apply(
            client,
            depts["wjw"],
            topic,
            ["id_number"],
            valid_until=(dt.date.today() + dt.timedelta(days=30)).isoformat(),
        ),
        lambda: client.post(
            f"/api/v1/grants/{granted}/revoke", json={"reason": "停止联办"}, headers=OPERATOR
        ),
    ]
    for step in steps:
        before = gate.generation
        step()
        assert gate.generation > before


def test_a_revoke_waits_for_the_push_checked_before_it(
    client: TestClient, depts: Depts, topic: str, gate: RevocationGate
) -> None:
    """A push that checked the grant before the revoke holds the revoke's answer until it
    is answered itself; a new grant meanwhile does not wait for it."""
    granted = grant(client, depts["wjw"], topic, ["id_number", "name"])
    gate.timeout = 60.0  # the test releases the push itself; no timeout decides
    in_flight = gate.enter()  # a push checked against the grant, on its way
    try:
        grant(client, depts["ybj"], topic, ["id_number"])  # answered while it is in flight
        answered = threading.Event()

        def revoke() -> None:
            resp = client.post(
                f"/api/v1/grants/{granted}/revoke",
                json={"reason": "停止联办"},
                headers=depts["gaj"],
            )
            assert resp.status_code == 200, resp.text
            answered.set()

        revoker = threading.Thread(target=revoke)
        revoker.start()
        wait_for(lambda: gate.generation > in_flight, what="the revoke reached the gate")
        assert not answered.is_set()  # committed, not acknowledged: the push is on its way
    finally:
        gate.leave(in_flight)
    revoker.join(30)
    assert answered.is_set()
