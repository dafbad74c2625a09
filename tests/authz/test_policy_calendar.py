"""The pure decision and the working-day calendar, without a database."""

from __future__ import annotations

import datetime as dt

import pytest

from exchange.authz.calendar import (
    BEIJING,
    NO_SCHEDULE,
    CalendarNotCovered,
    OfficialSchedule,
    WorkingCalendar,
    day_end,
    parse_days,
)
from exchange.authz.policy import REASONS, Decision, GrantState, decide, decide_verification

NOW = 1_800_000_000.0
DAY = 86_400.0


def grant(**change: object) -> GrantState:
    fields: dict[str, object] = {
        "id": 7,
        "status": "active",
        "items": frozenset({"a", "b"}),
        "valid_from": NOW - DAY,
        "valid_until": NOW + DAY,
        "daily_quota": None,
    } | change
    return GrantState(**fields)  # type: ignore[arg-type]


def test_allowed_returns_requested_items_or_all() -> None:
    g = grant()
    # Unlimited grants remember their answers; the same answer comes back.
    assert decide(g, ("a",), now=NOW) is decide(g, ("a",), now=NOW)
    assert decide(g, ("a", "c"), now=NOW).reason == "item_not_granted"
    assert decide(g, ["a"], now=NOW) == Decision(True, "granted", 7, frozenset({"a"}), None)
    assert decide(g, None, now=NOW).items == {"a", "b"}
    assert decide(g, [], now=NOW).items == {"a", "b"}
    assert decide(g, frozenset({"b"}), now=NOW).items == {"b"}


def test_verification_needs_the_data_verification_purpose() -> None:
    mine = grant(purpose="data_verification")
    assert decide_verification(mine, ["a"], now=NOW).allowed
    other = grant(purpose="administrative_basis")
    assert decide(other, ["a"], now=NOW).allowed  # it serves lookups …
    refused = decide_verification(other, ["a"], now=NOW)  # … but not verification
    assert (refused.allowed, refused.reason, refused.grant_id) == (
        False,
        "purpose_not_verification",
        7,
    )
    assert "purpose_not_verification" in REASONS
    # Otherwise the grant's own rules apply, checked first.
    assert decide_verification(None, ["a"], now=NOW).reason == "no_grant"
    assert decide_verification(mine, ["c"], now=NOW).reason == "item_not_granted"
    assert decide_verification(other, ["c"], now=NOW).reason == "item_not_granted"
    assert (
        decide_verification(grant(daily_quota=2), ["a"], now=NOW, used=1, records=2).reason
        == "quota_exceeded"
    )


@pytest.mark.parametrize(
    ("g", "items", "kwargs", "reason"),
    [
        (None, None, {}, "no_grant"),
        (grant(), None, {"topic_retired": True}, "topic_retired"),
        (grant(status="revoked"), None, {}, "grant_revoked"),
        (grant(status="suspended"), None, {}, "grant_suspended"),
        (grant(valid_from=NOW + 1), None, {}, "grant_not_yet_valid"),
        (grant(valid_until=NOW), None, {}, "grant_expired"),
        (grant(), ["a", "c"], {}, "item_not_granted"),
        (grant(daily_quota=10), None, {"used": 8, "records": 3}, "quota_exceeded"),
    ],
)
def test_each_denial_reason(
    g: GrantState | None, items: list[str] | None, kwargs: dict[str, object], reason: str
) -> None:
    got = decide(g, items, now=NOW, **kwargs)  # type: ignore[arg-type]
    assert got.allowed is False
    assert got.reason == reason
    assert got.items == frozenset()
    assert got.grant_id == (g.id if g is not None else None)
    assert reason in REASONS


def test_retirement_wins_over_every_other_reason() -> None:
    assert decide(grant(status="revoked"), ["x"], now=NOW, topic_retired=True).reason == (
        "topic_retired"
    )
    assert decide(grant(valid_until=NOW), None, now=NOW).reason == "grant_expired"


