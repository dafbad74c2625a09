"""The grant cache: every grant and every retired topic in memory, so a check is a dict
lookup and a call to the pure :func:`exchange.authz.policy.decide`.

Freshness: the cache subscribes to the ``authz`` and ``catalog`` announcements of
:mod:`exchange.db.freshness` (grants; the retired-topic set). After a change commits, in
this process or any other, the next check reloads; a check never polls the database.

Quotas: :meth:`GrantCache.consume` counts records in memory; a background thread adds the
counts to ``authz_usage`` every ``flush_interval`` seconds and takes back the totals
(:mod:`exchange.authz.usage`: one statement, on PostgreSQL through a connection the thread
holds), so quotas survive restarts and are shared, approximately, by every process.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.authz.calendar import BEIJING, day_end
from exchange.authz.models import Grant, GrantUsage
from exchange.authz.policy import Decision, GrantState, decide, decide_verification
from exchange.authz.usage import UsageCounts
from exchange.catalog.models import Topic
from exchange.catalog.schemas import TopicStatus
from exchange.clock import Clock
from exchange.db.engine import Database

__all__ = ["GrantCache", "Snapshot"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent load: consumer → topic → current grant, retired topics."""

    grants: dict[str, dict[str, GrantState]]
    retired: frozenset[str]
    count: int


_EMPTY = Snapshot(grants={}, retired=frozenset(), count=0)


def _day_start_ts(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(0), BEIJING).timestamp()


