"""One way for every cache in every process to stay fresh: changes announce themselves
after commit, caches subscribe, and a change is acknowledged only once it bites everywhere.

The rule it keeps (hardening issue, §2): once a call that changed something a cache holds
(a grant revoked or narrowed, a key rotated, a department deactivated, a topic retired) has
answered, no process answers a call that started afterwards from the old state.

API (one :class:`Freshness` per :class:`~exchange.db.engine.Database`, as ``db.freshness``):

* ``announce(session, topic)`` — a writer says *what* changed (its domain's topic, one of
  :data:`TOPICS`), inside its transaction. Nobody says what to invalidate.
* ``subscribe(topic, callback)`` — a cache says what it derives from. ``callback()`` runs
  after every committed change of ``topic`` in any process, and once for every topic when
  this process may have missed announcements (it re-syncs). Callbacks only flag state
  stale (cheap, thread-safe, no I/O): they run on the committing thread, the event loop or
  the listener thread. A cache that reloads must not store a load that began before the
  latest callback (keep a generation counter), or it re-caches the old state.
* ``check()`` — the start of every call (the app's outermost layer runs it): applies
  announcements from other processes that this one has not yet seen, or raises
  :class:`Resyncing` (503) when this process cannot know whether it is fresh.
* ``start()`` / ``close()`` — the listener thread (PostgreSQL); started on first need.

How a change reaches every process, by database:

* **In this process** (every backend): an ``after_commit`` hook on the session factory runs
  the subscribers. Never before commit: a reload between the invalidation and the commit
  would read the old rows and cache them again.
* **SQLite file** (one machine by nature): a memory-mapped file beside the database holds
  one counter per topic. After commit the writer increments its topics' counters (under
  ``flock``), then answers; ``check()`` compares the counters with the ones it last saw
  (~0.1 µs: one slice of the map) and runs the subscribers of those that moved. A call that
  starts after the writer answered therefore reads the new counters, and its caches reload
  from a database that already holds the commit.
* **PostgreSQL** (processes may be on several machines): ``announce`` issues
  ``pg_notify('exchange_fresh', …)`` in the writer's transaction, so the notification
  exists exactly when the commit does. Every process keeps one listening connection
  (``application_name`` ``exchange-fresh <peer>``) in a thread that applies notifications
  and confirms each with ``pg_notify('exchange_fresh_ack', …)``. The writer's
  ``after_commit`` waits until every live peer (the listening connections in
  ``pg_stat_activity``) has confirmed, so the answer leaves only once the change bites
  everywhere. A peer that cannot confirm is covered by its **lease**: it serves only
  while its last heartbeat (a round trip on the listening connection, which also delivers
  every notification committed before it) is younger than ``lease`` seconds. The writer
  waits at most ``lease`` seconds after its commit, after which a silent peer has stopped
  serving on its own (``check()`` raises :class:`Resyncing`); a peer that reconnects runs
  every subscriber before it serves again. A subscriber that may *wait* (``waits=True``:
  the distribution's revocation gate) runs in a settler thread beside the listener, which
  confirms its change once it ran: the listener's heartbeats go on meanwhile, so one
  waiting subscriber does not stop the whole process from serving. This transport is in
  :mod:`exchange.db.freshness_pg`.
* **SQLite in memory**: one process by nature; the after-commit hook is the whole story.

Known limit: with a SQLite file, a process killed between its commit and the counter's
increment leaves the change unannounced (and unacknowledged); other processes learn of it
at the next announcement of that topic or at their restart.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import queue
import struct
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from exchange.db.freshness_pg import (
    CHANNEL,
    Callback,
    PostgresAnnouncements,
    Resyncing,
    run_subscriber,
)

__all__ = ["TOPICS", "Freshness", "Resyncing", "announce"]

log = logging.getLogger(__name__)

#: What can change, named by the domain that owns it. A new topic goes at the end (its
#: position is its counter's slot in the SQLite file). ``narrowed`` is announced beside a
#: domain's own topic when the change takes access away (a grant revoked, narrowed or
#: suspended, a subscription suspended or deleted): what must be waited out, not only
#: reloaded (distribution's revocation gate). It is announced after the domain's topic,
#: so caches reload before the gate waits.
TOPICS = ("authz", "catalog", "departments", "keys", "clock", "narrowed", "libraries")

#: ``Session.info`` keys: the bus of the session's database, the topics it announced
INFO_BUS = "freshness"
INFO_TOPICS = "freshness_topics"
#: size of the SQLite counters file: 8-byte slots, room for new topics
FILE_SIZE = 4096
_SLOT = struct.Struct("<Q")


def announce(session: Session, topic: str) -> None:
    """Tell every cache of every process that ``topic`` changes in this transaction
    (delivered after commit; nothing on rollback)."""
    bus: Freshness | None = session.info.get(INFO_BUS)
    if bus is None:
        raise RuntimeError("session does not come from a Database's session factory")
    bus.announce(session, topic)


class Freshness(PostgresAnnouncements):
    """The change announcements of one process's database (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        *,
        lease: float = 5.0,
        heartbeat: float = 0.5,
    ) -> None:
        self._engine = engine
        self._lease = lease
        self._heartbeat = heartbeat
        self.peer = uuid.uuid4().hex[:16]
        # This listener's own channel: close() notifies it so the listener's wait for
        # notifications (up to a heartbeat) ends at once rather than being waited out.
        self._wake_channel = f"{CHANNEL}_stop_{self.peer}"
        self._subscribers: dict[str, list[Callback]] = {t: [] for t in TOPICS}
        #: the subscribers that may wait (see :meth:`subscribe`), run by the settler thread
        #: for other processes' changes
        self._waiters: dict[str, list[Callback]] = {t: [] for t in TOPICS}
        self._lock = threading.Lock()
        self._closed = False
        #: times each topic's subscribers ran (tests and metrics read it)
        self.applied = dict.fromkeys(TOPICS, 0)
        sessions.configure(info={**sessions.kw.get("info", {}), INFO_BUS: self})
        event.listen(sessions, "after_commit", self._after_commit)
        event.listen(sessions, "after_rollback", self._after_rollback)
        dialect = engine.dialect.name
        url = make_url(str(engine.url))
        self._kind = "memory"
        if dialect == "postgresql":
            self._kind = "postgresql"
        elif (
            dialect == "sqlite"
            and url.database
            and url.database != ":memory:"
            and not url.database.startswith("file:")
        ):
            self._kind = "file"
        # PostgreSQL: the listener thread and what it shares with writers.
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._valid_until = 0.0
        self._acks: dict[str, set[str]] = {}
        self._acked = threading.Condition(self._lock)
        # Changes whose waiting subscribers are still to run, with the confirmation to send
        # after them ("" at a reconnect: nothing to confirm); None stops the settler.
        self._settling: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._settler: threading.Thread | None = None
        # SQLite file: the counters and the copy this process last applied.
        self._mm: mmap.mmap | None = None
        self._fd = -1
        self._seen = b""
        if self._kind == "file":
            assert url.database is not None
            path = Path(url.database).expanduser()
            self._open_file(path.with_name(path.name + "-fresh"))
            self.check = self._check_file  # type: ignore[method-assign]
        elif self._kind == "postgresql":
            self.check = self._check_lease  # type: ignore[method-assign]

    @property
    def kind(self) -> str:
        """How announcements cross processes: ``file``, ``postgresql`` or ``memory``."""
        return self._kind

    # --- subscribing and announcing ----------------------------------------------------

    def subscribe(self, topic: str, callback: Callback, *, waits: bool = False) -> None:
        """Run ``callback()`` after every committed change of ``topic``, in any process.

        ``waits``: the callback may block until something else has finished (the
        distribution's revocation gate waits out pushes in flight, up to seconds). The
        writer's commit still returns only after it ran everywhere, but in another
        process it runs beside the listener, not in it: a listener that waited would miss
        its heartbeats, and its whole process would refuse to serve (``Resyncing``) while
        one subscriber waited. Callbacks that only mark a cache stale must not wait."""
        if topic not in self._subscribers:
            raise ValueError(f"unknown topic {topic!r}: one of {TOPICS}")
        self._subscribers[topic].append(callback)
        if waits:
            self._waiters[topic].append(callback)

    def unsubscribe(self, topic: str, callback: Callback) -> None:
        for table in (self._subscribers, self._waiters):
            subs = table.get(topic, [])
            if callback in subs:
                subs.remove(callback)

    def announce(self, session: Session, topic: str) -> None:
        """See :func:`announce`."""
        if topic not in self._subscribers:
            raise ValueError(f"unknown topic {topic!r}: one of {TOPICS}")
        topics: dict[str, str] = session.info.setdefault(INFO_TOPICS, {})
        if topic in topics:
            return
        change = uuid.uuid4().hex[:16]
        topics[topic] = change
        if self._kind == "postgresql":
            self.start()
            with self._lock:
                self._acks[change] = set()
            # In the transaction: the notification is delivered if and when it commits.
            session.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": CHANNEL, "payload": f"{topic} {change} {self.peer}"},
            )

    def _dispatch(self, topic: str, *, waiting: bool = True) -> None:
        """Run ``topic``'s subscribers; with ``waiting=False`` only those that never wait
        (the listener's share; the settler runs the rest)."""
        self.applied[topic] += 1
        waiters = self._waiters[topic]
        for callback in tuple(self._subscribers[topic]):
            if waiting or callback not in waiters:
                run_subscriber(topic, callback)

    def _dispatch_all(self) -> None:
        """After (re)connecting: anything may have changed while nobody listened."""
        for topic in TOPICS:
            self._dispatch(topic, waiting=False)
            if self._waiters[topic]:
                self._settle(topic, "")

    def _after_commit(self, session: Session) -> None:
        topics: dict[str, str] | None = session.info.pop(INFO_TOPICS, None)
        if not topics:
            return
        for topic in topics:
            self._dispatch(topic)
        if self._kind == "file":
            self._bump(topics)
        elif self._kind == "postgresql":
            self._await_acks(list(topics.values()))

    def _after_rollback(self, session: Session) -> None:
        topics: dict[str, str] | None = session.info.pop(INFO_TOPICS, None)
        if topics and self._kind == "postgresql":
            with self._lock:
                for change in topics.values():
                    self._acks.pop(change, None)

    # --- the hot path -------------------------------------------------------------------

    def check(self) -> None:
        """Apply what other processes announced; raise :class:`Resyncing` when this
        process cannot know (replaced per backend in ``__init__``)."""

    def _check_file(self) -> None:
        mm = self._mm
        if mm is not None and mm[: self._span] != self._seen:
            self._catch_up()

    def _check_lease(self) -> None:
        if time.monotonic() >= self._valid_until:
            self._lapsed()

    # --- SQLite file --------------------------------------------------------------------

    _span = _SLOT.size * len(TOPICS)

    def _open_file(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.fstat(fd).st_size < FILE_SIZE:
                os.ftruncate(fd, FILE_SIZE)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._fd = fd
        self._mm = mmap.mmap(fd, FILE_SIZE)
        self._seen = self._mm[: self._span]

    def _catch_up(self) -> None:
        assert self._mm is not None
        with self._lock:
            now = self._mm[: self._span]
            seen, self._seen = self._seen, now
        for i, topic in enumerate(TOPICS):
            at = i * _SLOT.size
            if now[at : at + _SLOT.size] != seen[at : at + _SLOT.size]:
                self._dispatch(topic)

    def _bump(self, topics: dict[str, str]) -> None:
        mm = self._mm
        if mm is None:
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            for topic in topics:
                at = TOPICS.index(topic) * _SLOT.size
                (value,) = _SLOT.unpack_from(mm, at)
                _SLOT.pack_into(mm, at, (value + 1) % 2**64)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Stop listening and unmap the counters."""
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            if self._thread.is_alive():
                self._wake()
            self._thread.join(timeout=self._heartbeat + 5)
        if self._settler is not None:
            self._settling.put(None)
            # Its subscribers wait a bounded time (the gate's timeout).
            self._settler.join(timeout=self._lease)
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
