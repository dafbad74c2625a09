"""Working days: review deadlines count days the provider's office is open.

A working day is Monday to Friday, minus public holidays, plus the weekend days the State
Council moves work to (调休 make-up days). The official schedule comes from the
``chinese-calendar`` package (every year it covers, make-up days included); the configured
``Settings.holidays`` and ``Settings.workdays`` are added to it (local closures, or a year
before the package knows it).

A year the package does not cover is counted Monday to Friday plus the configured
additions when ``calendar_uncovered = "weekdays"`` (the default: the startup banner warns,
since that ignores the year's Spring Festival); with ``"refuse"`` ``deadline`` raises
``CalendarNotCovered`` naming the year instead.

Deadlines follow Beijing time, the platform's own day: an application submitted on day D
with ``review_days`` = 10 is due at the end (24:00 Beijing) of the 10th working day after D.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from chinese_calendar import constants as _official

from exchange.days import BEIJING

__all__ = [
    "BEIJING",
    "CalendarNotCovered",
    "OfficialSchedule",
    "Uncovered",
    "WorkingCalendar",
    "day_end",
    "parse_days",
]

Uncovered = Literal["refuse", "weekdays"]


class CalendarNotCovered(ValueError):
    """A working day was asked of a year no holiday source covers."""

    def __init__(self, year: int, covered: range) -> None:
        self.year = year
        super().__init__(
            f"no holiday schedule covers {year} (the chinese-calendar package knows "
            f"{covered.start}-{covered.stop - 1}): upgrade it (pip install -U "
            f"chinese-calendar) once the State Council has published {year}'s schedule, or "
            f"list {year}'s holidays and make-up days in EXCHANGE_HOLIDAYS and "
            "EXCHANGE_WORKDAYS and set EXCHANGE_CALENDAR_UNCOVERED=weekdays"
        )


@dataclass(frozen=True)
class OfficialSchedule:
    """Public holidays and make-up working days for a contiguous range of years."""

    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]
    years: range

    @classmethod
    def from_package(cls) -> OfficialSchedule:
        """The ``chinese-calendar`` package's schedule (its holidays include the weekend
        days inside each break; its workdays are the 调休 make-up days)."""
        holidays = frozenset(_official.holidays)
        workdays = frozenset(_official.workdays)
        years = {d.year for d in holidays | workdays}
        return cls(holidays, workdays, range(min(years), max(years) + 1))


NO_SCHEDULE = OfficialSchedule(frozenset(), frozenset(), range(0))


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
        official: OfficialSchedule | None = None,
        uncovered: Uncovered = "refuse",
    ) -> None:
        schedule = OfficialSchedule.from_package() if official is None else official
        self.years = schedule.years
        self.uncovered = uncovered
        self.holidays = frozenset(holidays) | schedule.holidays
        self.workdays = frozenset(workdays) | schedule.workdays

    @classmethod
    def from_settings(
        cls,
        holidays: Iterable[str],
        workdays: Iterable[str] = (),
        *,
        uncovered: Uncovered = "refuse",
    ) -> WorkingCalendar:
        """The official schedule plus the configured extra holidays and make-up days."""
        return cls(
            parse_days(holidays),
            parse_days(workdays, setting="workdays"),
            uncovered=uncovered,
        )

    def covers(self, day: dt.date) -> bool:
        return day.year in self.years or self.uncovered == "weekdays"

    def is_working_day(self, day: dt.date) -> bool:
        """Monday–Friday and not a holiday, or a make-up working weekend day.

        Raises ``CalendarNotCovered`` for a day of a year no source covers (unless the
        calendar was told to count weekdays there).
        """
        if not self.covers(day):
            raise CalendarNotCovered(day.year, self.years)
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
