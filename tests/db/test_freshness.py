"""The change announcements: subscribers run after commit (never before, never on
rollback), another process applies a change by the time its writer's commit returns,
and a process that lost touch refuses to serve."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from tests.polling import wait_until

from exchange.db.engine import Database
from exchange.db.freshness import TOPICS, Freshness, Resyncing, announce


@pytest.fixture
def one(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    # Listening from the start (PostgreSQL): connecting runs every subscriber once.
    db.freshness.start()
    yield db
    db.dispose()


@pytest.fixture
def two(database_url: str) -> Iterator[Database]:
    """A second process's view of the same database (its own engine and announcements)."""
    db = Database(database_url)
    db.freshness.start()
    yield db
    db.dispose()


def _counter(fresh: Freshness, topic: str) -> list[int]:
    seen = [0]

    def bump() -> None:
        seen[0] += 1

    fresh.subscribe(topic, bump)
    return seen


def test_subscribers_run_after_commit_and_never_on_rollback(one: Database) -> None:
    seen = _counter(one.freshness, "authz")
    other = _counter(one.freshness, "keys")
    with one.sessions() as session:
        announce(session, "authz")
        announce(session, "authz")  # once per transaction
        session.execute(text("SELECT 1"))
        assert seen == [0]  # not before the commit: a reload now would read the old rows
        session.commit()
    assert seen == [1]
    with one.sessions() as session:
        announce(session, "authz")
        session.rollback()
    assert seen == [1]
    assert other == [0]


def test_another_process_applies_the_change_when_the_commit_returns(
    one: Database, two: Database
) -> None:
    seen = _counter(two.freshness, "catalog")
    untouched = _counter(two.freshness, "departments")
    two.freshness.check()
    base = seen[0]  # a (re)connecting listener runs every subscriber once
    with one.session() as session:
        announce(session, "catalog")
    # What a call starting now in process 2 runs first, with no wait in between.
    two.freshness.check()
    assert seen[0] == base + 1
    assert untouched[0] == base
    two.freshness.check()
    assert seen[0] == base + 1


def test_unknown_topics_are_refused(one: Database) -> None:
    with pytest.raises(ValueError, match="unknown topic"):
        one.freshness.subscribe("nothing", lambda: None)
    with one.sessions() as session, pytest.raises(ValueError, match="unknown topic"):
        announce(session, "nothing")
    assert "authz" in TOPICS


def test_a_process_that_lost_touch_stops_serving(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("leases are PostgreSQL's: a SQLite file is read on every call")
    db = Database(database_url)
    fresh = Freshness(db.engine, db.sessions, lease=0.5, heartbeat=0.1)
    try:
        fresh.start()
        fresh.check()
        # The listener stops (as if its connection hung): the lease runs out by itself.
        fresh._stop.set()
        assert fresh._thread is not None
        fresh._thread.join(5)

        def refusal() -> Resyncing | None:
            try:
                fresh.check()
            except Resyncing as exc:
                return exc
            return None

        refused = wait_until(refusal, "the lease to run out", every=0.05)
        assert refused.status_code == 503
    finally:
        fresh.close()
        db.dispose()


def test_another_process_reads_the_moved_clock_at_once(one: Database, two: Database) -> None:
    from exchange.clock import Clock

    mine, theirs = Clock(one), Clock(two)
    assert abs(theirs.offset_seconds()) < 1e-9
    mine.advance(dt.timedelta(days=3))
    two.freshness.check()
    assert theirs.offset_seconds() == pytest.approx(3 * 86400)
    mine.reset()
    two.freshness.check()
    assert theirs.offset_seconds() == 0.0


def test_closing_ends_the_listener_without_waiting_out_its_heartbeat(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the listener thread is PostgreSQL's")
    db = Database(database_url)
    # A heartbeat longer than the wait below: only close()'s own note can end it in time
    # (and when that note is lost, the cleanup still ends within a heartbeat).
    fresh = Freshness(db.engine, db.sessions, heartbeat=120)
    try:
        fresh.start()
        thread = fresh._thread
        assert thread is not None
        assert thread.is_alive()
        fresh._stop.set()
        fresh._wake()
        thread.join(60)
        assert not thread.is_alive(), "the listener still waits for notifications"
    finally:
        fresh.close()
        db.dispose()


def test_a_waiting_subscriber_holds_the_confirmation_not_the_heartbeat(
    database_url: str, one: Database
) -> None:
    """A subscriber that waits (the distribution's revocation gate waits out pushes in
    flight) longer than the lease: its process keeps serving meanwhile, and the writer's
    commit returns only once it ran."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the listener and its lease are PostgreSQL's")
    import threading

    db = Database(database_url)
    lease = 0.6
    fresh = Freshness(db.engine, db.sessions, lease=lease, heartbeat=0.05)
    entered, release = threading.Event(), threading.Event()
    quick = _counter(fresh, "narrowed")

    def wait_for_release() -> None:
        entered.set()
        release.wait(30)

    fresh.subscribe("narrowed", wait_for_release, waits=True)
    committed = threading.Event()
    try:
        fresh.start()
        assert entered.wait(10)  # a connecting listener runs every subscriber once
        release.set()
        entered.clear()
        release.clear()
        base = quick[0]

        def revoke() -> None:
            with one.session() as session:
                announce(session, "narrowed")
            committed.set()

        writer = threading.Thread(target=revoke)
        writer.start()
        assert entered.wait(10)
        # The listener applied what does not wait (a cache marked stale) at once.
        assert quick[0] == base + 1
        # Twice the lease passes with the waiting subscriber still blocked: the process
        # serves throughout, since its listener's heartbeats go on.
        deadline = time.monotonic() + 2 * lease
        while time.monotonic() < deadline:
            fresh.check()
            time.sleep(0.02)
        assert not committed.is_set()  # the confirmation waits for the subscriber
        release.set()
        writer.join(10)
        assert committed.is_set()
    finally:
        release.set()
        fresh.close()
        db.dispose()
