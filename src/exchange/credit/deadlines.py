"""When a decision must be published: the due instant per decision date (a working-day
rule, :func:`exchange.credit.rules.due_at`), and the Beijing day an instant falls on."""

from __future__ import annotations

import datetime as dt

from exchange.authz.calendar import CalendarNotCovered, WorkingCalendar
from exchange.credit import rules
from exchange.errors import Unavailable

__all__ = ["Deadlines"]


class Deadlines:
    """Due instants per decision date (a batch shares a few dates), or 503 for a year no
    holiday schedule covers, as the review deadlines do."""

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar
        self._due: dict[dt.date, dt.datetime] = {}

    def __call__(self, day: dt.date) -> dt.datetime:
        due = self._due.get(day)
        if due is None:
            try:
                due = rules.due_at(self.calendar, day)
            except CalendarNotCovered as exc:
                raise Unavailable(
                    str(exc), code="calendar_not_covered", detail={"year": exc.year}
                ) from exc
            self._due[day] = due
        return due
