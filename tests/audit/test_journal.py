"""The audit journal: the broker's durable point when the database is a SQLite file.

An entry is acknowledged once its line is in the journal; the writer commits behind it,
and a broker killed before committing loses nothing: recovery commits the journal's
uncommitted tail, exactly once, in journal order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.audit.entries import T0, sample_entry

from exchange.audit import keys
from exchange.audit import writer as writer_mod
from exchange.audit.entry import Entry
from exchange.audit.journal import RESIDENT_BYTES, SEGMENT_BYTES, Journal, journal_for
from exchange.audit.models import AuditEntry
from exchange.audit.verify import verify
from exchange.audit.writer import AuditWriter, recover
from exchange.db.engine import Database
from exchange.db.migrate import ensure_current


def entry(i: int) -> Entry:
    # Milliseconds apart: many entries inside one second, as the broker writes them.
    return sample_entry(i, at=T0 + dt.timedelta(milliseconds=i))


def stored(db: Database) -> list[str]:
    with db.sessions() as session:
        return list(session.scalars(select(AuditEntry.request_id).order_by(AuditEntry.seq)))


def signer(tmp_path: Path) -> keys.Signer:
    return keys.load_or_create(tmp_path / "audit-signing.key")[0]


def test_journal_path_only_for_sqlite_files(tmp_path: Path) -> None:
    assert journal_for(f"sqlite:///{tmp_path}/x.db") == tmp_path / "x.db.journal"
    assert journal_for("sqlite://") is None
    assert journal_for("postgresql+psycopg://u@h/db") is None


def test_record_returns_at_the_journal_and_flush_commits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    db = Database(url)
    ensure_current(db)
    journal = journal_for(url)
    assert journal is not None
    # A long linger: nothing is committed unless a reader flushes.
    writer = AuditWriter(db, journal=journal, signer=signer(tmp_path), linger=30.0)
    writer.start()
    try:
        assert writer.journaled

        async def run() -> None:
            await asyncio.gather(*(writer.record(entry(i)) for i in range(20)))

        asyncio.run(run())
        lines = b"".join(p.read_bytes() for p in journal.glob("seg-*.ndjson"))
        assert lines.count(b"\n") == 20  # in the page cache before any commit
        assert writer.flush(5.0)
        assert stored(db) == [f"req-{i}" for i in range(20)]
    finally:
        writer.stop()
    assert list(journal.glob("seg-*.ndjson")) == []  # a clean stop empties the journal
    assert verify(db).ok
    db.dispose()


def test_a_journaled_call_leaves_only_its_canonical_bytes_until_the_commit(
    tmp_path: Path,
) -> None:
    """Between a call's answer (its line journaled) and the commit, the writer holds the
    entry's canonical form, not the entry: nothing the call built outlives its answer.
    An entry someone waits for (``submit``) keeps its future and gets its seq."""
    url = f"sqlite:///{tmp_path}/a.db"
    db = Database(url)
    ensure_current(db)
    writer = AuditWriter(db, journal=journal_for(url), signer=signer(tmp_path), linger=30.0)
    writer.start()
    try:
        calls = [entry(i) for i in range(3)]
        held = [sys.getrefcount(e) for e in calls]
        assert all(writer.record_now(e) for e in calls)
        assert [sys.getrefcount(e) for e in calls] == held
        waited = writer.submit(entry(3))
        assert writer.backlog == 4
        assert not waited.done()
        assert writer.flush(5.0)
        assert waited.result(5.0) == 4
        assert writer.backlog == 0
        assert stored(db) == [f"req-{i}" for i in range(4)]
    finally:
        writer.stop()
    assert verify(db).ok
    db.dispose()


def test_a_segment_that_cannot_be_deleted_is_not_committed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting committed segments comes after the commit: a file system that refuses it
    leaves the segment for later, and the group it held is in the chain once."""
    url = f"sqlite:///{tmp_path}/a.db"
    db = Database(url)
    ensure_current(db)
    refusals = []

    def refuse(self: Journal, segment: int) -> None:
        refusals.append(segment)
        raise PermissionError("read-only file system")

    writer = AuditWriter(db, journal=journal_for(url), signer=signer(tmp_path), linger=30.0)
    writer.start()
    try:
        monkeypatch.setattr(Journal, "drop_before", refuse)
        assert all(writer.record_now(entry(i)) for i in range(3))
        assert writer.flush(5.0)
        assert refusals
        monkeypatch.undo()
        assert writer.record_now(entry(3))
        assert writer.flush(5.0)
        assert stored(db) == [f"req-{i}" for i in range(4)]
    finally:
        writer.stop()
    assert verify(db).ok
    db.dispose()