def test_quota_counts_this_calls_records() -> None:
    g = grant(daily_quota=10)
    fast = decide(g, ["a"], now=NOW, used=2, records=3)
    assert fast == Decision(True, "granted", 7, frozenset({"a"}), 5)
    assert hash(fast) == hash(Decision(True, "granted", 7, frozenset({"a"}), 5))
    with pytest.raises(AttributeError):
        fast.allowed = False  # type: ignore[misc]
    assert decide(g, None, now=NOW, used=7, records=3).remaining_quota == 0
    assert decide(g, None, now=NOW, used=0, records=0).remaining_quota == 10
    assert decide(g, None, now=NOW, used=10, records=1).reason == "quota_exceeded"


def weekdays_only(holidays: list[dt.date] | None = None) -> WorkingCalendar:
    return WorkingCalendar(holidays or [], official=NO_SCHEDULE, uncovered="weekdays")


def test_working_days_skip_weekends_holidays_and_honour_makeup_days() -> None:
    cal = weekdays_only()
    friday = dt.date(2025, 3, 7)
    assert cal.add_working_days(friday, 1) == dt.date(2025, 3, 10)  # Monday
    assert cal.add_working_days(friday, 10) == dt.date(2025, 3, 21)
    assert cal.add_working_days(friday, 0) == friday
    with_holiday = weekdays_only([dt.date(2025, 3, 10)])
    assert with_holiday.add_working_days(friday, 1) == dt.date(2025, 3, 11)
    prc = WorkingCalendar()
    # National Day week 2026: Oct 1-7 off, Saturday Oct 10 is a make-up working day.
    assert not prc.is_working_day(dt.date(2026, 10, 5))
    assert prc.is_working_day(dt.date(2026, 10, 10))
    assert prc.add_working_days(dt.date(2026, 9, 30), 1) == dt.date(2026, 10, 8)
    assert prc.add_working_days(dt.date(2026, 10, 9), 1) == dt.date(2026, 10, 10)


def test_deadline_is_end_of_the_beijing_day() -> None:
    cal = weekdays_only()
    # 2025-03-07 20:00 UTC is already Saturday 04:00 in Beijing.
    submitted = dt.datetime(2025, 3, 7, 20, 0, tzinfo=dt.UTC)
    due = cal.deadline(submitted, 1)
    assert due == dt.datetime(2025, 3, 10, 16, 0, tzinfo=dt.UTC)  # Monday 24:00 Beijing
    assert due.astimezone(BEIJING).time() == dt.time(0)
    assert day_end(dt.date(2025, 3, 10)) == due


def test_configured_holidays_are_added_and_bad_ones_refused() -> None:
    cal = WorkingCalendar.from_settings(
        ["2027-01-01", " 2027-02-08 "], ["2027-02-06"], uncovered="weekdays"
    )
    assert not cal.is_working_day(dt.date(2027, 1, 1))
    assert not cal.is_working_day(dt.date(2027, 2, 8))
    assert cal.is_working_day(dt.date(2027, 2, 6))  # a configured make-up Saturday
    assert not cal.is_working_day(dt.date(2026, 10, 1))  # the official schedule stays
    local = WorkingCalendar.from_settings(["2026-07-14"])  # a local closure, a Tuesday
    assert not local.is_working_day(dt.date(2026, 7, 14))
    with pytest.raises(ValueError, match="holidays"):
        parse_days(["2027-13-01"])
    with pytest.raises(ValueError, match="workdays"):
        WorkingCalendar.from_settings([], ["someday"])
    with pytest.raises(ValueError, match=">= 0"):
        cal.add_working_days(dt.date(2027, 1, 4), -1)


# The 2026 schedule as this project checked it against the State Council's notice
# (国务院办公厅关于2026年部分节假日安排的通知), date by date: the package must agree.
CHECKED_2026_OFF = [
    ("2026-01-01", "2026-01-03"),
    ("2026-02-15", "2026-02-23"),
    ("2026-04-04", "2026-04-06"),
    ("2026-05-01", "2026-05-05"),
    ("2026-06-19", "2026-06-21"),
    ("2026-09-25", "2026-09-27"),
    ("2026-10-01", "2026-10-07"),
]
CHECKED_2026_MAKEUP = ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20"]
CHECKED_2026_MAKEUP += ["2026-10-10"]


