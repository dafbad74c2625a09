"""The group-committing audit writer, and recovery of what a killed one journaled.

Durability: the broker answers only once a call's entry survives the broker process being
killed. Two modes give that, with the same guarantee as SQLite in WAL mode with
``synchronous=NORMAL`` (a process kill loses nothing; an OS crash may lose the last
moments):

* **journal** (the default for a SQLite file; :func:`~exchange.audit.journal.journal_for`):
  :meth:`AuditWriter.record` copies the entry's authenticated line into a local
  append-only journal (a shared memory map: in the page cache at once, no system call) in
  the caller's thread and returns. The writer thread then chains and commits journaled
  entries in groups; a journal segment is deleted once every entry in it is committed,
  and :func:`recover` replays the uncommitted tail after a crash (:meth:`AuditWriter.start`
  and ``exchange audit verify`` run it). One copy is ~1 µs where a commit round trip
  through the writer thread cost milliseconds, which the broker's one-connection latency
  budget cannot pay.
* **commit-wait** (no journal, e.g. PostgreSQL): :meth:`AuditWriter.record` resolves only
  after the transaction holding the entry has committed. Entries queued while the previous
  group was committing go into the next one, so a loaded broker amortises a commit over
  hundreds of entries.

The thread also signs checkpoints (``audit.checkpoint``): when it starts, every
``checkpoint_every`` entries or ``checkpoint_seconds``, and when it stops cleanly, so the
signing cost (~0.1 ms) is the writer's, never a request's.

No caller can stop the thread: a cancelled wait, a closed connection or an entry the
database refuses affects that call alone (a refused group is retried entry by entry).

Readers that must see every answered call (the audit API) call :meth:`AuditWriter.flush`
first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import select

from exchange.audit import chain
from exchange.audit.checkpoint import CLOSE, OPEN, RUN, Checkpoint, Mirror
from exchange.audit.entry import Entry
from exchange.audit.journal import Journal, Refused, claim, line_of, read_entries, slots
from exchange.audit.keys import Signer
from exchange.audit.models import AuditEntry
from exchange.audit.pgchain import PgChain
from exchange.db.engine import Database
from exchange.errors import Unavailable

log = logging.getLogger(__name__)

#: How long the journaled writer lets entries gather before a commit: nobody waits for it,
#: and fewer, larger commits leave the event loop more of the GIL.
JOURNAL_LINGER = 0.05
#: Journaled entries not yet committed that a writer keeps in memory (~1 KB each): when
#: the writer falls behind (a busy machine, a slow or locked database), its backlog grew
#: with every call (98 → 658 MB in 5 min under steady lookups). Past the bound, callers
#: wait for the writer (their answers slow down) instead of the heap growing.
MAX_BACKLOG = 20_000
#: How long a caller waits for the backlog to fall below the bound before its call fails
#: as the audit being unavailable (nothing journaled for it).
BACKLOG_WAIT = 10.0


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
    #: :meth:`AuditWriter.record`'s waiter on its event loop (commit-wait mode), settled
    #: with the rest of its group in one call onto that loop
    waiter: asyncio.Future[int] | None = None


@dataclass(slots=True)
class _Flush:
    """Queue marker: commit what came before now, then set ``done``."""

    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()


def _resolve(future: concurrent.futures.Future[int] | None, seq: int) -> None:
    # The waiter may be gone (its request cancelled, which cancels the future): setting a
    # result then raises InvalidStateError, which once killed this thread.
    if future is not None and not future.done():
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            future.set_result(seq)


def _reject(future: concurrent.futures.Future[int] | None, error: Exception) -> None:
    if future is not None and not future.done():
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            future.set_exception(error)


_Outcome = int | Exception


def _settle(results: list[tuple[asyncio.Future[int], _Outcome]]) -> None:
    """On the waiters' loop: give each its seq or its error."""
    for waiter, outcome in results:
        if waiter.done():  # its caller went away (the request was cancelled)
            continue
        if isinstance(outcome, Exception):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)


