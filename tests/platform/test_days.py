"""The platform day: one Beijing calendar day for quotas, the audit volume, credit and the
mock departments, flipping at 16:00 UTC."""

from __future__ import annotations

import datetime as dt

import pytest

from exchange.days import BEIJING, DayCache, beijing_day, day_start

MIDNIGHT = dt.datetime(2024, 3, 1, 16, 0, tzinfo=dt.UTC)  # 2024-03-02 00:00 in Beijing


@pytest.mark.parametrize(
    ("at", "day"),
    [
        (MIDNIGHT - dt.timedelta(microseconds=1), dt.date(2024, 3, 1)),
        (MIDNIGHT, dt.date(2024, 3, 2)),
        (MIDNIGHT.replace(tzinfo=None), dt.date(2024, 3, 2)),  # naive: UTC, not the host's zone
        (MIDNIGHT.replace(tzinfo=None) - dt.timedelta(seconds=1), dt.date(2024, 3, 1)),
        (MIDNIGHT.astimezone(dt.timezone(dt.timedelta(hours=-5))), dt.date(2024, 3, 2)),
        (dt.datetime(2024, 12, 31, 16, 0, tzinfo=dt.UTC), dt.date(2025, 1, 1)),
    ],
)
def test_the_day_of_an_instant_is_its_beijing_date(at: dt.datetime, day: dt.date) -> None:
    assert beijing_day(at) == day


def test_a_day_starts_at_beijing_midnight_and_its_start_is_on_it() -> None:
    start = day_start(dt.date(2024, 3, 2))
    assert start == MIDNIGHT
    assert start.utcoffset() == dt.timedelta(0)
    assert beijing_day(start) == dt.date(2024, 3, 2)
    assert beijing_day(start - dt.timedelta(microseconds=1)) == dt.date(2024, 3, 1)
    assert start.astimezone(BEIJING).time() == dt.time(0)


def test_the_day_cache_answers_as_beijing_day_across_midnights_and_back() -> None:
    second = dt.timedelta(seconds=1)
    instants = [
        MIDNIGHT - second,
        MIDNIGHT - dt.timedelta(microseconds=1),
        MIDNIGHT,  # flips
        MIDNIGHT + dt.timedelta(hours=23, minutes=59),
        MIDNIGHT + dt.timedelta(days=1),  # flips again
        MIDNIGHT - second,  # back to an earlier day (entries out of order)
        MIDNIGHT.replace(tzinfo=None),  # naive: UTC, as beijing_day takes it
        MIDNIGHT.replace(tzinfo=None) - second,
        MIDNIGHT.astimezone(dt.timezone(dt.timedelta(hours=-5))),
        MIDNIGHT,
    ]
    days = DayCache()
    assert [days.of(at) for at in instants] == [beijing_day(at) for at in instants]


def test_the_day_of_utc_text_is_the_day_of_its_instant_across_midnights() -> None:
    """``of_text`` reads the audit's canonical UTC text without making a datetime while
    the day holds; a text in another offset or shape still gets its instant's day."""
    micro = dt.timedelta(microseconds=1)
    instants = [
        MIDNIGHT - dt.timedelta(hours=8),
        MIDNIGHT - micro,
        MIDNIGHT,  # flips
        MIDNIGHT + dt.timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999),
        MIDNIGHT + dt.timedelta(days=1),  # flips again
        MIDNIGHT - micro,  # back to an earlier day (entries out of order)
    ]
    texts = [at.isoformat(timespec="microseconds") for at in instants]
    # The same instants in another offset (text order no longer instant order), and
    # without microseconds: answered by conversion.
    other = [MIDNIGHT.astimezone(BEIJING), MIDNIGHT - micro, MIDNIGHT.replace(microsecond=0)]
    texts += [
        other[0].isoformat(timespec="microseconds"),
        (other[1] - dt.timedelta(hours=1)).astimezone(BEIJING).isoformat(timespec="microseconds"),
        other[2].isoformat(),
    ]
    days = DayCache()
    assert [days.of_text(t) for t in texts] == [
        beijing_day(dt.datetime.fromisoformat(t)) for t in texts
    ]
    assert [days.of_text(t) for t in texts[:6]] == [beijing_day(at) for at in instants]
