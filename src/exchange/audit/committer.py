"""The audit writer's thread: groups of entries appended to the chain and committed
(retried, or tried one by one when the database refuses a group), and the checkpoints signed
on the way. :class:`~exchange.audit.writer.AuditWriter` adds the callers' side."""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from exchange.audit import chain
from exchange.audit.checkpoint import OPEN, RUN, Checkpoint, Mirror
from exchange.audit.entry import Entry
from exchange.audit.handover import STOP, AuditUnavailable, Flush, Pending, hand_over
from exchange.audit.journal import Journal, Refused
from exchange.audit.keys import Signer
from exchange.audit.pgchain import PgChain
from exchange.db.engine import Database

log = logging.getLogger(__name__)

#: What waits for the thread's commit in journal mode: an answered call's canonical form
#: (its journal line's body; nobody waits for its seq), or a :class:`Pending` entry whose
#: caller waits for its seq (:meth:`AuditWriter.submit`).
Journaled = bytes | Pending

#: How long the journaled writer lets entries gather before a commit: nobody waits for it
#: (the journal is the durable point; a reader's flush commits at once), and fewer, larger
#: commits leave the event loop more of the GIL. A group pays a fixed cost (the daily
#: volume rows of every consumer and topic in it, the chain head, the commit and its WAL
#: pages): with entries of 3 consumers × 14 topics at 4,000 a second, 0.05 s cost the
#: writer 20-24 µs per entry, 0.2 s 15-17 µs, 0.5 s 13-14 µs. 0.2 s holds ≤ 1,000 entries
#: (~1 MB) at the broker's spread rate, well inside MAX_BACKLOG.
JOURNAL_LINGER = 0.2
#: How long a commit-wait group (no journal: PostgreSQL) lets entries gather, when no
#: ``linger`` is given and the previous group held more than one entry. Each call waits for
#: its group's commit, so a call alone (the previous group was one entry) is committed at
#: once. Under load a group pays fixed costs: the round trip, the statement and the commit,
#: and the GIL handed from the event loop to this thread and back. Measured
#: (bench/broker.py --database both, single, 64 connections): groups of 23 → 39 entries,
#: the PostgreSQL exchange's CPU per lookup 95 → 76 µs, 9,069 → 10,504 req/s (74 → 83 %
#: of SQLite's); gathering 2 ms after every group, in a scratch run, made groups of 62 but
#: 8,233 req/s, every call waiting it.
BUSY_LINGER = 0.0005


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


