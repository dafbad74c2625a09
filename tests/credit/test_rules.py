"""The double-publicity rules: deadline in working days, publicity periods, list rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from exchange.authz.calendar import NO_SCHEDULE, WorkingCalendar
from exchange.credit import baseline, rules
from exchange.credit.lists import yuan
from exchange.credit.service import Deadlines, mask_id
from exchange.errors import Unavailable

D = dt.date


def pen(
    day: dt.date, *cats: str, fine: int = 0, major: bool = False, ref: int = 0
) -> rules.Penalty:
    return rules.Penalty(ref, day, frozenset(cats or ("罚款",)), fine, major)


def test_deadline_counts_seven_working_days_over_a_weekend() -> None:
    cal = WorkingCalendar()
    # Monday 3 March 2025 → Wednesday 12 March, end of the day in Beijing (16:00 UTC).
    assert rules.due_at(cal, D(2025, 3, 3)) == dt.datetime(2025, 3, 12, 16, tzinfo=dt.UTC)


def test_deadline_skips_national_day_and_counts_the_make_up_saturday() -> None:
    cal = WorkingCalendar()
    # 1-8 October 2025 are holidays; Saturday 11 October is a make-up working day.
    assert rules.due_at(cal, D(2025, 9, 30)) == dt.datetime(2025, 10, 16, 16, tzinfo=dt.UTC)


def test_uncovered_year_is_refused_like_the_review_deadlines() -> None:
    refuse = Deadlines(WorkingCalendar(official=NO_SCHEDULE, uncovered="refuse"))
    with pytest.raises(Unavailable) as info:
        refuse(D(2025, 3, 3))
    assert info.value.code == "calendar_not_covered"
    assert info.value.detail == {"year": 2025}
    weekdays = Deadlines(WorkingCalendar(official=NO_SCHEDULE, uncovered="weekdays"))
    assert weekdays(D(2025, 3, 3)) == dt.datetime(2025, 3, 12, 16, tzinfo=dt.UTC)


def test_black_list_major_penalty_lasts_three_years() -> None:
    p = pen(D(2024, 5, 1), "责令停产停业")
    hits = rules.black_list([p], D(2025, 1, 1))
    assert [(h.rule, h.until) for h in hits] == [("major_penalty", D(2027, 5, 1))]
    assert rules.black_list([p], D(2027, 5, 2)) == []
    marked = pen(D(2024, 5, 1), "警告", major=True)
    assert [h.rule for h in rules.black_list([marked], D(2025, 1, 1))] == ["major_penalty"]


def test_black_list_large_fine_threshold() -> None:
    today = D(2025, 6, 1)
    assert rules.black_list([pen(D(2025, 1, 1), fine=rules.LARGE_FINE_FEN - 1)], today) == []
    hits = rules.black_list([pen(D(2025, 1, 1), fine=rules.LARGE_FINE_FEN, ref=7)], today)
    assert [(h.rule, h.refs) for h in hits] == [("large_fine", [7])]


def test_black_list_repeated_penalties_within_two_years() -> None:
    today = D(2025, 6, 1)
    two = [pen(D(2024, 7, 1), ref=0), pen(D(2025, 1, 1), ref=1)]
    assert rules.black_list(two, today) == []
    old = pen(D(2023, 5, 1), ref=2)  # outside the 2-year window
    assert rules.black_list([*two, old], today) == []
    three = [*two, pen(D(2025, 5, 1), ref=3)]
    hits = rules.black_list(three, today)
    assert [(h.rule, sorted(h.refs), h.until) for h in hits] == [
        ("repeated", [0, 1, 3], D(2026, 7, 1))
    ]
    # A penalty decided after the day asked does not count yet.
    assert rules.black_list(three, D(2025, 4, 1)) == []


def test_red_list_needs_an_a_rating_and_a_clean_record() -> None:
    today = D(2025, 6, 1)
    assert [h.rule for h in rules.red_list("A", [], today, black=False)] == ["a_taxpayer"]
    assert rules.red_list("B", [], today, black=False) == []
    assert rules.red_list(None, [], today, black=False) == []
    assert rules.red_list("A", [pen(D(2024, 1, 1))], today, black=False) == []
    assert [h.rule for h in rules.red_list("A", [pen(D(2021, 1, 1))], today, black=False)] == [
        "a_taxpayer"
    ]
    assert rules.red_list("A", [], today, black=True) == []


def test_publicity_periods() -> None:
    day = D(2025, 1, 10)
    assert rules.publicity_until(pen(day, "警告")) == day + dt.timedelta(days=91)
    assert rules.publicity_until(pen(day, fine=500_00)) == day + dt.timedelta(days=91)
    assert rules.publicity_until(pen(day, fine=50_000_00)) == D(2026, 1, 10)
    assert rules.publicity_until(pen(day, "吊销许可证件")) == D(2028, 1, 10)
    assert rules.years_after(D(2024, 2, 29), 1) == D(2025, 2, 28)


def test_masking_keeps_area_and_tail() -> None:
    assert mask_id("440524188001010014") == "440524********0014"
    assert mask_id(None) is None


def test_baseline_allocation_reproduces_the_seed_totals() -> None:
    alloc = baseline.allocation()
    assert len(baseline.DEPARTMENTS) == 37
    assert len(baseline.DISTRICTS) == 11
    assert set(alloc) == set(baseline.SUBMITTERS)
    assert sum(p + x for p, x in alloc.values()) == baseline.TOTAL_RECORDS == 23_670_000
    assert all(p > 0 and x > 0 for p, x in alloc.values())
    assert alloc == baseline.allocation()


def test_fine_amounts_read_as_the_decimal_division_would_write_them() -> None:
    # The list answer formats each source record's fine without Decimals: the same text.
    for fen in [*range(2_000), 100_000_00, 123_456_78, 999_999_999, -5, -150]:
        assert yuan(fen) == str(Decimal(fen) / 100), fen
