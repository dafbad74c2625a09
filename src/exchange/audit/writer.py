"""The group-committing audit writer (its thread: :mod:`exchange.audit.committer`; recovery
of what a killed one journaled: :mod:`exchange.audit.recovery`).

Durability: the broker answers only once a call's entry survives the broker process being
killed. Two modes give that, with the same guarantee as SQLite in WAL mode with
``synchronous=NORMAL`` (a process kill loses nothing; an OS crash may lose the last
moments):

* **journal** (the default for a SQLite file; :func:`~exchange.audit.journal.journal_for`):
  :meth:`AuditWriter.record` copies the entry's authenticated line into a local
  append-only journal (a shared memory map: in the page cache at once, no system call) in
  the caller's thread and returns, handing the writer the line's body (the entry's
  canonical form) rather than the entry. The writer thread then chains and commits
  journaled entries in groups, each stored as its canonical form says; a journal segment
  is deleted once every entry in it is committed, and :func:`recover` replays the
  uncommitted tail after a crash (:meth:`AuditWriter.start` and ``exchange audit
  verify`` run it). One copy is ~1 µs where a commit round trip through the writer thread
  cost milliseconds, which the broker's one-connection latency budget cannot pay.
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
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable

from exchange.audit import chain
from exchange.audit.checkpoint import CLOSE, OPEN
from exchange.audit.committer import Committer
from exchange.audit.entry import Entry
from exchange.audit.handover import STOP, AuditUnavailable, Flush, Pending, hand_over
from exchange.audit.journal import claim, line_of
from exchange.audit.recovery import Recovery, recover, replay

log = logging.getLogger(__name__)

#: Journaled entries not yet committed that a writer keeps in memory (a lookup's canonical
#: form: ~0.4 KB; an entry someone waits for, with its future: ~1 KB): when
#: the writer falls behind (a busy machine, a slow or locked database), its backlog grew
#: with every call (98 → 658 MB in 5 min under steady lookups). Past the bound, callers
#: wait for the writer (their answers slow down) instead of the heap growing.
MAX_BACKLOG = 20_000
#: How long a caller waits for the backlog to fall below the bound before its call fails
#: as the audit being unavailable (nothing journaled for it).
BACKLOG_WAIT = 10.0


__all__ = [
    "BACKLOG_WAIT",
    "MAX_BACKLOG",
    "AuditUnavailable",
    "AuditWriter",
    "Recovery",
    "recover",
    "replay",
]


class AuditWriter(Committer):
    """One thread that appends entries to the chain and commits them in groups.

    With ``journal`` (a directory), :meth:`record` returns once the entry is in the journal
    and the thread commits behind it, every ``linger`` seconds (or sooner when a group
    fills or a reader flushes); without, :meth:`record` waits for the commit, and the
    thread commits as soon as the previous commit is done, which already groups entries
    under load, gathering for up to :data:`~exchange.audit.committer.BUSY_LINGER` more
    while calls come together (unless ``linger`` is given). ``signer`` signs checkpoints
    and journal lines (a journal needs one); ``mirror`` receives a copy of every
    checkpoint.
    """

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
            self._queue.put(STOP)
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
            self._queue.put(STOP)
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
            if isinstance(item, Pending):
                hand_over([(item, error)])
            elif isinstance(item, Flush):
                item.done.set()
        with self._jlock:
            for marker in self._flushes:
                marker.done.set()
            self._flushes = []

    def submit(self, entry: Entry) -> concurrent.futures.Future[int]:
        """Queue an entry (journaling it first in journal mode); the future resolves to its
        ``seq`` once committed. Raises :class:`AuditUnavailable` if the journal write fails."""
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        if not self.running:
            future.set_exception(AuditUnavailable("the audit writer is not running"))
        elif self._journal is None:
            self._queue.put(Pending(entry, future))
        else:
            self._journal_write(entry, future)
        return future

    async def record(self, entry: Entry) -> None:
        """Make the entry durable (the broker's answer waits for this): the journal write
        (a ~1 µs copy into a shared memory map, in the caller's thread), or the commit when
        there is no journal."""
        if not self.running:
            raise AuditUnavailable("the audit writer is not running")
        if self._journal is None:
            waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._queue.put(Pending(entry, waiter=waiter))
            await waiter
            return
        if self._backlog >= MAX_BACKLOG:
            await self._wait_for_room()
        self._journal_write(entry)

    def record_now(self, entry: Entry) -> bool:
        """:meth:`record` without awaiting, when it needs no wait: True once the entry is
        journaled (durable), False when the caller is to ``await record(entry)`` (no
        journal, a full backlog, a stopped writer). Spares the broker's answer a coroutine."""
        if self._journal is None or self._backlog >= MAX_BACKLOG or not self.running:
            return False
        self._journal_write(entry)
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

    def _journal_write(
        self, entry: Entry, future: concurrent.futures.Future[int] | None = None
    ) -> None:
        """Journal ``entry`` and hand it to the thread: as its canonical form (bytes) when
        nobody waits for its commit (every answered call), so that nothing of the call
        outlives its answer but those bytes, which the collector does not track; with its
        future when someone does (:meth:`submit`)."""
        signer = self._signer
        assert signer is not None
        try:
            line = line_of(signer, entry)
        except (TypeError, ValueError) as exc:  # a value JSON cannot hold: a bug upstream
            raise AuditUnavailable(f"the audit entry cannot be encoded: {exc}") from exc
        body = entry.canonical()  # made for the line: the same bytes, not made again
        # One lock around the write and the hand-over keeps the buffer in journal order,
        # which segment clean-up and recovery's committed-prefix rule rely on.
        with self._jlock:
            journal = self._journal
            if journal is None:
                raise AuditUnavailable("the audit writer stopped")
            try:
                journal.write(line)
            except (OSError, ValueError) as exc:
                raise AuditUnavailable(
                    f"the audit journal could not be written: {type(exc).__name__}"
                ) from exc
            segment = self._written_segment = journal.segment
            buffer = self._buffer
            buffer.append(body if future is None else Pending(entry, future, segment))
            self._backlog += 1
            full = len(buffer) >= self._max_group
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
        marker = Flush()
        if self._journal is None:
            self._queue.put(marker)
        else:
            with self._jlock:
                self._flushes.append(marker)
            self._wake.set()
        return marker.done.wait(timeout)
