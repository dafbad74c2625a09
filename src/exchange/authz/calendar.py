"""Working days: review deadlines count days the provider's office is open.

A working day is Monday to Friday, minus public holidays, plus the weekend days the State
Council moves work to (调休 make-up days). The built-in list is the 2026 schedule; the
configured ``Settings.holidays`` are added to it, so a deployment can extend it to later
years (or to local closures) without code.

Deadlines follow Beijing time, the platform's own day: an application submitted on day D
with ``review_days`` = 10 is due at the end (24:00 Beijing) of the 10th working day after D.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

__all__ = [
    "BEIJING",
    "PRC_HOLIDAYS_2026",
    "PRC_MAKEUP_WORKDAYS_2026",
    "WorkingCalendar",
    "day_end",
    "parse_days",
]

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def _span(first: str, last: str) -> list[dt.date]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


# 国务院办公厅关于2026年部分节假日安排的通知 (published 2025-11-04 by Xinhua): New Year,
# Spring Festival, Qingming, Labour Day, Dragon Boat, Mid-Autumn and National Day. Checked
# date by date against the published text on 2026-11-26, make-up workdays included.
PRC_HOLIDAYS_2026: frozenset[dt.date] = frozenset(
    [
        *_span("2026-01-01", "2026-01-03"),
        *_span("2026-02-15", "2026-02-23"),
        *_span("2026-04-04", "2026-04-06"),
        *_span("2026-05-01", "2026-05-05"),
        *_span("2026-06-19", "2026-06-21"),
        *_span("2026-09-25", "2026-09-27"),
        *_span("2026-10-01", "2026-10-07"),
    ]
)
PRC_MAKEUP_WORKDAYS_2026: frozenset[dt.date] = frozenset(
    dt.date.fromisoformat(d)
    for d in (
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    )
)


def day_end(day: dt.date) -> dt.datetime:
    """The instant a Beijing day ends (24:00 Beijing), as UTC: a validity's last moment."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), BEIJING).astimezone(dt.UTC)


def parse_days(values: Iterable[str], *, setting: str = "holidays") -> frozenset[dt.date]:
    """``["2027-01-01", …]`` → dates; ValueError naming the setting on a bad entry."""
    out: set[dt.date] = set()
    for value in values:
        try:
            out.add(dt.date.fromisoformat(value.strip()))
        except ValueError as exc:
            raise ValueError(f"{setting}: {value!r} is not a date (YYYY-MM-DD)") from exc
    return frozenset(out)


class WorkingCalendar:
    """Which days are working days, and deadlines counted in them."""

    def __init__(
        self,
        holidays: Iterable[dt.date] = (),
        workdays: Iterable[dt.date] = (),
        *,
        builtin: bool = True,
    ) -> None:
        self.holidays = frozenset(holidays) | (PRC_HOLIDAYS_2026 if builtin else frozenset())
        self.workdays = frozenset(workdays) | (PRC_MAKEUP_WORKDAYS_2026 if builtin else frozenset())

    @classmethod
    def from_settings(cls, holidays: Iterable[str]) -> WorkingCalendar:
        """The built-in PRC schedule plus the configured extra holidays."""
        return cls(parse_days(holidays))

    def is_working_day(self, day: dt.date) -> bool:
        """Monday–Friday and not a holiday, or a make-up working weekend day."""
        if day in self.holidays:
            return False
        if day in self.workdays:
            return True
        return day.weekday() < 5

    def add_working_days(self, start: dt.date, days: int) -> dt.date:
        """The ``days``-th working day after ``start`` (``start`` itself does not count)."""
        if days < 0:
            raise ValueError("days must be >= 0")
        day = start
        left = days
        while left > 0:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day

    def deadline(self, submitted_at: dt.datetime, days: int) -> dt.datetime:
        """End (24:00 Beijing, as UTC) of the ``days``-th working day after submission."""
        local_day = submitted_at.astimezone(BEIJING).date()
        due = self.add_working_days(local_day, days) + dt.timedelta(days=1)
        return dt.datetime.combine(due, dt.time(0), BEIJING).astimezone(dt.UTC)
