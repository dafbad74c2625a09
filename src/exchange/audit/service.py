"""The hash-chained audit log, its group-committing writer, verification and statistics.

Each entry's ``hash`` is ``sha256(prev_hash + canonical JSON of the entry)``; the genesis
``prev_hash`` is 64 zeros. ``seq`` is not part of the hashed content, so moving an entry
shows up as a broken link ("reordered") rather than as an edit.

Durability: the broker answers only once a call's entry survives the broker process being
killed. Two modes give that, with the same guarantee as SQLite in WAL mode with
``synchronous=NORMAL`` (a process kill loses nothing; an OS crash may lose the last
moments):

* **journal** (the default for a SQLite file; :func:`journal_for`): :meth:`AuditWriter.record`
  copies the entry's canonical line into a local append-only journal (a shared memory map
  of a segment file: in the page cache at once, no system call) in the caller's thread and
  returns. The writer thread then chains and commits journaled
  entries in groups; a journal segment is deleted once every entry in it is committed, and
  :func:`recover` replays the uncommitted tail after a crash (:meth:`AuditWriter.start` and
  ``exchange audit verify`` run it). One copy is ~1 µs where a commit round trip through
  the writer thread cost milliseconds (a thread hand-off each way, plus GIL waits behind
  the writer's Python work), which the broker's one-connection latency budget cannot pay.
* **commit-wait** (no journal, e.g. PostgreSQL): :meth:`AuditWriter.record` resolves only
  after the transaction holding the entry has committed. Entries queued while the previous
  group was committing go into the next one, so a loaded broker amortises a commit over
  hundreds of entries.

Readers that must see every answered call (the audit API) call :meth:`AuditWriter.flush`
first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import fcntl
import hashlib
import logging
import mmap
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange.audit.models import AuditEntry, AuditHead, AuditVolume
from exchange.audit.schemas import (
    AuditEntryOut,
    Problem,
    StatsOut,
    VerifyReport,
    Volume,
    VolumeStats,
)
from exchange.db.engine import Database
from exchange.errors import Unavailable

log = logging.getLogger(__name__)

GENESIS = "0" * 64
BEIJING = dt.timezone(dt.timedelta(hours=8))


@dataclass(slots=True)
class Entry:
    """What the broker records about one call, before it has a place in the chain."""

    request_id: str
    at: dt.datetime
    kind: str
    consumer: str
    provider: str | None
    resource_code: str | None
    items: list[str]
    case: str | None
    records: int
    outcome: str
    status: int
    latency_us: int
    #: :meth:`canonical`, once computed (the journal line and the hash share it)
    cached: bytes | None = field(default=None, repr=False, compare=False)

    def canonical(self) -> bytes:
        """The hashed content: sorted keys, UTC time to the microsecond, UTF-8."""
        if self.cached is None:
            self.cached = self._canonical()
        return self.cached

    def _canonical(self) -> bytes:
        return canonical_json(
            {
                "request_id": self.request_id,
                "at": self.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
                "kind": self.kind,
                "consumer": self.consumer,
                "provider": self.provider,
                "resource_code": self.resource_code,
                "items": list(self.items),
                "case": self.case,
                "records": self.records,
                "outcome": self.outcome,
                "status": self.status,
                "latency_us": self.latency_us,
            }
        )

    @classmethod
    def from_canonical(cls, line: bytes) -> Entry:
        """The entry a journal line (its :meth:`canonical` form) describes."""
        data = orjson.loads(line)
        return cls(
            request_id=data["request_id"],
            at=dt.datetime.fromisoformat(data["at"]),
            kind=data["kind"],
            consumer=data["consumer"],
            provider=data["provider"],
            resource_code=data["resource_code"],
            items=list(data["items"]),
            case=data["case"],
            records=data["records"],
            outcome=data["outcome"],
            status=data["status"],
            latency_us=data["latency_us"],
        )

    @classmethod
    def of(cls, row: AuditEntry) -> Entry:
        return cls(
            request_id=row.request_id,
            at=row.at,
            kind=row.kind,
            consumer=row.consumer,
            provider=row.provider,
            resource_code=row.resource_code,
            items=list(row.items),
            case=row.case,
            records=row.records,
            outcome=row.outcome,
            status=row.status,
            latency_us=row.latency_us,
        )


def canonical_json(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, entry: Entry) -> str:
    return hashlib.sha256(prev_hash.encode() + entry.canonical()).hexdigest()


class AuditUnavailable(Unavailable):
    """The entry could not be committed, so the exchange must not be answered."""

    code = "broker.audit_unavailable"


@dataclass(slots=True)
class _Pending:
    entry: Entry
    #: resolved with the seq once committed; None when nobody waits for the commit
    future: concurrent.futures.Future[int] | None = None
    #: journal segment holding the entry (0: not journaled)
    segment: int = 0


@dataclass(slots=True)
class _Flush:
    """Queue marker: commit what came before now, then set ``done``."""

    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()

#: Size of a journal segment: a new one starts when an entry no longer fits, so a
#: committed segment can be deleted whole.
SEGMENT_BYTES = 4 * 1024 * 1024
#: How long the journaled writer lets entries gather before a commit: nobody waits for it,
#: and fewer, larger commits leave the event loop more of the GIL.
JOURNAL_LINGER = 0.05


def journal_for(database_url: str) -> Path | None:
    """The journal directory of a SQLite file database (``<file>.journal``), else None.

    Only a local database gets a journal by default: the journal lives on the broker's
    disk, so several brokers sharing one PostgreSQL would each need their own.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().with_name(Path(database).name + ".journal")


