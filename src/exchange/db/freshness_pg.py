"""How change announcements cross processes on PostgreSQL (see :mod:`exchange.db.freshness`):
``pg_notify`` in the writer's transaction, one listening connection per process whose
heartbeat keeps the process's lease, confirmations the writer's commit waits for, and a
settler thread for the subscribers that may wait. A part of
:class:`~exchange.db.freshness.Freshness`, which holds the state it shares with the other
transports (the subscribers, the lock)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

from exchange.errors import Unavailable

__all__ = [
    "ACK_CHANNEL",
    "APP_NAME",
    "CHANNEL",
    "Callback",
    "PostgresAnnouncements",
    "Resyncing",
    "run_subscriber",
]

# Logged under the mechanism's name, as before this part had its own module.
log = logging.getLogger("exchange.db.freshness")

CHANNEL = "exchange_fresh"
ACK_CHANNEL = "exchange_fresh_ack"
APP_NAME = "exchange-fresh"

Callback = Callable[[], None]


class Resyncing(Unavailable):
    """This process has lost touch with the change announcements; it serves again once it
    has re-synced (its caches reloaded)."""

    code = "exchange.resyncing"


def run_subscriber(topic: str, callback: Callback) -> None:
    try:
        callback()
    except Exception:
        # One broken subscriber must not keep the others stale.
        log.exception("freshness subscriber of %s failed", topic)


class PostgresAnnouncements:
    """The PostgreSQL listener of :class:`~exchange.db.freshness.Freshness`."""

    _engine: Engine
    _lease: float
    _heartbeat: float
    peer: str
    _wake_channel: str
    _kind: str
    _closed: bool
    _subscribers: dict[str, list[Callback]]
    _waiters: dict[str, list[Callback]]
    _lock: threading.Lock
    _thread: threading.Thread | None
    _stop: threading.Event
    _listening: threading.Event
    _valid_until: float
    _acks: dict[str, set[str]]
    _acked: threading.Condition
    _settling: queue.SimpleQueue[tuple[str, str] | None]
    _settler: threading.Thread | None

    def _dispatch(self, topic: str, *, waiting: bool = True) -> None:
        raise NotImplementedError  # Freshness's

    def _dispatch_all(self) -> None:
        raise NotImplementedError  # Freshness's

    def start(self) -> None:
        """Start listening (PostgreSQL; a no-op otherwise) and wait for the first
        heartbeat, so announcements made after this returns are confirmed."""
        if self._kind != "postgresql" or self._closed:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._listen, name="freshness-listener", daemon=True
                )
                self._thread.start()
        self._listening.wait(timeout=self._lease)

    def _lapsed(self) -> None:
        if self._thread is None and not self._closed:
            self.start()
            if time.monotonic() < self._valid_until:
                return
        raise Resyncing(
            "this exchange process lost touch with change announcements and is re-syncing; "
            "retry shortly",
            detail={"lease_seconds": self._lease},
        )

    def _connect(self) -> Any:
        import psycopg

        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        kwargs = {k: v for k, v in kwargs.items() if k not in {"cursor_factory"}}
        return psycopg.connect(
            *args, **kwargs, autocommit=True, application_name=f"{APP_NAME} {self.peer}"
        )

    def _listen(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            conn = None
            try:
                conn = self._connect()
                conn.execute(f"LISTEN {CHANNEL}")
                conn.execute(f"LISTEN {ACK_CHANNEL}")
                conn.execute(f"LISTEN {self._wake_channel}")
                # Anything may have been announced while this process was not listening.
                self._dispatch_all()
                backoff = 0.1
                while not self._stop.is_set():
                    started = time.monotonic()
                    # The round trip delivers every notification committed before it.
                    conn.execute("SELECT 1")
                    self._apply(conn, list(conn.notifies(timeout=0)))
                    self._valid_until = started + self._lease
                    self._listening.set()
                    if self._stop.is_set():
                        # close() may have woken us already: its note went in notifies() above.
                        break
                    self._apply(conn, list(conn.notifies(timeout=self._heartbeat, stop_after=1)))
            except Exception:
                if self._stop.is_set():
                    break
                log.warning("freshness listener lost its connection; reconnecting", exc_info=True)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        log.debug("closing the listener connection failed", exc_info=True)

    def _apply(self, conn: Any, notes: list[Any]) -> None:
        """Run the subscribers of announced topics, then confirm them to their writers."""
        confirm: list[str] = []
        for note in notes:
            parts = note.payload.split(" ")
            if note.channel == CHANNEL and len(parts) == 3:
                topic, change, origin = parts
                if origin != self.peer:
                    if topic in self._subscribers:
                        self._dispatch(topic, waiting=False)
                        if self._waiters[topic]:
                            # Confirmed by the settler once its waiting subscribers ran.
                            self._settle(topic, f"{change} {self.peer}")
                            continue
                    confirm.append(f"{change} {self.peer}")
            elif note.channel == ACK_CHANNEL and len(parts) == 2:
                change, peer = parts
                with self._lock:
                    if change in self._acks:
                        self._acks[change].add(peer)
                        self._acked.notify_all()
        for payload in confirm:
            conn.execute("SELECT pg_notify(%s, %s)", (ACK_CHANNEL, payload))

    def _live_peers(self) -> set[str]:
        with self._engine.connect() as conn:
            names = conn.scalars(
                text(
                    "SELECT application_name FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name LIKE :p"
                ),
                {"p": f"{APP_NAME} %"},
            )
            return {n.split(" ", 1)[1] for n in names}

    def _await_acks(self, changes: list[str]) -> None:
        """Return once every live peer confirmed ``changes``, or after ``lease`` seconds
        (by then a peer that did not confirm has stopped serving)."""
        deadline = time.monotonic() + self._lease
        try:
            peers = self._live_peers()
        except Exception:
            log.warning("could not list peers; waiting out the lease", exc_info=True)
            peers = {"?"}
        peers.discard(self.peer)
        with self._lock:
            try:
                while True:
                    missing = [c for c in changes if not peers <= self._acks.get(c, peers)]
                    if not missing:
                        return
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        log.warning(
                            "peers %s did not confirm changes %s within the lease",
                            sorted(peers),
                            missing,
                        )
                        return
                    self._acked.wait(remaining)
            finally:
                for change in changes:
                    self._acks.pop(change, None)

    def _settle(self, topic: str, confirmation: str) -> None:
        with self._lock:
            if self._settler is None:
                self._settler = threading.Thread(
                    target=self._run_settler, name="freshness-settler", daemon=True
                )
                self._settler.start()
        self._settling.put((topic, confirmation))

    def _run_settler(self) -> None:
        """Run the waiting subscribers of other processes' changes, in the order they
        came, and confirm each change after its subscribers ran."""
        while (item := self._settling.get()) is not None:
            topic, confirmation = item
            for callback in tuple(self._waiters[topic]):
                run_subscriber(topic, callback)
            if confirmation:
                self._notify(ACK_CHANNEL, confirmation)

    def _notify(self, channel: str, payload: str) -> bool:
        """``pg_notify`` on a pooled connection; ``False`` when the database is gone."""
        try:
            with self._engine.connect() as conn:
                conn.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": channel, "payload": payload},
                )
                conn.commit()
        except Exception:
            log.debug("could not notify %s", channel, exc_info=True)
            return False
        return True

    def _wake(self) -> None:
        """End the listener's wait for notifications (``_stop`` is set first). When the
        database is gone, the listener's wait ends by its heartbeat."""
        self._notify(self._wake_channel, "")