def _hand_over(outcomes: Iterable[tuple[_Pending, _Outcome]]) -> None:
    """Answer each pending entry's caller: futures one by one, and the event loop's
    waiters of a group in one call onto their loop. A future per waiter cost a wake-up
    of the loop (a write to its self-pipe) per entry; a group of 64 cost 64."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], _Outcome]]] = {}
    for pending, outcome in outcomes:
        waiter = pending.waiter
        if waiter is not None:
            by_loop.setdefault(waiter.get_loop(), []).append((waiter, outcome))
        elif isinstance(outcome, Exception):
            _reject(pending.future, outcome)
        else:
            _resolve(pending.future, outcome)
    for loop, results in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
            loop.call_soon_threadsafe(_settle, results)


@dataclass(slots=True)
class WriterStats:
    groups: int = 0
    entries: int = 0
    largest_group: int = 0
    commit_seconds: float = 0.0
    checkpoints: int = 0
    #: entries the database refused even alone (their callers got 503)
    refused: int = 0
    #: checkpoints the mirror could not take
    mirror_failures: int = 0


class AuditWriter:
    """One thread that appends entries to the chain and commits them in groups.

    With ``journal`` (a directory), :meth:`record` returns once the entry is in the journal
    and the thread commits behind it, every ``linger`` seconds (or sooner when a group
    fills or a reader flushes); without, :meth:`record` waits for the commit, and the
    thread commits as soon as the previous commit is done, which already groups entries
    under load. ``signer`` signs checkpoints and journal lines (a journal needs one);
    ``mirror`` receives a copy of every checkpoint.
    """

    def __init__(
        self,
        db: Database,
        *,
        journal: Path | None = None,
        signer: Signer | None = None,
        mirror: Mirror | None = None,
        max_group: int = 2000,
        linger: float | None = None,
        checkpoint_every: int = 10_000,
        checkpoint_seconds: float = 5.0,
        name: str = "audit",
    ) -> None:
        if journal is not None and signer is None:
            raise ValueError("a journaled audit writer needs the signing key (journal MACs)")
        self._db = db
        # PostgreSQL: groups go through psycopg in one round trip (audit.pgchain).
        self._pg = None if db.is_sqlite else PgChain(db)
        self._journal_dir = journal
        self._journal: Journal | None = None
        self._signer = signer
        self._mirror = mirror
        self._max_group = max_group
        if linger is None:
            linger = JOURNAL_LINGER if journal is not None else 0.0
        self._linger = linger
        self._every = checkpoint_every
        self._seconds = checkpoint_seconds
        self._thread: threading.Thread | None = None
        #: a thread :meth:`stop` stopped waiting for (it ends on its own)
        self._ending: threading.Thread | None = None
        self._name = name
        #: identifies this writer's checkpoints (open … close)
        self.writer_id = ""
        self.stats = WriterStats()
        #: entries replayed from the journal by the last :meth:`start`
        self.recovered = 0
        #: journal lines the last :meth:`start` refused to replay
        self.refused: list[Refused] = []
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
        #: journaled entries not yet committed (bounded by MAX_BACKLOG through record)
        self._backlog = 0
        # Checkpoint cadence: entries committed since the last one, and when it was made.
        self._unsigned = 0
        self._signed_at = 0.0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def journaled(self) -> bool:
        """Whether :meth:`record` returns at the journal write (not at the commit)."""
        return self._journal is not None

    def start(self) -> None:
        """Replay what a previous process left in the journal, sign an ``open`` checkpoint,
        then start the thread.

        If another live process holds the journal, this writer runs without one (it waits
        for commits) rather than mixing its entries into a journal it does not own.
        """
        if self.running:
            return
        ending = self._ending
        if ending is not None:
            # A stop that gave up waiting: the old thread still owns the PostgreSQL
            # connection and the queue until it ends.
            ending.join(self._seconds)
            if ending.is_alive():
                raise RuntimeError("the previous audit writer thread has not ended yet")
            self._ending = None
            # Nothing is queued while stopped (calls are refused), but the stop marker
            # stop() queued again may still be there if the thread had taken the first.
            self._queue = queue.SimpleQueue()
        chain.ensure_head(self._db)
        if self._journal_dir is not None and self._journal is None:
            try:
                self._journal = claim(self._journal_dir)
            except BlockingIOError:
                log.warning(
                    "every audit journal of %s is held by another process; committing each "
                    "entry before answering instead",
                    self._journal_dir,
                )
            else:
                assert self._signer is not None
                self.recovered, self.refused = replay(self._db, self._journal, self._signer)
                # What dead processes left in the other journals (no live one holds them).
                others = recover(self._db, self._journal_dir, self._signer)
                self.recovered += others.replayed or 0
                self.refused += others.refused
                self._journal.open_next()
        self.writer_id = uuid.uuid4().hex[:16]
        self._sign_head(OPEN)
        self._stopping = False
        target = self._run_journaled if self._journal is not None else self._run
        self._thread = threading.Thread(
            target=self._main, args=(target,), name=self._name, daemon=True
        )
        self._thread.start()

    def _main(self, loop: Callable[[], None]) -> None:
        """The thread: its loop, then its PostgreSQL connection closed by the thread that
        used it, however long the loop took to end (a stop whose join timed out left the
        connection to the garbage collector, open)."""
        try:
            loop()
        finally:
            if self._pg is not None:
                self._pg.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, sign a ``close`` checkpoint, then end the thread (and
        empty the journal)."""
        if self._thread is None:
            return
        if self._journal is None:
            self._queue.put(_STOP)
        else:
            self._stopping = True
            self._wake.set()
        self._thread.join(timeout)
        drained = not self._thread.is_alive()
        if not drained:
            log.warning("audit writer: its thread did not end within %.0f s", timeout)
            self._ending = self._thread
        self._thread = None
        if drained and not self._retry:
            self._sign_head(CLOSE)
        self._fail_waiting(AuditUnavailable("the audit writer stopped"))
        if not drained and self._journal is None:
            # _fail_waiting emptied the queue, the stop marker too: the thread still
            # running must find one when it comes back to the queue, or it never ends.
            self._queue.put(_STOP)
        if self._journal is not None:
            with self._jlock:
                if drained and not self._retry and not self._buffer:
                    self._journal.drop_before(self._journal.segment + 1)
                self._journal.close()
                self._journal = None

    def _fail_waiting(self, error: Exception) -> None:
        """Answer every caller still waiting, so none hangs on a stopped writer."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Pending):
                _hand_over([(item, error)])
            elif isinstance(item, _Flush):
                item.done.set()
        with self._jlock:
            for marker in self._flushes:
                marker.done.set()
            self._flushes = []

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
        if not self.running:
            raise AuditUnavailable("the audit writer is not running")
        if self._journal is None:
            waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._queue.put(_Pending(entry, waiter=waiter))
            await waiter
            return
        if self._backlog >= MAX_BACKLOG:
            await self._wait_for_room()
        self._journal_write([_Pending(entry)])

    def record_now(self, entry: Entry) -> bool:
        """:meth:`record` without awaiting, when it needs no wait: True once the entry is
        journaled (durable), False when the caller is to ``await record(entry)`` (no
        journal, a full backlog, a stopped writer). Spares the broker's answer a coroutine."""
        if self._journal is None or self._backlog >= MAX_BACKLOG or not self.running:
            return False
        self._journal_write([_Pending(entry)])
        return True

    @property
    def backlog(self) -> int:
        """Journaled entries not yet committed (held in memory until they are)."""
        return self._backlog

    @property
    def journal_mapped(self) -> int:
        """Bytes of the journal segment written and still mapped into the process."""
        return 0 if self._journal is None else self._journal.mapped

    @property
    def has_journal(self) -> bool:
        """Whether this writer journals (once started): its ``journal`` directory."""
        return self._journal_dir is not None

    async def _wait_for_room(self) -> None:
        deadline = time.monotonic() + BACKLOG_WAIT
        self._wake.set()
        while self._backlog >= MAX_BACKLOG:
            if time.monotonic() > deadline or not self.running:
                raise AuditUnavailable(
                    f"the audit writer is {self._backlog:,} entries behind its journal"
                )
            await asyncio.sleep(0.01)

    def _journal_write(self, pendings: list[_Pending]) -> None:
        signer = self._signer
        assert signer is not None
        try:
            if len(pendings) == 1:  # every answered call: no generator, no join
                lines = line_of(signer, pendings[0].entry)
            else:
                lines = b"".join([line_of(signer, p.entry) for p in pendings])
        except (TypeError, ValueError) as exc:  # a value JSON cannot hold: a bug upstream
            raise AuditUnavailable(f"the audit entry cannot be encoded: {exc}") from exc
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
            self._backlog += len(pendings)
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

    # -- the thread ---------------------------------------------------------------------

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
            try:
                for i in range(0, len(group), self._max_group):
                    left = self._commit(group[i : i + self._max_group])
                    if left:
                        # Journaled entries are durable and acknowledged: keep the rest
                        # and retry, so the chain stays in journal order once the database
                        # is back.
                        self._retry = left + group[i + self._max_group :]
                        failed = True
                        break
                if not group:
                    self._idle_checkpoint()
            except Exception:  # never let the thread die: log, keep the group, go on
                log.exception("audit writer: unexpected failure; retrying")
                self._retry = group
                failed = True
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
            try:
                first = self._queue.get(timeout=self._seconds)
            except queue.Empty:
                self._guarded(self._idle_checkpoint)
                continue
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
            try:
                self._commit(group)
            except Exception as exc:  # never let the thread die
                log.exception("audit writer: unexpected failure")
                failure = AuditUnavailable(f"audit failure: {type(exc).__name__}")
                _hand_over((pending, failure) for pending in group)
            for marker in flushes:
                marker.done.set()

    def _guarded(self, step: object) -> None:
        try:
            step()  # type: ignore[operator]
        except Exception:
            log.exception("audit writer: checkpoint failed")

    def _commit(self, group: list[_Pending]) -> list[_Pending]:
        """Commit ``group``; returns what is left to retry (journal mode, database down).

        A group the database refuses is tried entry by entry, so one bad entry fails its
        own call (commit-wait) or is stored escaped (journaled, already acknowledged),
        never its neighbours'.
        """
        if not group:
            return []
        started = time.perf_counter()
        try:
            seqs, made = self._append([p.entry for p in group], self._cadence(len(group)))
        except Exception as exc:
            log.warning(
                "audit group of %d entries failed to commit (%s); trying one by one",
                len(group),
                type(exc).__name__,
            )
            return self._commit_each(group)
        self._committed(group, seqs, made, time.perf_counter() - started)
        return []

    def _commit_each(self, group: list[_Pending]) -> list[_Pending]:
        for i, pending in enumerate(group):
            started = time.perf_counter()
            try:
                seqs, made = self._append([pending.entry], self._cadence(1))
            except Exception as exc:
                storable = pending.entry.storable()
                try:
                    if storable is pending.entry:
                        raise exc
                    seqs, made = self._append([storable], self._cadence(1))
                    log.error(
                        "audit entry %s stored with its values escaped: %s",
                        pending.entry.request_id,
                        type(exc).__name__,
                    )
                except Exception as again:
                    if self._journal is not None:
                        # Acknowledged already: keep it (and all after it) for a retry.
                        log.error("audit commit failed (%s); will retry", type(again).__name__)
                        return group[i:]
                    self.stats.refused += 1
                    log.error(
                        "audit entry %s refused by the database: %s",
                        pending.entry.request_id,
                        type(again).__name__,
                    )
                    refusal = AuditUnavailable(
                        f"the audit log could not be written: {type(again).__name__}"
                    )
                    _hand_over([(pending, refusal)])
                    continue
            self._committed([pending], seqs, made, time.perf_counter() - started)
        return []

    def _append(
        self, entries: list[Entry], sign: chain.Sign | None
    ) -> tuple[list[int], Checkpoint | None]:
        if self._pg is not None:
            return self._pg.append(entries, sign)
        return chain.append(self._db, entries, sign)

    def _committed(
        self, group: list[_Pending], seqs: list[int], made: Checkpoint | None, elapsed: float
    ) -> None:
        self.stats.groups += 1
        self.stats.entries += len(group)
        self.stats.largest_group = max(self.stats.largest_group, len(group))
        self.stats.commit_seconds += elapsed
        self._unsigned += len(group)
        if made is not None:
            self._signed(made)
        _hand_over(zip(group, seqs, strict=True))
        journaled = sum(1 for pending in group if pending.segment)
        if journaled:
            with self._jlock:
                self._backlog -= journaled
        journal = self._journal
        if journal is not None:
            # Everything before the last committed entry's segment is committed, and no
            # longer written (only the newest segment is), so no lock is needed.
            journal.drop_before(group[-1].segment)

    # -- checkpoints --------------------------------------------------------------------

    def _cadence(self, adding: int) -> chain.Sign | None:
        """Sign with this commit when enough entries or time have gone by unsigned."""
        if self._signer is None:
            return None
        due = self._unsigned + adding >= self._every or (
            time.monotonic() - self._signed_at >= self._seconds
        )
        return self._sign(RUN) if due else None

    def _sign(self, kind: str) -> chain.Sign | None:
        if self._signer is None:
            return None
        replayed = self.recovered if kind == OPEN else 0
        return chain.Sign(self._signer, kind, self.writer_id, dt.datetime.now(dt.UTC), replayed)

    def _idle_checkpoint(self) -> None:
        """Sign entries left unsigned when traffic stopped."""
        if self._unsigned and time.monotonic() - self._signed_at >= self._seconds:
            self._sign_head(RUN)

    def _sign_head(self, kind: str) -> None:
        sign = self._sign(kind)
        if sign is None:
            return
        try:
            self._signed(chain.sign_head(self._db, sign))
        except Exception:
            log.exception("audit: the %s checkpoint could not be written", kind)

    def _signed(self, made: Checkpoint) -> None:
        self._unsigned = 0
        self._signed_at = time.monotonic()
        self.stats.checkpoints += 1
        if self._mirror is not None:
            try:
                self._mirror.write([made])
            except Exception:
                self.stats.mirror_failures += 1
                log.exception("audit: checkpoint %d could not be mirrored", made.n)


