"""The living city: life and business events on the platform clock, and each department's log.

:class:`ChangeEngine` schedules every kind of event (:data:`lifeevents.KINDS`) day by day:
the number of events of a kind on a (Beijing) day is a Poisson draw with the kind's daily
rate, their instants are uniform over the day, and every draw comes from a PRNG seeded by
the city's seed, the kind and the day. So two departments processes of one seed started at
the same instant make the same changes, in the same order, to the same people. The engine
applies the events whose instant has passed on the platform clock, at most ``budget`` per
call, so a clock moved a year ahead is caught up over several ticks instead of in one
blocking pass; the backlog is visible in :meth:`ChangeEngine.status`.

Each applied event writes its records into the :class:`~.overlay.Overlay` (what lookups and
exports answer from then on) and appends one :class:`ChangeEvent` per changed record to the
log of every department serving a topic of that record's generator, the record cut to the
topic's items. A department's log is what it publishes to the exchange
(:mod:`.publisher`) and what its change feed serves.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from exchange.days import day_start
from exchange.departments.city import City, Rng, mix
from exchange.departments.definitions import DepartmentDefinition
from exchange.departments.lifeevents import KINDS, Change, World, beijing_day
from exchange.departments.overlay import Overlay, Record

__all__ = [
    "ChangeEngine",
    "ChangeEvent",
    "ChangeLog",
    "Now",
    "default_rates",
    "poisson",
    "wall_now",
]

_DAY = dt.timedelta(days=1)
_YEAR_DAYS = 365.2425
_T_SCHEDULE = 0xC4A1
_T_MANUAL = 0xC4A2
_KIND_TAGS = {name: i + 1 for i, name in enumerate(KINDS)}


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One record's change as its department publishes it."""

    seq: int
    department: str
    topic: str
    key: str
    kind: str
    changed_at: dt.datetime
    record: Record | None

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "department": self.department,
            "topic": self.topic,
            "key": self.key,
            "kind": self.kind,
            "changed_at": self.changed_at.isoformat(),
            "record": self.record,
        }


class ChangeLog:
    """Each department's events, numbered from 1, the latest ``retain`` of them kept.

    A reader that acknowledges (the publisher) pins what it has not acknowledged yet: those
    events are never dropped, and :meth:`backlog` tells the engine to wait when a
    department's unacknowledged events reach ``retain``.
    """

    def __init__(self, departments: Iterable[str], retain: int) -> None:
        self.retain = retain
        self._lock = threading.Lock()
        self._events: dict[str, deque[ChangeEvent]] = {d: deque() for d in departments}
        self._last: dict[str, int] = dict.fromkeys(self._events, 0)
        self._acked: dict[str, int] | None = None

    @property
    def departments(self) -> tuple[str, ...]:
        return tuple(self._events)

    def append(
        self,
        department: str,
        topic: str,
        key: str,
        kind: str,
        changed_at: dt.datetime,
        record: Record | None,
    ) -> ChangeEvent:
        with self._lock:
            seq = self._last[department] + 1
            self._last[department] = seq
            event = ChangeEvent(seq, department, topic, key, kind, changed_at, record)
            events = self._events[department]
            events.append(event)
            floor = seq - self.retain
            if self._acked is not None:
                floor = min(floor, self._acked[department])
            while events and events[0].seq <= floor:
                events.popleft()
            return event

    def last(self, department: str) -> int:
        """The newest event's number (0: none yet)."""
        return self._last[department]

    def oldest(self, department: str) -> int:
        """The oldest event still held (``last + 1`` when none is)."""
        with self._lock:
            events = self._events[department]
            return events[0].seq if events else self._last[department] + 1

    def after(self, department: str, seq: int, limit: int) -> list[ChangeEvent]:
        """Up to ``limit`` events after number ``seq``, oldest first."""
        with self._lock:
            events = self._events[department]
            if not events:
                return []
            start = max(0, seq + 1 - events[0].seq)
            return [events[i] for i in range(start, min(len(events), start + limit))]

    def pin(self) -> None:
        """Keep every event until :meth:`ack` says it was handed on (the publisher)."""
        with self._lock:
            if self._acked is None:
                self._acked = {d: self._last[d] for d in self._events}

    def ack(self, department: str, seq: int) -> None:
        with self._lock:
            if self._acked is not None:
                self._acked[department] = max(self._acked[department], seq)

    def acked(self, department: str) -> int | None:
        return None if self._acked is None else self._acked[department]

    def backlog(self, department: str) -> int:
        """Events not acknowledged yet (0 when nobody pinned the log)."""
        if self._acked is None:
            return 0
        return self._last[department] - self._acked[department]


