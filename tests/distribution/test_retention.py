"""Pruning the outbox: what every subscription acknowledged, past the retention, is
deleted in bounded passes; what someone still needs is kept; the replay window is
stated and enforced (409 ``cursor_pruned``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.distribution.conftest import (
    Depts,
    change,
    grant,
    person,
    publish,
    subscribe,
)

from exchange.config import Settings
from exchange.context import AppContext
from exchange.distribution import retention
from exchange.distribution.models import ChangeEventRow, DeadLetter

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)  # every event is past retention


def _held(ctx: AppContext) -> list[int]:
    with ctx.db.sessions() as session:
        return list(session.scalars(select(ChangeEventRow.id).order_by(ChangeEventRow.id)))


def _prune(ctx: AppContext, *, after: int = 0, scan: int = 1000, before: Any = LATER) -> Any:
    with ctx.db.session() as session:
        return retention.prune(session, after=after, scan=scan, before=before)


def _read(client: TestClient, headers: dict[str, str], sub: int, **params: Any) -> Any:
    return client.get(f"/api/v1/subscriptions/{sub}/events", params=params, headers=headers)


def test_prunes_what_every_subscription_acknowledged(
    client: TestClient, ctx: AppContext, depts: Depts, topic: str
) -> None:
    grant(client, depts["wjw"], topic, ["id_number", "name"])
    grant(client, depts["ybj"], topic, ["id_number", "name"])
    fast = subscribe(client, depts["wjw"], topic=topic, delivery="pull")
    slow = subscribe(client, depts["ybj"], topic=topic, delivery="pull")
    ids = publish(client, depts["gaj"], topic, [change(person(n)) for n in range(10)])
    # wjw read everything; ybj only the first four.
    assert _read(client, depts["wjw"], fast["id"], cursor=ids[-1]).status_code == 200
    assert _read(client, depts["ybj"], slow["id"], cursor=ids[3]).status_code == 200
    # Nothing is past a retention that starts now.
    assert _prune(ctx, before=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).pruned == 0
    done = _prune(ctx)
    assert done.pruned == 4
    assert _held(ctx) == ids[4:]
    # ybj reads on: the rest is acknowledged by both, all but the outbox's newest event
    # (SQLite would give its id out again).
    assert _read(client, depts["ybj"], slow["id"], cursor=ids[-1]).status_code == 200
    _prune(ctx)
    assert _held(ctx) == ids[-1:]
    # The replay window is stated and enforced.
    out = client.get(f"/api/v1/subscriptions/{slow['id']}", headers=depts["ybj"]).json()
    assert out["stats"]["replay_from"] == ids[-2]
    resp = client.post(
        f"/api/v1/subscriptions/{slow['id']}/replay", json={"cursor": 0}, headers=depts["ybj"]
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "cursor_pruned"
    assert resp.json()["error"]["detail"]["replay_from"] == ids[-2]
    stale = _read(client, depts["ybj"], slow["id"], cursor=ids[0])
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "cursor_pruned"
    again = client.post(
        f"/api/v1/subscriptions/{slow['id']}/replay",
        json={"cursor": ids[-2]},
        headers=depts["ybj"],
    )
    assert again.status_code == 200
    page = _read(client, depts["ybj"], slow["id"]).json()
    assert [e["id"] for e in page["events"]] == ids[-1:]
    late = client.post(
        "/api/v1/subscriptions",
        json={"topic": topic, "delivery": "pull", "from_cursor": 0},
        headers=depts["wjw"],
    )
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "cursor_pruned"


def test_a_suspended_subscription_and_dead_letters_keep_their_events(
    client: TestClient, ctx: AppContext, depts: Depts, topic: str
) -> None:
    grant(client, depts["wjw"], topic, ["id_number"])
    sub = subscribe(client, depts["wjw"], topic=topic, delivery="pull")
    ids = publish(client, depts["gaj"], topic, [change(person(n)) for n in range(6)])
    client.post(f"/api/v1/subscriptions/{sub['id']}/suspend", headers=depts["wjw"])
    assert _prune(ctx).pruned == 0  # suspended, not acknowledged: kept
    # Its cursor moves past every event, but one of them is a dead letter to retry.
    with ctx.db.session() as session:
        session.add(DeadLetter(subscription_id=sub["id"], event_id=ids[2], attempts=8, error="x"))
    client.post(f"/api/v1/subscriptions/{sub['id']}/resume", headers=depts["wjw"])
    assert _read(client, depts["wjw"], sub["id"], cursor=ids[-1]).status_code == 200
    _prune(ctx)
    assert _held(ctx) == [ids[2], ids[-1]]


def test_a_pass_looks_at_a_bounded_range_and_sweeps_on(
    client: TestClient, ctx: AppContext, depts: Depts, topic: str
) -> None:
    ids = publish(client, depts["gaj"], topic, [change(person(n)) for n in range(9)])
    first = _prune(ctx, scan=3)
    assert (first.looked, first.pruned) == (3, 3)
    second = _prune(ctx, after=first.next_after, scan=3)
    assert second.pruned == 3
    assert _held(ctx) == ids[6:]
    # A range younger than the retention stops the sweep, which starts over next time.
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    young = _prune(ctx, after=second.next_after, scan=3, before=recent)
    assert (young.pruned, young.next_after) == (0, 0)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No pruning of its own: the tests run the passes."""
    return settings.model_copy(update={"distribution_retention": 0.0})
