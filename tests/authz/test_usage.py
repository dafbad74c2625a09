"""Quota counts in ``authz_usage``: one statement adds a batch and returns the shared
totals, exact across flushes that run while calls are counted, across processes, and
across a lost connection; closing leaves no connection behind."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import select, text

from exchange.authz.cache import GrantCache
from exchange.authz.models import GrantUsage
from exchange.authz.usage import APPLICATION_NAME, UsageCounts
from exchange.clock import Clock
from exchange.db.engine import Database

DAY = dt.date(2026, 3, 2)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def stored(db: Database) -> dict[tuple[int, dt.date], int]:
    with db.sessions() as session:
        return {
            (r.grant_id, r.day): r.records
            for r in session.execute(
                select(GrantUsage.grant_id, GrantUsage.day, GrantUsage.records)
            )
        }


def usage_connections(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = :name"
                ),
                {"name": APPLICATION_NAME},
            ).scalar_one()
        )


def test_a_batch_adds_to_every_process_s_counts_and_returns_the_totals(
    db: Database, database_url: str
) -> None:
    other_db = Database(database_url)
    mine, theirs = UsageCounts(db), UsageCounts(other_db)
    try:
        assert mine.add({}) == {}
        assert mine.add({(1, DAY): 3, (2, DAY): 5}) == {(1, DAY): 3, (2, DAY): 5}
        # Another process's counts add to the same rows; its answer is the shared total,
        # and another day is another row.
        after = theirs.add({(1, DAY): 4, (1, DAY + dt.timedelta(days=1)): 7})
        assert after == {(1, DAY): 7, (1, DAY + dt.timedelta(days=1)): 7}
        assert mine.add({(2, DAY): 1}) == {(2, DAY): 6}
        # More keys than one SQLite statement holds, in one batch.
        many = {(1000 + i, DAY): i + 1 for i in range(4500)}
        assert mine.add(many) == many
    finally:
        mine.close()
        theirs.close()
        other_db.dispose()
    rows = stored(db)
    assert rows[1, DAY] == 7
    assert rows[2, DAY] == 6
    assert rows[1, DAY + dt.timedelta(days=1)] == 7
    assert len(rows) == 3 + 4500


def test_counts_are_exact_across_flushes_running_beside_the_calls(db: Database) -> None:
    """Calls count while flushes swap the pending counts out and take totals back: every
    record is stored once, and the cache's figure for today is the stored total."""
    cache = GrantCache(db, Clock(db), flush_interval=3600)  # flushed by hand below
    threads, calls = 4, 300
    done = threading.Event()

    def count() -> None:
        for _ in range(calls):
            cache.consume(11, 1)
            cache.consume(12, 2)

    def flushing() -> None:
        while not done.is_set():
            cache.flush()

    flusher = threading.Thread(target=flushing)
    flusher.start()
    counters = [threading.Thread(target=count) for _ in range(threads)]
    for t in counters:
        t.start()
    for t in counters:
        t.join()
    done.set()
    flusher.join()
    cache.flush()
    try:
        assert cache.used_today(11) == threads * calls
        assert cache.used_today(12) == 2 * threads * calls
    finally:
        cache.close()
    today = Clock(db).today()
    assert stored(db) == {(11, today): threads * calls, (12, today): 2 * threads * calls}


def test_a_flush_that_fails_keeps_its_counts_for_the_next(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's held connection; SQLite has no connection to lose")
    cache = GrantCache(db, Clock(db), flush_interval=3600)
    try:
        cache.consume(21, 5)
        cache.flush()
        with db.engine.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = :name"
                ),
                {"name": APPLICATION_NAME},
            ).all()
        assert killed == [(True,)]
        cache.consume(21, 3)
        with pytest.raises(psycopg.OperationalError):
            cache.flush()  # on the dead connection: the counts stay pending
        cache.flush()  # on a new one
        assert cache.used_today(21) == 8
    finally:
        cache.close()
    assert stored(db) == {(21, Clock(db).today()): 8}


def test_closing_the_cache_writes_what_is_pending_and_closes_its_connection(
    db: Database,
) -> None:
    cache = GrantCache(db, Clock(db), flush_interval=0.01)
    cache.consume(31, 2)  # starts the background flusher
    cache.consume(31, 1)
    cache.close()
    assert stored(db) == {(31, Clock(db).today()): 3}
    if not db.is_sqlite:
        # The server process of a closed connection ends a moment after the close.
        deadline = time.monotonic() + 10
        while usage_connections(db) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert usage_connections(db) == 0