def default_rates(definitions: dict[str, DepartmentDefinition]) -> dict[str, float]:
    """Per 1,000 of the base a year, per kind: the services/ definition's or the default.

    A kind runs only where its owner is one of the departments served.
    """
    rates: dict[str, float] = {}
    for name, kind in KINDS.items():
        owner = definitions.get(kind.owner)
        if owner is None:
            continue
        rates[name] = owner.changes.get(name, kind.rate)
    return rates


def _uniform(r: Rng) -> float:
    return (r.next() >> 11) * (1.0 / 9007199254740992.0)


def poisson(lam: float, r: Rng) -> int:
    """A Poisson draw: Knuth's product of uniforms for small rates, a normal beyond 30."""
    if lam <= 0:
        return 0
    if lam < 30:
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= _uniform(r)
            if p <= limit:
                return k
            k += 1
    u1, u2 = max(_uniform(r), 1e-300), _uniform(r)
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    return max(0, round(lam + math.sqrt(lam) * z))


@dataclass(slots=True)
class _Topic:
    department: str
    slug: str
    fields: tuple[str, ...]


class ChangeEngine:
    """Events on the platform clock, written into the overlay and the departments' logs."""

    def __init__(
        self,
        city: City,
        definitions: dict[str, DepartmentDefinition],
        *,
        start: dt.datetime,
        chunk: int,
        scale: float = 1.0,
        max_keys: int = 200_000,
        retain: int = 100_000,
    ) -> None:
        self.city = city
        self.overlay = Overlay(city, chunk=chunk, max_keys=max_keys)
        self.world = World(city, self.overlay)
        self.log = ChangeLog(definitions, retain)
        self.scale = scale
        self.rates = default_rates(definitions)
        #: events a year, per kind (rate x base x scale)
        self.yearly = {
            name: rate
            / 1000
            * (city.population if KINDS[name].base == "people" else city.enterprises)
            * scale
            for name, rate in self.rates.items()
        }
        self._topics: dict[str, list[_Topic]] = {}
        for code, dept in definitions.items():
            for t in dept.topics:
                self._topics.setdefault(t.generator, []).append(_Topic(code, t.slug, t.fields))
        self._lock = threading.Lock()
        self._cursor = start
        self._next_day = beijing_day(start)
        self._queue: deque[tuple[dt.datetime, str, int, int]] = deque()
        self._manual = 0
        self.applied: Counter[str] = Counter()
        #: events that found no subject (e.g. no couple left to marry in a tiny city)
        self.idle: Counter[str] = Counter()
        self.paused: str | None = None

    # -- schedule -------------------------------------------------------------------------

    def _schedule(self, day: dt.date) -> list[tuple[dt.datetime, str, int, int]]:
        start = day_start(day)
        out: list[tuple[dt.datetime, str, int, int]] = []
        for name, yearly in self.yearly.items():
            tag = _KIND_TAGS[name]
            r = Rng(mix(self.city.seed, _T_SCHEDULE, tag, day.toordinal()))
            for j in range(poisson(yearly / _YEAR_DAYS, r)):
                offset = dt.timedelta(microseconds=r.below(86_400_000_000))
                out.append((start + offset, name, day.toordinal(), j))
        out.sort(key=lambda e: (e[0], _KIND_TAGS[e[1]], e[3]))
        return out

    def _fill(self, now: dt.datetime) -> None:
        """Queue the events of the following days that have begun by ``now``."""
        while not self._queue and day_start(self._next_day) <= now:
            day = self._next_day
            self._next_day = day + _DAY
            self._queue.extend(e for e in self._schedule(day) if e[0] > self._cursor)

    # -- applying -------------------------------------------------------------------------

    def advance(self, now: dt.datetime, budget: int = 1_000) -> int:
        """Apply the events due by ``now``, at most ``budget``; the number applied."""
        done = 0
        with self._lock:
            while done < budget:
                self.paused = self._blocked()
                if self.paused is not None:
                    break
                self._fill(now)
                if not self._queue or self._queue[0][0] > now:
                    break
                when, name, day, j = self._queue.popleft()
                self._cursor = when
                r = Rng(mix(self.city.seed, _KIND_TAGS[name], day, j + 1))
                self._apply(name, KINDS[name].make(self.world, r, when), when)
                done += 1
        return done

    def trigger(self, name: str, now: dt.datetime) -> list[ChangeEvent]:
        """Make one event of kind ``name`` happen now (a demo's birth); its published events."""
        if name not in KINDS:
            raise KeyError(name)
        with self._lock:
            self._manual += 1
            r = Rng(mix(self.city.seed, _T_MANUAL, _KIND_TAGS[name], self._manual))
            return self._apply(name, KINDS[name].make(self.world, r, now), now)

    def _blocked(self) -> str | None:
        if self.overlay.full:
            return f"the overlay holds {self.overlay.max_keys} changed keys (city_change_max_keys)"
        for d in self.log.departments:
            if self.log.backlog(d) >= self.log.retain:
                return f"{d} has {self.log.backlog(d)} events not yet published"
        return None

    def _apply(self, name: str, changes: list[Change], when: dt.datetime) -> list[ChangeEvent]:
        if not changes:
            self.idle[name] += 1
            return []
        self.applied[name] += 1
        events: list[ChangeEvent] = []
        for c in changes:
            self.overlay.put(c.generator, c.row, c.key, c.record)
            for t in self._topics.get(c.generator, ()):
                record = None if c.record is None else {f: c.record[f] for f in t.fields}
                events.append(self.log.append(t.department, t.slug, c.key, c.kind, when, record))
        return events

    # -- reading --------------------------------------------------------------------------

    def backlog(self, now: dt.datetime) -> int:
        """Events due by ``now`` not applied yet (the queued day; later days estimated)."""
        with self._lock:
            due = sum(1 for e in self._queue if e[0] <= now)
            days = (now - day_start(self._next_day)) / _DAY
            if days > 0:
                due += round(days * sum(self.yearly.values()) / _YEAR_DAYS)
            return due

    def status(self, now: dt.datetime) -> dict[str, Any]:
        """What ``GET /departments/_changes`` shows."""
        return {
            "scale": self.scale,
            "clock": now.isoformat(),
            "applied_until": self._cursor.isoformat(),
            "backlog": self.backlog(now),
            "paused": self.paused,
            "overlay_keys": self.overlay.keys,
            "overlay_max_keys": self.overlay.max_keys,
            "people_added": self.overlay.people_added,
            "enterprises_added": self.overlay.enterprises_added,
            "kinds": {
                name: {
                    "owner": KINDS[name].owner,
                    "base": KINDS[name].base,
                    "rate_per_1000_per_year": rate,
                    "expected_per_day": round(self.yearly[name] / _YEAR_DAYS, 3),
                    "applied": self.applied[name],
                    "without_subject": self.idle[name],
                }
                for name, rate in self.rates.items()
            },
            "departments": {
                d: {
                    "last_seq": self.log.last(d),
                    "oldest_seq": self.log.oldest(d),
                    "published_seq": self.log.acked(d),
                }
                for d in self.log.departments
            },
        }


#: Signature of the platform clock's ``now`` the departments read.
Now = Callable[[], dt.datetime]


def wall_now() -> dt.datetime:
    """Wall-clock UTC (the departments alone, with no exchange to follow). Not
    ``exchange.db.base.utcnow``: the departments process does not load SQLAlchemy."""
    return dt.datetime.now(dt.UTC)