def _mapped_rss(path: Path) -> int:
    """Bytes of ``path``'s mapping resident in this process (/proc/self/smaps)."""
    rss, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's first line
            inside = line.endswith(str(path))
        elif inside and head[0] == "Rss:":
            rss += int(head[1]) * 1024
    return rss


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux /proc only")
def test_a_segment_stays_mostly_unmapped_and_keeps_every_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    try:
        lines = [b"%08d " % i + b"x" * 1000 + b"\n" for i in range(3_000)]  # ~3 MB
        for line in lines:
            journal.write(line)
        assert journal.segment == 1
        assert journal.size < SEGMENT_BYTES
        path = tmp_path / "j" / "seg-00000001.ndjson"
        # Filled pages leave the process; what it still maps is under the bound.
        assert 0 < _mapped_rss(path) <= RESIDENT_BYTES
        # The unmapped pages reached the file (through the page cache) all the same.
        assert Journal.read(path) == b"".join(lines)
    finally:
        journal.close()


_CRASH = """
import asyncio, datetime as dt, os, sys
from pathlib import Path
from exchange.audit import keys
from exchange.audit.writer import AuditWriter
from exchange.db.engine import Database
sys.path[:0] = [{tests!r}, {root!r}]  # the test module, and the repository for tests.*
from test_journal import entry
from exchange.db.migrate import ensure_current
db = Database({url!r}); ensure_current(db)
signer = keys.load_or_create(Path({key!r}))[0]
writer = AuditWriter(db, journal=Path({journal!r}), signer=signer, linger=30.0)
writer.start()
for i in range(5):
    writer.record_sync(entry(i))      # committed
async def more():
    for i in range(5, 12):
        await writer.record(entry(i))  # acknowledged, never committed
asyncio.run(more())
os._exit(0)  # dies like a SIGKILL: no stop(), no flush
"""


def crash_a_writer(tmp_path: Path, url: str) -> Path:
    """Run a writer in a process of its own that commits 5 entries, journals 7 more and
    dies; return the database's (first) journal directory."""
    journal = journal_for(url)
    assert journal is not None
    script = _CRASH.format(
        tests=str(Path(__file__).parent),
        root=str(Path(__file__).parents[2]),
        url=url,
        journal=str(journal),
        key=str(tmp_path / "audit-signing.key"),
    )
    subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=True, env=os.environ)
    return journal


def test_recover_commits_the_tail_a_killed_writer_left_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/b.db"
    journal = crash_a_writer(tmp_path, url)

    db = Database(url)
    try:
        assert stored(db) == [f"req-{i}" for i in range(5)]
        assert recover(db, journal, signer(tmp_path)).replayed == 7
        assert stored(db) == [f"req-{i}" for i in range(12)]
        assert recover(db, journal, signer(tmp_path)).replayed == 0  # nothing twice
        report = verify(db)
        assert report.ok, report.message
        assert report.entries == 12
    finally:
        db.dispose()


