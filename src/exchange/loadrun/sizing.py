"""How many Locust users a day needs at its peak, from its volume and its wall length."""

from __future__ import annotations

import math

__all__ = ["BASE_USERS", "DAILY_RECORDS_2020", "peak_users"]

DAILY_RECORDS_2020 = 37_484_000
#: Users at the peak of the 2020 day in 10 minutes (see :func:`peak_users`).
BASE_USERS = 40


def peak_users(records_per_day: int, day_minutes: float) -> int:
    """Users at the peak for a day's rate: 40 for the 2020 day in 10 minutes (the runs
    that delivered all of it), in proportion for a faster day, never fewer than 40.

    A user makes one call at a time, so the calls a second the users can make are the
    users over the time a call takes (Little's law). The 2020 day in 5 minutes needs ~250
    calls/s at its peak; with calls of ~0.24 s, 40 users made at most ~170 and delivered
    62.5 % of the day with the exchange using 0.8 of 2 cores (bench/results/load-day.md).
    """
    if day_minutes <= 0:
        return BASE_USERS
    rate = records_per_day / DAILY_RECORDS_2020 * (10.0 / day_minutes)
    return max(BASE_USERS, math.ceil(BASE_USERS * rate - 1e-9))
