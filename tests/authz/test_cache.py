"""The grant cache: in-process and cross-process invalidation, quota usage that survives
a restart and is shared between processes, and no database reads on a hit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from tests.authz.conftest import application, apply
from tests.polling import wait_until

from exchange.authz.cache import GrantCache
from exchange.clock import Clock
from exchange.config import Settings
from exchange.context import AppContext
from exchange.db.engine import Database

Depts = dict[str, dict[str, str]]
Topics = dict[str, str]


@pytest.fixture
def other_db(settings: Settings) -> Iterator[Database]:
    """A second process's engine on the same database, listening for announcements."""
    db = Database(settings.database_url)
    db.freshness.start()
    yield db
    db.dispose()


@pytest.fixture
def other(other_db: Database) -> Iterator[GrantCache]:
    """A cache as a second broker process has it."""
    cache = GrantCache(other_db, Clock(other_db), flush_interval=0.05)
    yield cache
    cache.close()


def test_other_process_sees_each_change_as_soon_as_it_has_answered(
    client: TestClient, depts: Depts, topics: Topics, other: GrantCache, other_db: Database
) -> None:
    # No waiting: what a call that starts after the answer sees (the app's outermost
    # layer runs freshness.check() first).
    assert other.check("rsj", topics["person"], None).reason == "no_grant"
    assert not other.holds("rsj", topics["person"])
    app = apply(client, depts["rsj"], application(topics["person"], ["name"]))
    other_db.freshness.check()
    assert other.holds("rsj", topics["person"])
    assert other.check("rsj", topics["person"], None).allowed is True
    resp = client.post(
        f"/api/v1/grants/{app['grant_id']}/revoke", json={"reason": "x"}, headers=depts["gaj"]
    )
    assert resp.status_code == 200, resp.text
    other_db.freshness.check()
    assert other.check("rsj", topics["person"], None).reason == "grant_revoked"
    # A grant revoked is still held: only check() says what it allows now.
    assert other.holds("rsj", topics["person"])


def test_hits_do_not_touch_the_database(
    client: TestClient, depts: Depts, topics: Topics, ctx: AppContext
) -> None:
    apply(client, depts["rsj"], application(topics["person"], ["name"]))
    cache: GrantCache = ctx.grants
    cache.check("rsj", topics["person"], None)  # load, and let the clock cache its offset
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(ctx.db.engine, "before_cursor_execute", count)
    try:
        for _ in range(1000):
            assert cache.check("rsj", topics["person"], ["name"]).allowed
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", count)
    # At most a clock refresh in that time, never a read per check.
    assert len(statements) <= 2


def test_quota_usage_is_flushed_shared_and_survives_restart(
    client: TestClient, depts: Depts, topics: Topics, ctx: AppContext, settings: Settings
) -> None:
    app = apply(client, depts["rsj"], application(topics["person"], ["name"], quota=10))
    cache: GrantCache = ctx.grants
    assert cache.check("rsj", topics["person"], None, records=10).remaining_quota == 0
    cache.consume(app["grant_id"], 6)
    assert cache.check("rsj", topics["person"], None, records=5).reason == "quota_exceeded"
    assert cache.check("rsj", topics["person"], None, records=4).remaining_quota == 0
    cache.flush()
    # A fresh process (or a restart) starts from the flushed usage ...
    db = Database(settings.database_url)
    fresh = GrantCache(db, Clock(db), flush_interval=0.05)
    try:
        assert fresh.check("rsj", topics["person"], None, records=5).reason == "quota_exceeded"
        fresh.consume(app["grant_id"], 3)
        fresh.flush()
        assert fresh.used_today(app["grant_id"]) == 9
    finally:
        fresh.close()
        db.dispose()
    # ... and this process takes the shared total back at its next flush.
    cache.consume(app["grant_id"], 1)
    cache.flush()
    assert cache.used_today(app["grant_id"]) == 10
    assert cache.check("rsj", topics["person"], None, records=1).reason == "quota_exceeded"


def test_background_flush_and_bad_records(
    client: TestClient, depts: Depts, topics: Topics, other: GrantCache
) -> None:
    app = apply(client, depts["rsj"], application(topics["person"], ["name"], quota=5))
    other.check("rsj", topics["person"], None)
    other.consume(app["grant_id"], 2)
    other.consume(app["grant_id"], 0)  # nothing exchanged, nothing counted

    def counted() -> bool:
        resp = client.post(
            "/api/v1/authz/check",
            json={"consumer": "rsj", "topic": topics["person"], "records": 3},
            headers=depts["rsj"],
        )
        if resp.json()["remaining_quota"] == 0:
            return True
        # The serving process reads usage again only when it reloads; nudge it.
        client.app.state.ctx.grants.invalidate()  # type: ignore[attr-defined]
        return False

    wait_until(counted, "the other cache's usage flushed and read back", every=0.05)
    with pytest.raises(ValueError, match="records"):
        other.check("rsj", topics["person"], None, records=-1)
    resp = client.post(
        "/api/v1/authz/check",
        json={"consumer": "rsj", "topic": topics["person"], "records": -1},
        headers=depts["rsj"],
    )
    assert resp.status_code == 422