def test_a_second_process_writes_its_own_journal(tmp_path: Path) -> None:
    # exchange up --workers 2: the second worker journals too (no commit per call), in
    # the next journal of the database; recovery leaves both to their live owners.
    url = f"sqlite:///{tmp_path}/c.db"
    db = Database(url)
    ensure_current(db)
    journal = journal_for(url)
    assert journal is not None
    owner = AuditWriter(db, journal=journal, signer=signer(tmp_path))
    owner.start()
    try:
        second = AuditWriter(db, journal=journal, signer=signer(tmp_path))
        second.start()
        try:
            assert owner.journaled
            assert second.journaled
            assert (tmp_path / "c.db.journal.1").is_dir()
            held = recover(db, journal, signer(tmp_path))
            assert held.replayed is None
            assert held.held == 2

            async def both() -> None:
                for i in range(0, 10, 2):
                    await owner.record(entry(i))
                    await second.record(entry(i + 1))

            asyncio.run(both())
            owner.flush()
            second.flush()
        finally:
            second.stop()
    finally:
        owner.stop()
    try:
        assert sorted(stored(db)) == sorted(f"req-{i}" for i in range(10))
        report = verify(db)
        assert report.ok, report.message
    finally:
        db.dispose()


def test_a_killed_second_process_journal_is_replayed_by_the_next_writer(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/d.db"
    # A live first process holds the first journal: the one that dies writes the second.
    first = Journal(tmp_path / "d.db.journal")
    try:
        journal = crash_a_writer(tmp_path, url)
    finally:
        first.close()
    assert (tmp_path / "d.db.journal.1").is_dir()
    db = Database(url)
    try:
        assert stored(db) == [f"req-{i}" for i in range(5)]
        # The next writer takes the first journal and commits what the dead one left.
        writer = AuditWriter(db, journal=journal, signer=signer(tmp_path))
        writer.start()
        try:
            assert writer.recovered == 7
        finally:
            writer.stop()
        assert stored(db) == [f"req-{i}" for i in range(12)]
        assert recover(db, journal, signer(tmp_path)).replayed == 0  # nothing twice
        report = verify(db)
        assert report.ok, report.message
        assert report.entries == 12
    finally:
        db.dispose()


def test_the_backlog_is_bounded_callers_wait_for_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_BACKLOG uncommitted entries, record() waits for the writer (which it wakes)
    instead of the backlog, held in memory, growing without end."""
    monkeypatch.setattr(writer_mod, "MAX_BACKLOG", 5)
    url = f"sqlite:///{tmp_path}/b.db"
    db = Database(url)
    ensure_current(db)
    journal = journal_for(url)
    assert journal is not None
    # A long linger: without the bound nothing would be committed for 30 s.
    writer = AuditWriter(db, journal=journal, signer=signer(tmp_path), linger=30.0)
    writer.start()
    seen: list[int] = []
    try:

        async def run() -> None:
            for i in range(40):
                await writer.record(entry(i))
                seen.append(writer.backlog)

        asyncio.run(run())
        assert max(seen) <= 5
        assert writer.flush(5.0)
        assert writer.backlog == 0
        assert stored(db) == [f"req-{i}" for i in range(40)]
    finally:
        writer.stop()
        db.dispose()


def test_a_writer_that_cannot_commit_fails_callers_past_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_mod, "MAX_BACKLOG", 3)
    monkeypatch.setattr(writer_mod, "BACKLOG_WAIT", 0.3)
    url = f"sqlite:///{tmp_path}/c.db"
    db = Database(url)
    ensure_current(db)
    journal = journal_for(url)
    assert journal is not None

    def broken(*_: object) -> list[int]:
        raise OSError("disk unplugged")

    monkeypatch.setattr(writer_mod.chain, "append", broken)
    writer = AuditWriter(db, journal=journal, signer=signer(tmp_path), linger=0.01)
    writer.start()
    try:

        async def run() -> None:
            for i in range(3):
                await writer.record(entry(i))
            with pytest.raises(writer_mod.AuditUnavailable, match="3 entries behind"):
                await writer.record(entry(3))

        asyncio.run(run())
        assert writer.backlog == 3  # the journaled three stay, to be committed later
    finally:
        monkeypatch.undo()
        writer.stop()
        db.dispose()