class _Journal:
    """Segment files in one directory, owned by one process (``flock``), written through a
    shared memory map.

    A store into a ``MAP_SHARED`` mapping is in the page cache the moment it is made, so
    a killed process loses nothing, exactly as with ``write()``, but it costs no system
    call: measured in the broker, ``write()`` took ~28 µs a call while the writer thread's
    SQLite commits shared the file system journal. Segments are preallocated (sparse),
    so an unused tail reads as NUL bytes, which JSON text never contains.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise
        self.segment = 0
        self._map: mmap.mmap | None = None
        self.size = 0

    def segments(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.glob("seg-*.ndjson"):
            try:
                found.append((int(path.stem[4:]), path))
            except ValueError:
                continue
        return sorted(found)

    def open_next(self) -> None:
        """Start a new segment (the next number after any on disk)."""
        last = max([self.segment, *(n for n, _ in self.segments())])
        fd = os.open(self.directory / f"seg-{last + 1:08d}.ndjson", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, SEGMENT_BYTES)
            mapped = mmap.mmap(fd, SEGMENT_BYTES)
        finally:
            os.close(fd)
        if self._map is not None:
            self._map.close()
        self._map, self.segment, self.size = mapped, last + 1, 0

    def write(self, data: bytes) -> None:
        if self._map is None or self.size + len(data) > SEGMENT_BYTES:
            if len(data) > SEGMENT_BYTES:
                raise ValueError("an audit entry larger than a journal segment")
            self.open_next()
        assert self._map is not None
        self._map[self.size : self.size + len(data)] = data
        self.size += len(data)

    @staticmethod
    def read(path: Path) -> bytes:
        """A segment's written part (up to the first NUL of the preallocated tail)."""
        data = path.read_bytes()
        end = data.find(b"\0")
        return data if end < 0 else data[:end]

    def drop_before(self, segment: int) -> None:
        """Delete the segments numbered below ``segment`` (all their entries committed)."""
        for number, path in self.segments():
            if number < segment:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        os.close(self._lock_fd)


@dataclass(slots=True)
class WriterStats:
    groups: int = 0
    entries: int = 0
    largest_group: int = 0
    commit_seconds: float = 0.0


