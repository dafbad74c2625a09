"""The audit writer's PostgreSQL path (one statement per group through psycopg) keeps the
chain exactly as the generic path does: same rows, same volume, checkpoints, several
writers on one chain, a lost connection."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select
from tests.audit.entries import sample_entry
from tests.conftest import fresh_database

from exchange.audit import chain
from exchange.audit.chain import Sign
from exchange.audit.entry import Entry
from exchange.audit.keys import load_or_create
from exchange.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditVolume
from exchange.audit.pgchain import APPLICATION_NAME, PgChain
from exchange.audit.verify import verify
from exchange.audit.writer import AuditWriter
from exchange.db.engine import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with fresh_database("postgres", tmp_path) as url:
        database = Database(url)
        chain.ensure_head(database)
        yield database
        database.dispose()


def varied(i: int) -> Entry:
    """Entries that exercise every column: NULLs, JSON, a verification's verdicts, a
    denial (no volume), another day in Beijing, version 1 (no correlation id)."""
    kinds: list[dict[str, object]] = [
        {},
        {"provider": None, "resource_code": None, "outcome": "denied", "status": 403},
        {"kind": "verify", "verdicts": {"name": {"match": 2, "unknown": 1}}, "records": 3},
        {"correlation_id": "caller-7", "items": ["id_number", "名字", 'quote"d']},
        {"version": 1, "case": None, "at": dt.datetime(2024, 3, 1, 17, 30, tzinfo=dt.UTC)},
        {"consumer": "rsj", "records": 40},
    ]
    return sample_entry(i, **kinds[i % len(kinds)])  # type: ignore[arg-type]


def rows(db: Database) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with db.sessions() as session:
        entries = [
            (r.seq, Entry.of(r).canonical(), r.prev_hash, r.hash)
            for r in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        ]
        # A verdict-less entry holds SQL NULL, not JSON null (what Entry.of cannot tell).
        nulls = session.execute(
            select(AuditEntry.seq).where(AuditEntry.verdicts.is_(None)).order_by(AuditEntry.seq)
        ).all()
        entries.append(("verdicts NULL", *(r.seq for r in nulls)))
        volume = [
            tuple(r)
            for r in session.execute(
                select(
                    AuditVolume.day,
                    AuditVolume.consumer,
                    AuditVolume.provider,
                    AuditVolume.resource_code,
                    AuditVolume.calls,
                    AuditVolume.records,
                ).order_by(AuditVolume.day, AuditVolume.consumer)
            )
        ]
    return entries, volume


def reset(db: Database) -> None:
    with db.session() as session:
        for model in (AuditEntry, AuditVolume, AuditCheckpoint, AuditHead):
            session.query(model).delete()
    chain.ensure_head(db)


def test_rows_volume_and_hashes_equal_the_generic_path(db: Database) -> None:
    groups = [[varied(i) for i in range(j, j + 7)] for j in range(0, 28, 7)]
    for group in groups:
        chain.append(db, group)
    expected = rows(db)
    reset(db)
    pg = PgChain(db)
    try:
        seqs = [pg.append(group)[0] for group in groups]
    finally:
        pg.close()
    assert seqs == [list(range(j + 1, j + 8)) for j in range(0, 28, 7)]
    assert rows(db) == expected
    assert pg.optimistic == len(groups) - 1  # the first group read the head under its lock
    assert pg.moved == 0
    report = verify(db)
    assert report.ok, report.findings
    assert report.entries == 28


def test_a_checkpoint_is_signed_in_the_same_transaction(db: Database, tmp_path: Path) -> None:
    signer = load_or_create(tmp_path / "k")[0]
    at = dt.datetime.now(dt.UTC)
    chain.sign_head(db, Sign(signer, "open", "w1", at))  # as a writer starts
    pg = PgChain(db)
    try:
        pg.append([varied(0), varied(1)])
        seqs, made = pg.append([varied(2)], Sign(signer, "run", "w1", at))
        _, again = pg.append([varied(3)], Sign(signer, "run", "w1", at))
    finally:
        pg.close()
    assert seqs == [3]
    assert made is not None
    assert again is not None
    assert (made.n, made.seq, again.n, again.seq) == (2, 3, 3, 4)
    assert again.fields()["prev"] == made.digest()
    report = verify(db, signer.verifier)
    assert report.ok, report.findings
    assert report.signed_seq == 4


def test_two_writers_on_one_chain_stay_gapless(db: Database) -> None:
    """Two brokers (two connections) appending in turn: each finds the head moved by the
    other, chains again under the row lock, and the chain stays whole."""
    first, second = PgChain(db), PgChain(db)
    try:
        for i in range(0, 40, 4):
            first.append([varied(i), varied(i + 1)])
            second.append([varied(i + 2), varied(i + 3)])
    finally:
        first.close()
        second.close()
    assert first.moved + second.moved >= 18
    entries, _ = rows(db)
    assert [e[0] for e in entries[:-1]] == list(range(1, 41))
    report = verify(db)
    assert report.ok, report.findings


def test_a_refused_group_commits_nothing(db: Database) -> None:
    pg = PgChain(db)
    try:
        pg.append([varied(0)])
        bad = dataclasses.replace(varied(2), case="x" * 300, cached=None)  # past varchar(200)
        with pytest.raises(psycopg.DataError):
            pg.append([varied(1), bad])
        assert pg.append([varied(3)])[0] == [2]  # the head read again, nothing half-written
    finally:
        pg.close()
    entries, _ = rows(db)
    assert [e[0] for e in entries[:-1]] == [1, 2]
    assert verify(db).ok


def test_the_writer_survives_its_connection_being_killed(db: Database) -> None:
    """A server restart or an administrator ending the backend: the group in flight is
    tried again on a new connection, and no caller gets an error."""
    writer = AuditWriter(db)
    writer.start()
    try:
        assert writer.record_sync(varied(0)) == 1
        with db.engine.connect() as conn:
            killed = conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s",
                (APPLICATION_NAME,),
            ).all()
        assert killed == [(True,)]
        assert writer.record_sync(varied(1)) == 2
        assert writer.stats.refused == 0
    finally:
        writer.stop()
    assert verify(db).ok


def writer_connections(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s",
                (APPLICATION_NAME,),
            ).scalar_one()
        )


def waiting_for_a_lock(db: Database) -> bool:
    with db.engine.connect() as conn:
        return bool(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = %s AND wait_event_type = 'Lock'",
                (APPLICATION_NAME,),
            ).scalar_one()
        )


def test_a_stop_that_gives_up_waiting_still_closes_the_connection(db: Database) -> None:
    """The writer's thread closes its own connection when it ends, however late: a stop
    whose join timed out left it open for the garbage collector (psycopg's "connection
    deleted while still open")."""
    writer = AuditWriter(db)
    writer.start()
    assert writer.record_sync(varied(0)) == 1
    blocker = psycopg.connect(db.url.replace("postgresql+psycopg", "postgresql"))
    try:
        # Hold the head's row lock: the writer's next group waits for it.
        blocker.execute("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
        late = writer.submit(varied(1))
        deadline = time.monotonic() + 30
        while not waiting_for_a_lock(db) and time.monotonic() < deadline:
            time.sleep(0.02)
        writer.stop(timeout=0.2)
        assert not late.done()
    finally:
        blocker.rollback()
        blocker.close()
    assert late.result(timeout=30) == 2  # the thread committed the group, then ended
    deadline = time.monotonic() + 30
    while writer_connections(db) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer_connections(db) == 0
    # A start after the late end runs a new thread on a new connection.
    writer.start()
    try:
        assert writer.record_sync(varied(2)) == 3
    finally:
        writer.stop()
    assert verify(db).ok
