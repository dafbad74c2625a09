"""The platform day: the calendar day in Beijing time (UTC+8, no daylight saving) that an
instant falls on, and the instant a day starts.

Quotas, the audit volume, credit deadlines and the mock departments' events all count by
this day; one definition keeps them from disagreeing at midnight. A kernel module (no
database, no domain), so the mock departments may import it too.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["BEIJING", "DayCache", "beijing_day", "day_start"]

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def beijing_day(at: dt.datetime) -> dt.date:
    """The Beijing day of an instant; a naive datetime is taken as UTC (the platform stores
    and passes UTC), never as the host's local time."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(BEIJING).date()


def day_start(day: dt.date) -> dt.datetime:
    """The instant (UTC) a Beijing day begins."""
    return dt.datetime.combine(day, dt.time(), BEIJING).astimezone(dt.UTC)


class DayCache:
    """Beijing days of instants that nearly always fall on the day of the one before (an
    audit group's entries, a walk over the log): a comparison with that day's bounds
    confirms it, where the conversion cost the audit writer ~5 µs an entry."""

    __slots__ = ("_day", "_end", "_end_text", "_start", "_start_text")

    def __init__(self) -> None:
        self._start = self._end = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._day = dt.date.min
        self._start_text = self._end_text = ""

    def of_text(self, at: str) -> dt.date:
        """:func:`beijing_day` of an instant written as UTC ISO text to the microsecond
        (``2024-03-01T02:00:00.000000+00:00``, as audit entries' canonical forms write it):
        texts of that one shape order as their instants do, so the day's bounds, written
        the same way, confirm the day without a datetime made."""
        if self._start_text <= at < self._end_text and len(at) == 32 and at.endswith("+00:00"):
            return self._day
        day = self.of(dt.datetime.fromisoformat(at))
        # The bounds of the day last cached (this one's, unless the text had no offset).
        self._start_text = self._start.isoformat(timespec="microseconds")
        self._end_text = self._end.isoformat(timespec="microseconds")
        return day

    def of(self, at: dt.datetime) -> dt.date:
        """:func:`beijing_day` of ``at``."""
        try:
            if self._start <= at < self._end:
                return self._day
        except TypeError:  # naive: taken as UTC by beijing_day, not cached
            return beijing_day(at)
        day = beijing_day(at)
        # Bounds in UTC: compared with the clock's UTC times without an offset lookup.
        start = day_start(day)
        self._start, self._end, self._day = start, start + dt.timedelta(days=1), day
        return day