class AuditWriter:
    """One thread that appends entries to the chain and commits them in groups.

    With ``journal`` (a directory), :meth:`record` returns once the entry is in the journal
    and the thread commits behind it, every ``linger`` seconds (or sooner when a group
    fills or a reader flushes); without, :meth:`record` waits for the commit, and the
    thread commits as soon as the previous commit is done, which already groups entries
    under load.
    """

    def __init__(
        self,
        db: Database,
        *,
        journal: Path | None = None,
        max_group: int = 2000,
        linger: float | None = None,
        name: str = "audit",
    ) -> None:
        self._db = db
        self._journal_dir = journal
        self._journal: _Journal | None = None
        self._max_group = max_group
        if linger is None:
            linger = JOURNAL_LINGER if journal is not None else 0.0
        self._linger = linger
        self._thread: threading.Thread | None = None
        self._name = name
        self.stats = WriterStats()
        #: entries replayed from the journal by the last :meth:`start`
        self.recovered = 0
        # Commit-wait mode: callers hand entries over through a queue.
        self._queue: queue.SimpleQueue[_Pending | _Flush | object] = queue.SimpleQueue()
        # Journal mode: entries wait in a list the thread takes every ``linger`` seconds.
        # No per-entry hand-off: waking the thread for each entry cost the event loop a
        # GIL round trip per call.
        self._jlock = threading.Lock()
        self._buffer: list[_Pending] = []
        self._flushes: list[_Flush] = []
        self._wake = threading.Event()
        self._stopping = False
        #: a journaled group whose commit failed, tried again first
        self._retry: list[_Pending] = []

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def journaled(self) -> bool:
        """Whether :meth:`record` returns at the journal write (not at the commit)."""
        return self._journal is not None

    def start(self) -> None:
        """Replay what a previous process left in the journal, then start the thread.

        If another live process holds the journal, this writer runs without one (it waits
        for commits) rather than mixing its entries into a journal it does not own.
        """
        if self.running:
            return
        ensure_head(self._db)
        if self._journal_dir is not None and self._journal is None:
            try:
                self._journal = _Journal(self._journal_dir)
            except BlockingIOError:
                log.warning(
                    "audit journal %s is held by another process; committing each entry "
                    "before answering instead",
                    self._journal_dir,
                )
            else:
                self.recovered = _replay(self._db, self._journal)
                self._journal.open_next()
        self._stopping = False
        target = self._run_journaled if self._journal is not None else self._run
        self._thread = threading.Thread(target=target, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then end the thread (and empty the journal)."""
        if self._thread is None:
            return
        if self._journal is None:
            self._queue.put(_STOP)
        else:
            self._stopping = True
            self._wake.set()
        self._thread.join(timeout)
        drained = not self._thread.is_alive()
        self._thread = None
        if self._journal is not None:
            with self._jlock:
                if drained and not self._retry and not self._buffer:
                    self._journal.drop_before(self._journal.segment + 1)
                self._journal.close()
                self._journal = None

    def submit(self, entry: Entry) -> concurrent.futures.Future[int]:
        """Queue an entry (journaling it first in journal mode); the future resolves to its
        ``seq`` once committed. Raises :class:`AuditUnavailable` if the journal write fails."""
        pending = _Pending(entry, concurrent.futures.Future())
        future = pending.future
        assert future is not None
        if not self.running:
            future.set_exception(AuditUnavailable("the audit writer is not running"))
        elif self._journal is None:
            self._queue.put(pending)
        else:
            self._journal_write([pending])
        return future

    async def record(self, entry: Entry) -> None:
        """Make the entry durable (the broker's answer waits for this): the journal write
        (a ~1 µs copy into a shared memory map, in the caller's thread), or the commit when
        there is no journal."""
        if self._journal is None or not self.running:
            await asyncio.wrap_future(self.submit(entry))
            return
        self._journal_write([_Pending(entry)])

    def _journal_write(self, pendings: list[_Pending]) -> None:
        lines = b"".join(p.entry.canonical() + b"\n" for p in pendings)
        # One lock around the write and the hand-over keeps the buffer in journal order,
        # which segment clean-up and recovery's committed-prefix rule rely on.
        with self._jlock:
            journal = self._journal
            if journal is None:
                raise AuditUnavailable("the audit writer stopped")
            try:
                journal.write(lines)
            except (OSError, ValueError) as exc:
                raise AuditUnavailable(
                    f"the audit journal could not be written: {type(exc).__name__}"
                ) from exc
            segment = journal.segment
            for pending in pendings:
                pending.segment = segment
            self._buffer.extend(pendings)
            full = len(self._buffer) >= self._max_group
        if full:
            self._wake.set()

    def record_sync(self, entry: Entry, timeout: float = 30.0) -> int:
        """Append and wait for the commit; returns the entry's ``seq``."""
        future = self.submit(entry)
        self.flush(timeout)
        return future.result(timeout)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every entry submitted before this call is committed (read-your-writes
        for the audit API). False if that took longer than ``timeout``."""
        if not self.running:
            return True
        marker = _Flush()
        if self._journal is None:
            self._queue.put(marker)
        else:
            with self._jlock:
                self._flushes.append(marker)
            self._wake.set()
        return marker.done.wait(timeout)

    def _run_journaled(self) -> None:
        while True:
            self._wake.wait(self._linger)
            self._wake.clear()
            stopping = self._stopping
            with self._jlock:
                group, self._buffer = self._retry + self._buffer, []
                flushes, self._flushes = self._flushes, []
            self._retry = []
            failed = False
            for i in range(0, len(group), self._max_group):
                if not self._commit(group[i : i + self._max_group]):
                    # Journaled entries are durable and acknowledged: keep the rest and
                    # retry, so the chain stays in journal order once the database is back.
                    self._retry = group[i:]
                    failed = True
                    break
            if failed:
                with self._jlock:
                    self._flushes[:0] = flushes
                if stopping:
                    return
                time.sleep(0.5)
                continue
            for marker in flushes:
                marker.done.set()
            if stopping:
                return

    def _run(self) -> None:
        stopping = False
        while not stopping:
            flushes: list[_Flush] = []
            first = self._queue.get()
            if first is _STOP:
                break
            if isinstance(first, _Flush):
                first.done.set()
                continue
            group: list[_Pending] = [first]  # type: ignore[list-item]
            deadline = time.monotonic() + self._linger
            while len(group) < self._max_group:
                try:
                    if self._linger > 0:
                        wait = deadline - time.monotonic()
                        item = (
                            self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                        )
                    else:
                        item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                if isinstance(item, _Flush):
                    flushes.append(item)
                    break  # commit now: someone is reading
                group.append(item)  # type: ignore[arg-type]
            self._commit(group)
            for marker in flushes:
                marker.done.set()

    def _commit(self, group: list[_Pending]) -> bool:
        started = time.perf_counter()
        try:
            seqs = append(self._db, [p.entry for p in group])
        except Exception as exc:
            log.exception("audit group of %d entries failed to commit", len(group))
            if self._journal is None:
                error = AuditUnavailable(
                    f"the audit log could not be written: {type(exc).__name__}"
                )
                for pending in group:
                    if pending.future is not None:
                        pending.future.set_exception(error)
            return False
        elapsed = time.perf_counter() - started
        self.stats.groups += 1
        self.stats.entries += len(group)
        self.stats.largest_group = max(self.stats.largest_group, len(group))
        self.stats.commit_seconds += elapsed
        for pending, seq in zip(group, seqs, strict=True):
            if pending.future is not None:
                pending.future.set_result(seq)
        journal = self._journal
        if journal is not None:
            # Everything before the last committed entry's segment is committed, and no
            # longer written (only the newest segment is), so no lock is needed.
            journal.drop_before(group[-1].segment)
        return True


def _replay(db: Database, journal: _Journal) -> int:
    """Commit the journaled entries a dead process had not committed; delete its segments.

    The writer commits in journal order, so the committed entries form a prefix of the
    journal: the uncommitted tail starts after the last journaled entry found in the
    database (compared by canonical content, which ``request_id`` alone does not fix).
    """
    segments = journal.segments()
    lines: list[bytes] = []
    for _, path in segments:
        data = journal.read(path)
        # A kill mid-copy can leave a partial last line: it was never acknowledged.
        lines.extend(line for line in data.split(b"\n") if line.endswith(b"}"))
    if not lines:
        journal.drop_before(1 << 62)
        return 0
    pending: list[Entry | None] = []
    for line in lines:
        try:
            pending.append(Entry.from_canonical(line))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.error("audit journal: skipping an unreadable line %r", line[:120])
            pending.append(None)
    committed: set[bytes] = set()
    ids = sorted({e.request_id for e in pending if e is not None})
    with db.sessions() as session:
        for i in range(0, len(ids), 500):
            rows = session.scalars(
                select(AuditEntry).where(AuditEntry.request_id.in_(ids[i : i + 500]))
            )
            committed.update(Entry.of(row).canonical() for row in rows)
    done = max((i + 1 for i, line in enumerate(lines) if line in committed), default=0)
    tail = [e for e in pending[done:] if e is not None]
    for i in range(0, len(tail), 2000):
        append(db, tail[i : i + 2000])
    journal.drop_before(1 << 62)
    if tail:
        log.warning("audit journal: replayed %d uncommitted entries", len(tail))
    return len(tail)


def recover(db: Database, directory: Path) -> int | None:
    """Replay a journal left by a dead broker (``exchange audit verify`` runs this first).

    Returns the entries replayed, or None when a live broker holds the journal (it commits
    its entries itself).
    """
    if not directory.exists():
        return 0
    ensure_head(db)
    try:
        journal = _Journal(directory)
    except BlockingIOError:
        return None
    try:
        return _replay(db, journal)
    finally:
        journal.close()


def ensure_head(db: Database) -> None:
    """Create the chain head row if this is a fresh database."""
    with db.sessions() as session:
        if session.get(AuditHead, 1) is not None:
            return
        session.add(AuditHead(id=1, seq=0, hash=GENESIS))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()  # another process created it first


def _beijing_day(at: dt.datetime) -> dt.date:
    return at.astimezone(BEIJING).date()


def append(db: Database, entries: Sequence[Entry]) -> list[int]:
    """Chain and commit ``entries`` in one transaction; return their seqs."""
    with db.sessions() as session:
        # Taking the write lock first (a no-op UPDATE) serialises writers on both backends
        # and spares SQLite the read-then-upgrade failure of a deferred transaction.
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(id=1))
        head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
        seq, prev = int(head.seq), str(head.hash)
        rows: list[tuple[Any, ...]] = []
        volume: dict[tuple[dt.date, str, str, str], list[int]] = {}
        conn = session.connection()
        for entry in entries:
            seq += 1
            digest = chain_hash(prev, entry)
            rows.append(
                (
                    seq,
                    entry.request_id,
                    entry.at,
                    entry.kind,
                    entry.consumer,
                    entry.provider,
                    entry.resource_code,
                    entry.items,
                    entry.case,
                    entry.records,
                    entry.outcome,
                    entry.status,
                    entry.latency_us,
                    prev,
                    digest,
                )
            )
            prev = digest
            if entry.outcome == "ok" and entry.provider and entry.resource_code:
                key = (_beijing_day(entry.at), entry.consumer, entry.provider, entry.resource_code)
                acc = volume.setdefault(key, [0, 0])
                acc[0] += 1
                acc[1] += entry.records
        if conn.dialect.name == "sqlite":
            # Straight to the driver, values converted by the columns' own bind
            # processors: SQLAlchemy's per-row parameter handling cost the writer thread
            # (and so the event loop, through the GIL) several times more Python per entry.
            at_bind, items_bind = _binders(conn.dialect)
            conn.exec_driver_sql(
                _insert_sql(conn.dialect.paramstyle),
                [(*r[:2], at_bind(r[2]), *r[3:7], items_bind(r[7]), *r[8:]) for r in rows],
            )
        else:
            # psycopg adapts JSON through SQLAlchemy's bind casts, not a bind processor:
            # the Core insert keeps that right (and batches rows in one round trip).
            conn.execute(
                AuditEntry.__table__.insert(),  # type: ignore[attr-defined]
                [dict(zip(_COLUMNS, r, strict=True)) for r in rows],
            )
        _add_volume(session, volume)
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))
        session.commit()
    return [r[0] for r in rows]


_COLUMNS = (
    "seq",
    "request_id",
    "at",
    "kind",
    "consumer",
    "provider",
    "resource_code",
    "items",
    "case",
    "records",
    "outcome",
    "status",
    "latency_us",
    "prev_hash",
    "hash",
)


def _insert_sql(paramstyle: str) -> str:
    marks = {"qmark": "?", "format": "%s", "pyformat": "%s"}
    if paramstyle not in marks:
        raise RuntimeError(f"unsupported DBAPI paramstyle {paramstyle!r}")
    columns = ", ".join(f'"{c}"' for c in _COLUMNS)
    values = ", ".join([marks[paramstyle]] * len(_COLUMNS))
    return f"INSERT INTO audit_entry ({columns}) VALUES ({values})"


_Bind = Callable[[Any], Any]
_BINDERS: dict[str, tuple[_Bind, _Bind]] = {}


def _binders(dialect: Dialect) -> tuple[_Bind, _Bind]:
    """The bind processors of the ``at`` and ``items`` columns for this dialect."""
    found = _BINDERS.get(dialect.name)
    if found is None:
        table = AuditEntry.__table__
        pair = []
        for name in ("at", "items"):
            processor = table.c[name].type.bind_processor(dialect)
            pair.append(processor if processor is not None else _same)
        found = _BINDERS[dialect.name] = (pair[0], pair[1])
    return found


def _same(value: Any) -> Any:
    return value


def _add_volume(session: Session, volume: dict[tuple[dt.date, str, str, str], list[int]]) -> None:
    if not volume:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    values = [
        {
            "day": day,
            "consumer": consumer,
            "provider": provider,
            "resource_code": code,
            "calls": calls,
            "records": records,
        }
        for (day, consumer, provider, code), (calls, records) in sorted(volume.items())
    ]
    stmt = dialect_insert(AuditVolume)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day", "consumer", "provider", "resource_code"],
        set_={
            "calls": AuditVolume.calls + stmt.excluded.calls,
            "records": AuditVolume.records + stmt.excluded.records,
        },
    )
    session.execute(stmt, values)


# --- verification ---------------------------------------------------------------------


def _walk(db: Database, chunk: int = 5000) -> Iterator[AuditEntry]:
    after = 0
    while True:
        with db.sessions() as session:
            rows = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq > after)
                .order_by(AuditEntry.seq)
                .limit(chunk)
            ).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def verify(db: Database) -> VerifyReport:
    """Walk the chain; stop at the first entry that was edited, deleted or reordered."""
    prev_seq, prev_hash, count = 0, GENESIS, 0
    for row in _walk(db):
        if row.seq != prev_seq + 1:
            missing = (
                f"{prev_seq + 1}" if row.seq == prev_seq + 2 else f"{prev_seq + 1}–{row.seq - 1}"
            )
            return VerifyReport(
                ok=False,
                entries=count,
                last_seq=prev_seq,
                first_bad_seq=prev_seq + 1,
                problem=Problem.deleted,
                message=f"entry {missing} is missing: seq jumps from {prev_seq} to {row.seq}",
            )
        if chain_hash(row.prev_hash, Entry.of(row)) != row.hash:
            return VerifyReport(
                ok=False,
                entries=count,
                last_seq=prev_seq,
                first_bad_seq=row.seq,
                problem=Problem.edited,
                message=f"entry {row.seq} was edited: its content no longer matches its hash",
            )
        if row.prev_hash != prev_hash:
            return VerifyReport(
                ok=False,
                entries=count,
                last_seq=prev_seq,
                first_bad_seq=row.seq,
                problem=Problem.reordered,
                message=(
                    f"entry {row.seq} does not follow entry {prev_seq}: entries were reordered "
                    "(or one was removed and the rest renumbered)"
                ),
            )
        prev_seq, prev_hash, count = row.seq, row.hash, count + 1
    with db.sessions() as session:
        head = session.get(AuditHead, 1)
    if head is not None and (head.seq, head.hash) != (prev_seq, prev_hash):
        return VerifyReport(
            ok=False,
            entries=count,
            last_seq=prev_seq,
            first_bad_seq=prev_seq + 1,
            problem=Problem.deleted,
            message=(
                f"the chain ends at entry {prev_seq} but its head records entry {head.seq}: "
                "entries were cut from the end"
            ),
        )
    return VerifyReport(ok=True, entries=count, last_seq=prev_seq, message="chain intact")


# --- reading --------------------------------------------------------------------------


def to_out(row: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        seq=row.seq,
        request_id=row.request_id,
        at=row.at,
        kind=row.kind,
        consumer=row.consumer,
        provider=row.provider,
        resource_code=row.resource_code,
        items=list(row.items),
        case=row.case,
        records=row.records,
        outcome=row.outcome,
        status=row.status,
        latency_ms=row.latency_us / 1000,
        hash=row.hash,
    )


def entries(
    session: Session,
    *,
    department: str | None = None,
    consumer: str | None = None,
    provider: str | None = None,
    resource_code: str | None = None,
    request_id: str | None = None,
    outcome: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[AuditEntry]:
    """Entries in chain order; ``department`` limits to those it consumed or provided."""
    stmt = select(AuditEntry).where(AuditEntry.seq > after)
    if department is not None:
        stmt = stmt.where((AuditEntry.consumer == department) | (AuditEntry.provider == department))
    for column, value in (
        (AuditEntry.consumer, consumer),
        (AuditEntry.provider, provider),
        (AuditEntry.resource_code, resource_code),
        (AuditEntry.request_id, request_id),
        (AuditEntry.outcome, outcome),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return list(session.scalars(stmt.order_by(AuditEntry.seq).limit(limit)))


def _volume(session: Session, day: dt.date | None, department: str | None) -> VolumeStats:
    def grouped(column: Any) -> dict[str, Volume]:
        stmt = select(column, func.sum(AuditVolume.calls), func.sum(AuditVolume.records)).group_by(
            column
        )
        if day is not None:
            stmt = stmt.where(AuditVolume.day == day)
        if department is not None:
            stmt = stmt.where(
                or_(AuditVolume.consumer == department, AuditVolume.provider == department)
            )
        return {
            str(key): Volume(calls=int(calls or 0), records=int(records or 0))
            for key, calls, records in session.execute(stmt)
        }

    by_provider = grouped(AuditVolume.provider)
    return VolumeStats(
        records=sum(v.records for v in by_provider.values()),
        calls=sum(v.calls for v in by_provider.values()),
        by_provider=by_provider,
        by_consumer=grouped(AuditVolume.consumer),
        by_topic=grouped(AuditVolume.resource_code),
    )


def stats(session: Session, today: dt.date, department: str | None = None) -> StatsOut:
    """Records exchanged today and in total, by department and topic; with ``department``,
    only the exchanges it took part in (as consumer or provider)."""
    return StatsOut(
        day=today,
        today=_volume(session, today, department),
        total=_volume(session, None, department),
    )


def count(session: Session) -> int:
    return int(session.scalar(select(func.count(AuditEntry.seq))) or 0)


def fetch_all(db: Database) -> Iterable[AuditEntry]:
    """Every entry in chain order (for export and the CLI)."""
    return _walk(db)