class GrantCache:
    """In-process grant state for the broker's check on every exchange."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        flush_interval: float = 1.0,
    ) -> None:
        self._db = db
        self._clock = clock
        self._flush_every = flush_interval
        self._snap = _EMPTY
        # Invalidation generations: a reload clears only what it saw requested, so an
        # invalidation arriving during a reload is not lost.
        self._wanted = 1
        self._loaded = 0
        self._lock = threading.Lock()
        self._usage_lock = threading.Lock()
        self._day = dt.date.min
        self._day_end = 0.0
        self._used: dict[int, int] = {}
        self._pending: dict[tuple[int, dt.date], int] = {}
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._counts = UsageCounts(db)
        # One flush at a time (the flusher's, or a caller's, or close's last): the
        # counts' PostgreSQL connection serves one thread at a time.
        self._flush_lock = threading.Lock()
        self.reloads = 0
        # Clock.now() builds three datetime objects, a third of a check's budget; the clock
        # keeps its offset as a float (refreshed from the database once a second), so read
        # that and add wall time.
        self._offset: Callable[[], float] = clock.offset_seconds
        for topic in ("authz", "catalog"):
            db.freshness.subscribe(topic, self.invalidate)

    # --- freshness ----------------------------------------------------------------------

    def invalidate(self) -> None:
        """Reload before the next check (the freshness announcements call this)."""
        self._wanted += 1

    def _refresh(self) -> None:
        with self._lock:
            wanted = self._wanted
            if self._loaded == wanted:
                return  # another thread reloaded while this one waited
            with self._db.sessions() as session:
                self._load(session)
            self._loaded = wanted

    def _load(self, session: Session) -> None:
        grants: dict[str, dict[str, GrantState]] = {}
        count = 0
        rows = session.execute(
            select(
                Grant.id,
                Grant.consumer,
                Grant.resource_code,
                Grant.status,
                Grant.items,
                Grant.valid_from,
                Grant.valid_until,
                Grant.daily_quota,
                Grant.purpose_scope,
            ).order_by(Grant.id)
        )
        for row in rows:
            # Ordered by id, so the newest grant of a pair (the current one) wins.
            grants.setdefault(row.consumer, {})[row.resource_code] = GrantState(
                id=row.id,
                status=row.status,
                items=frozenset(row.items),
                valid_from=_day_start_ts(row.valid_from),
                valid_until=day_end(row.valid_until).timestamp(),
                daily_quota=row.daily_quota,
                purpose=row.purpose_scope,
            )
            count += 1
        retired = frozenset(
            session.scalars(
                select(Topic.resource_code).where(Topic.status == TopicStatus.retired.value)
            )
        )
        today = self._clock.today()
        usage = {
            r.grant_id: r.records
            for r in session.execute(
                select(GrantUsage.grant_id, GrantUsage.records).where(GrantUsage.day == today)
            )
        }
        with self._usage_lock:
            self._set_day(today)
            self._used = self._merge_pending(usage)
        self._snap = Snapshot(grants=grants, retired=retired, count=count)
        self.reloads += 1

    # --- the check ----------------------------------------------------------------------

    def check(
        self,
        consumer: str,
        resource_code: str,
        items: Iterable[str] | None,
        *,
        records: int = 1,
    ) -> Decision:
        """May ``consumer`` read ``items`` (None: every granted item) of the topic now?

        Never touches the database, except to reload after a change was announced.
        """
        grant, now, used, retired = self._state(consumer, resource_code, records)
        return decide(
            grant,
            items,
            now=now,
            used=used,
            records=records,
            topic_retired=retired,
        )

    def _state(
        self, consumer: str, resource_code: str, records: int
    ) -> tuple[GrantState | None, float, int, bool]:
        """What a check decides on: the current grant, the platform time, the records used
        today under it, and whether the topic is retired (reloading after an announced
        change, rolling the quota day when it ended)."""
        if records < 0:
            raise ValueError("records must be >= 0")
        if self._loaded != self._wanted:
            self._refresh()
        snap = self._snap
        now = time.time() + self._offset()
        if now >= self._day_end:
            self._roll(now)
        by_topic = snap.grants.get(consumer)
        grant = by_topic.get(resource_code) if by_topic is not None else None
        used = 0
        if grant is not None and grant.daily_quota is not None:
            used = self._used.get(grant.id, 0)
        return grant, now, used, resource_code in snap.retired

    def check_verification(
        self,
        consumer: str,
        resource_code: str,
        items: Iterable[str],
        *,
        records: int = 1,
    ) -> Decision:
        """May ``consumer`` verify ``items`` of the topic now, under its grant (purpose
        ``data_verification``)? As :meth:`check` otherwise."""
        grant, now, used, retired = self._state(consumer, resource_code, records)
        return decide_verification(
            grant,
            items,
            now=now,
            used=used,
            records=records,
            topic_retired=retired,
        )

    def holds(self, consumer: str, resource_code: str) -> bool:
        """Whether ``consumer`` holds a grant on the topic at all (current or not): when it
        does not, :meth:`check` refuses whatever else holds, so a caller asking about many
        topics checks only those. Reloads after an announced change, as :meth:`check`."""
        if self._loaded != self._wanted:
            self._refresh()
        by_topic = self._snap.grants.get(consumer)
        return by_topic is not None and resource_code in by_topic

    @property
    def fresh(self) -> bool:
        """True when the next check will not read the database (no reload due); async
        callers use it to skip the thread pool."""
        return self._loaded == self._wanted

    @property
    def grant_count(self) -> int:
        """Grants held in memory (every row, current or not, as last loaded)."""
        return self._snap.count

    # --- quotas -------------------------------------------------------------------------

    def _set_day(self, today: dt.date) -> None:
        if today != self._day:
            self._day = today
            self._day_end = day_end(today).timestamp()
            self._used = {}

    def _roll(self, now: float) -> None:
        today = dt.datetime.fromtimestamp(now, BEIJING).date()
        with self._usage_lock:
            self._set_day(today)

    def _merge_pending(self, totals: dict[int, int]) -> dict[int, int]:
        merged = dict(totals)
        for (grant_id, day), records in self._pending.items():
            if day == self._day:
                merged[grant_id] = merged.get(grant_id, 0) + records
        return merged

    def used_today(self, grant_id: int) -> int:
        """Records counted against the grant today, as this process knows them."""
        return self._used.get(grant_id, 0)

    def consume(self, grant_id: int, records: int) -> None:
        """Count exchanged records against today's quota of the grant."""
        if records <= 0:
            return
        now = time.time() + self._offset()
        if now >= self._day_end:
            self._roll(now)
        with self._usage_lock:
            self._used[grant_id] = self._used.get(grant_id, 0) + records
            key = (grant_id, self._day)
            self._pending[key] = self._pending.get(key, 0) + records
        if self._flusher is None:
            self._start_flusher()

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is not None or self._stop.is_set():
                return
            self._flusher = threading.Thread(
                target=self._flush_loop, name="authz-usage-flush", daemon=True
            )
            self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._flush_every):
            try:
                with self._flush_lock:
                    if self._stop.is_set():
                        return  # close took the last flush (and closed the connection)
                    self._flush()
            except Exception:
                # A database hiccup must not kill the thread; the counts stay pending.
                log.warning("authz usage flush failed; retrying", exc_info=True)

    def flush(self) -> None:
        """Add pending counts to ``authz_usage`` and take back the shared totals."""
        with self._flush_lock:
            self._flush()

    def _flush(self) -> None:
        with self._usage_lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            # Every key written, with the shared total after the write (one statement).
            stored = self._counts.add(pending)
        except BaseException:
            with self._usage_lock:
                for key, records in pending.items():
                    self._pending[key] = self._pending.get(key, 0) + records
            raise
        with self._usage_lock:
            # The shared total (every process's flushed counts) plus what this process
            # counted since the swap above.
            today = self._day
            totals = {g: r for (g, d), r in stored.items() if d == today}
            merged = self._merge_pending(totals)
            for grant_id in totals:
                self._used[grant_id] = merged.get(grant_id, 0)

    def close(self) -> None:
        """Stop the flusher, write what is pending, stop following announcements."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        with self._flush_lock:
            try:
                self._flush()
            finally:
                # Under the lock, so a flusher that outlived its join is not mid-call,
                # and it returns without flushing once it has the lock.
                self._counts.close()
        for topic in ("authz", "catalog"):
            self._db.freshness.unsubscribe(topic, self.invalidate)