def replay(db: Database, journal: Journal, signer: Signer) -> tuple[int, list[Refused]]:
    """Commit the journaled entries a dead process had not committed; delete its segments.

    The writer commits in journal order, so the committed entries form a prefix of the
    journal: the uncommitted tail starts after the last journaled entry found in the
    database (compared by canonical content, which ``request_id`` alone does not fix).
    Lines whose MAC does not check are refused (and kept aside), never chained.
    """
    lines, refused = read_entries(journal, signer)
    if not lines:
        journal.drop_before(1 << 62)
        return 0, refused
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
        chain.append(db, tail[i : i + 2000])
    journal.drop_before(1 << 62)
    if tail:
        log.warning("audit journal: replayed %d uncommitted entries", len(tail))
    return len(tail), refused


@dataclass(frozen=True, slots=True)
class Recovery:
    """What :func:`recover` did: entries replayed, lines refused (None: a live broker
    holds every journal and commits its entries itself); ``held``: journals a live
    process holds, left to it."""

    replayed: int | None
    refused: list[Refused] = field(default_factory=list)
    held: int = 0


def recover(db: Database, directory: Path, signer: Signer) -> Recovery:
    """Replay the journals dead brokers left (``exchange audit verify`` runs this first):
    every journal of the database whose first journal is ``directory`` that no live
    process holds."""
    found = slots(directory)
    if not found:
        return Recovery(0)
    chain.ensure_head(db)
    replayed, refused, held = 0, [], 0
    for path in found:
        try:
            journal = Journal(path)
        except BlockingIOError:
            held += 1
            continue
        try:
            n, bad = replay(db, journal, signer)
        finally:
            journal.close()
        replayed += n
        refused += bad
    return Recovery(None if held == len(found) else replayed, refused, held)
