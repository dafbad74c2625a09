"""The platform clock: real time by default, advanceable by the operator for demos and tests.

The offset lives in the database so every process sharing it (several brokers on one
PostgreSQL) sees the same simulated time; each process caches it because the grant check
calls ``now()`` on the hot path, and reads it again after a move was announced
(``clock``, :mod:`exchange.db.freshness`) by any process.
"""

from __future__ import annotations

import datetime as dt
import re
import threading

from sqlalchemy import Float, Integer
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, utcnow
from exchange.db.engine import Database
from exchange.db.freshness import announce

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: How far simulated time may run ahead of wall time: a century covers any demo or test
#: (validity periods, review deadlines, yearly quotas) and stays far from datetime's
#: year-9999 limit, past which every call that reads the clock would fail.
MAX_OFFSET = dt.timedelta(days=36_525)


class ClockState(Base):
    __tablename__ = "platform_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset_seconds: Mapped[float] = mapped_column(Float, default=0.0)


def parse_duration(text: str) -> dt.timedelta:
    """``10d``, ``36h``, ``90m``, ``2w``, ``30s`` → timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 10d, 36h, 90m, 2w)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_OFFSET.total_seconds():
        raise ValueError(f"{text!r} is more than the clock may run ahead ({MAX_OFFSET.days} days)")
    return dt.timedelta(seconds=seconds)


class Clock:
    """Simulated UTC time = wall time + an offset shared through the database."""

    def __init__(self, db: Database | None = None) -> None:
        self._db = db
        self._offset = 0.0
        # Generations: a load clears only the staleness it saw (see exchange.db.freshness).
        self._wanted = 1
        self._loaded = 0
        self._lock = threading.Lock()
        if db is not None:
            db.freshness.subscribe("clock", self.refresh)

    def _load(self) -> float:
        if self._db is None or self._loaded == self._wanted:
            return self._offset
        with self._lock, self._db.sessions() as session:
            wanted = self._wanted
            state = session.get(ClockState, 1)
            self._offset = state.offset_seconds if state else 0.0
            self._loaded = wanted
        return self._offset

    def offset_seconds(self) -> float:
        """The offset as a float: cheap enough for the grant check's hot path."""
        return self._load()

    @property
    def offset(self) -> dt.timedelta:
        return dt.timedelta(seconds=self._load())

    def now(self) -> dt.datetime:
        offset = self._load()
        # Every audited call asks: no timedelta to build while the clock is not moved.
        return utcnow() + dt.timedelta(seconds=offset) if offset else utcnow()

    def today(self) -> dt.date:
        # Quotas and "today's volume" follow Beijing time, the platform's own day.
        return (self.now() + dt.timedelta(hours=8)).date()

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        """Move simulated time forward (never backward: expiries already applied stay).

        ValueError, and nothing stored, if the offset would pass :data:`MAX_OFFSET`.
        """
        if delta.total_seconds() < 0:
            raise ValueError("the clock only moves forward")
        if self._db is None:
            self._offset = _checked(self._offset + delta.total_seconds())
            return self.now()
        with self._lock, self._db.session() as session:
            state = session.get(ClockState, 1, with_for_update=True)
            if state is None:
                state = ClockState(id=1, offset_seconds=0.0)
                session.add(state)
            state.offset_seconds = _checked((state.offset_seconds or 0.0) + delta.total_seconds())
            announce(session, "clock")
        return self.now()

    def reset(self) -> None:
        """Back to wall time (tests and fresh demos)."""
        if self._db is None:
            self._offset = 0.0
            return
        with self._lock, self._db.session() as session:
            state = session.get(ClockState, 1)
            if state is not None:
                state.offset_seconds = 0.0
                announce(session, "clock")

    def refresh(self) -> None:
        """Read the offset again before the next use (after a move was announced)."""
        self._wanted += 1


def _checked(offset: float) -> float:
    if offset > MAX_OFFSET.total_seconds():
        raise ValueError(
            f"the clock may run at most {MAX_OFFSET.days} days ahead of wall time "
            f"(now {offset / 86400:.0f} days): reset it first"
        )
    return offset