class Committer:
    """The writer's state and its thread's work: the commit loops (journaled and
    commit-wait), group commits and their checkpoints."""

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
        #: commit-wait mode's gathering while calls come together (see BUSY_LINGER)
        self._busy_linger = BUSY_LINGER if linger is None and journal is None else 0.0
        if linger is None:
            linger = JOURNAL_LINGER if journal is not None else 0.0
        self._linger = linger
        #: entries in the last commit-wait group
        self._last_group = 0
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
        self._queue: queue.SimpleQueue[Pending | Flush | object] = queue.SimpleQueue()
        # Journal mode: entries wait in a list the thread takes every ``linger`` seconds.
        # No per-entry hand-off: waking the thread for each entry cost the event loop a
        # GIL round trip per call. An entry nobody waits for waits there as its canonical
        # form (bytes), not as an object: see AuditWriter._journal_write.
        self._jlock = threading.Lock()
        self._buffer: list[Journaled] = []
        #: the journal segment the buffer's last entry was written to
        self._written_segment = 0
        self._flushes: list[Flush] = []
        self._wake = threading.Event()
        self._stopping = False
        #: a journaled group whose commit failed, tried again first
        self._retry: list[Journaled] = []
        #: journaled entries not yet committed (bounded by MAX_BACKLOG through record)
        self._backlog = 0
        # Checkpoint cadence: entries committed since the last one, and when it was made.
        self._unsigned = 0
        self._signed_at = 0.0

    # -- the thread ---------------------------------------------------------------------

    def _run_journaled(self) -> None:
        while True:
            self._wake.wait(self._linger)
            self._wake.clear()
            stopping = self._stopping
            with self._jlock:
                group, self._buffer = self._retry + self._buffer, []
                flushes, self._flushes = self._flushes, []
                upto = self._written_segment
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
            if group and not failed:
                self._drop_committed(upto)
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

    def _drop_committed(self, upto: int) -> None:
        """Delete the journal segments before ``upto``, the segment of the last entry just
        committed: every entry written before it is committed (the writer commits in
        journal order), and only the newest segment is still written. Outside the
        commit's ``try``: a segment that cannot be deleted now is deleted by a later
        commit or the next start's recovery, never committed again."""
        journal = self._journal
        if journal is None:
            return
        try:
            journal.drop_before(upto)
        except OSError as exc:
            log.warning("audit journal: committed segments not deleted yet: %s", exc)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            flushes: list[Flush] = []
            try:
                first = self._queue.get(timeout=self._seconds)
            except queue.Empty:
                self._guarded(self._idle_checkpoint)
                continue
            if first is STOP:
                break
            if isinstance(first, Flush):
                first.done.set()
                continue
            group: list[Pending] = [first]  # type: ignore[list-item]
            linger = self.gathering()
            deadline = time.monotonic() + linger
            while len(group) < self._max_group:
                try:
                    if linger > 0:
                        wait = deadline - time.monotonic()
                        item = (
                            self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                        )
                    else:
                        item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is STOP:
                    stopping = True
                    break
                if isinstance(item, Flush):
                    flushes.append(item)
                    break  # commit now: someone is reading
                group.append(item)  # type: ignore[arg-type]
            self._last_group = len(group)
            try:
                self._commit(group)
            except Exception as exc:  # never let the thread die
                log.exception("audit writer: unexpected failure")
                failure = AuditUnavailable(f"audit failure: {type(exc).__name__}")
                hand_over((pending, failure) for pending in group)
            for marker in flushes:
                marker.done.set()

    def gathering(self) -> float:
        """How long the next commit-wait group gathers entries after its first: the given
        ``linger``, or :data:`BUSY_LINGER` while calls come together (the last group held
        more than one entry) when none was given."""
        return self._busy_linger if self._last_group > 1 else self._linger

    def _guarded(self, step: object) -> None:
        try:
            step()  # type: ignore[operator]
        except Exception:
            log.exception("audit writer: checkpoint failed")

    def _commit(self, group: Sequence[Journaled]) -> list[Journaled]:
        """Commit ``group``; returns what is left to retry (journal mode, database down).

        A group the database refuses is tried entry by entry, so one bad entry fails its
        own call (commit-wait) or is stored escaped (journaled, already acknowledged),
        never its neighbours'.
        """
        if not group:
            return []
        started = time.perf_counter()
        try:
            seqs, made = self._append(
                [p.entry if isinstance(p, Pending) else p for p in group],
                self._cadence(len(group)),
            )
        except Exception as exc:
            log.warning(
                "audit group of %d entries failed to commit (%s); trying one by one",
                len(group),
                type(exc).__name__,
            )
            return self._commit_each(group)
        self._committed(group, seqs, made, time.perf_counter() - started)
        return []

    def _commit_each(self, group: Sequence[Journaled]) -> list[Journaled]:
        for i, item in enumerate(group):
            started = time.perf_counter()
            entry = item.entry if isinstance(item, Pending) else Entry.from_canonical(item)
            try:
                seqs, made = self._append([entry], self._cadence(1))
            except Exception as exc:
                storable = entry.storable()
                try:
                    if storable is entry:
                        raise exc
                    seqs, made = self._append([storable], self._cadence(1))
                    log.error(
                        "audit entry %s stored with its values escaped: %s",
                        entry.request_id,
                        type(exc).__name__,
                    )
                except Exception as again:
                    if self._journal is not None:
                        # Acknowledged already: keep it (and all after it) for a retry.
                        log.error("audit commit failed (%s); will retry", type(again).__name__)
                        return list(group[i:])
                    self.stats.refused += 1
                    log.error(
                        "audit entry %s refused by the database: %s",
                        entry.request_id,
                        type(again).__name__,
                    )
                    if isinstance(item, Pending):
                        refusal = AuditUnavailable(
                            f"the audit log could not be written: {type(again).__name__}"
                        )
                        hand_over([(item, refusal)])
                    continue
            self._committed([item], seqs, made, time.perf_counter() - started)
        return []

    def _append(
        self, entries: list[chain.Appendable], sign: chain.Sign | None
    ) -> tuple[list[int], Checkpoint | None]:
        if self._pg is not None:
            return self._pg.append(chain.entries_of(entries), sign)
        return chain.append(self._db, entries, sign)

    def _committed(
        self, group: Sequence[Journaled], seqs: list[int], made: Checkpoint | None, elapsed: float
    ) -> None:
        self.stats.groups += 1
        self.stats.entries += len(group)
        self.stats.largest_group = max(self.stats.largest_group, len(group))
        self.stats.commit_seconds += elapsed
        self._unsigned += len(group)
        if made is not None:
            self._signed(made)
        # Those waiting for their seq (commit-wait calls, submits); the journaled calls'
        # bytes are answered already.
        waiting = [(p, seq) for p, seq in zip(group, seqs, strict=True) if isinstance(p, Pending)]
        if waiting:
            hand_over(waiting)
        journaled = sum(1 for p in group if not isinstance(p, Pending) or p.segment)
        if journaled:
            with self._jlock:
                self._backlog -= journaled

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
