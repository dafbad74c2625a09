"""The platform day: the calendar day in Beijing time (UTC+8, no daylight saving) that an
instant falls on, and the instant a day starts.

Quotas, the audit volume, credit deadlines and the mock departments' events all count by
this day; one definition keeps them from disagreeing at midnight. A kernel module (no
database, no domain), so the mock departments may import it too.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["BEIJING", "beijing_day", "day_start"]

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