def test_the_package_agrees_with_the_checked_2026_schedule() -> None:
    off = set()
    for first, last in CHECKED_2026_OFF:
        day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        while day <= end:
            off.add(day)
            day += dt.timedelta(days=1)
    makeup = {dt.date.fromisoformat(d) for d in CHECKED_2026_MAKEUP}
    cal = WorkingCalendar()
    day = dt.date(2026, 1, 1)
    while day.year == 2026:
        expected = day in makeup or (day.weekday() < 5 and day not in off)
        assert cal.is_working_day(day) == expected, day
        day += dt.timedelta(days=1)


def test_other_years_come_from_the_package_with_their_makeup_days() -> None:
    cal = WorkingCalendar()
    assert cal.years.start <= 2024
    assert 2026 in cal.years
    # Spring Festival 2025: 28 January to 4 February off, Sunday 26 January and Saturday
    # 8 February worked; National Day 2024: Saturday 12 October worked.
    assert not cal.is_working_day(dt.date(2025, 1, 28))
    assert not cal.is_working_day(dt.date(2025, 2, 4))
    assert cal.is_working_day(dt.date(2025, 1, 26))
    assert cal.is_working_day(dt.date(2025, 2, 8))
    assert cal.is_working_day(dt.date(2024, 10, 12))
    assert cal.add_working_days(dt.date(2025, 1, 27), 1) == dt.date(2025, 2, 5)


def test_a_year_no_source_covers_is_refused_not_guessed() -> None:
    cal = WorkingCalendar()
    beyond = cal.years.stop  # the first year the package does not know
    with pytest.raises(CalendarNotCovered, match=f"no holiday schedule covers {beyond}") as err:
        cal.is_working_day(dt.date(beyond, 3, 2))
    assert err.value.year == beyond
    assert "EXCHANGE_HOLIDAYS" in str(err.value)
    # A deadline that runs over the year's end is refused too, before the edge.
    late = dt.datetime(beyond - 1, 12, 28, 2, 0, tzinfo=dt.UTC)
    with pytest.raises(CalendarNotCovered):
        cal.deadline(late, 10)
    with pytest.raises(CalendarNotCovered):
        cal.is_working_day(dt.date(cal.years.start - 1, 6, 1))
    # Told to, the calendar counts Monday to Friday there, plus what was configured.
    lenient = WorkingCalendar([dt.date(beyond, 1, 1)], uncovered="weekdays")
    assert not lenient.is_working_day(dt.date(beyond, 1, 1))
    assert lenient.deadline(late, 10) > late


def test_the_banner_warns_before_the_official_schedule_runs_out() -> None:
    from exchange.banner import CALENDAR_NOTICE_DAYS, calendar_notice
    from exchange.config import Settings

    known = OfficialSchedule(frozenset({dt.date(2026, 10, 1)}), frozenset(), range(2026, 2027))
    last = dt.date(2026, 12, 31)
    far = last - dt.timedelta(days=CALENDAR_NOTICE_DAYS)
    estimating = Settings(calendar_uncovered="weekdays")
    refusing = Settings(calendar_uncovered="refuse")

    assert calendar_notice(estimating, far, known) is None
    near = calendar_notice(estimating, far + dt.timedelta(days=1), known)
    assert near is not None
    assert "known to 2026-12-31" in near
    assert "Monday-Friday" in near
    assert "2027" in near
    past = calendar_notice(refusing, dt.date(2027, 2, 1), known)
    assert past is not None
    assert "calendar_not_covered" in past
    assert "EXCHANGE_HOLIDAYS" in past
    # The deployment default estimates rather than stopping the review flow (read from the
    # field: the tests' environment sets the value explicitly).
    assert Settings.model_fields["calendar_uncovered"].default == "weekdays"
