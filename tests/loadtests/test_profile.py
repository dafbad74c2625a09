"""The day's maths: volume, peaks, users, Zipf skew and the action mix."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from loadtests.profile import (
    DAILY_RECORDS_2020,
    HOURLY_WEIGHTS,
    DayPlan,
    Mix,
    Pacer,
    weighted_sample,
    zipf_weights,
)


def test_default_day_is_the_2020_average() -> None:
    assert DayPlan().records_per_day == DAILY_RECORDS_2020 == 37_484_000


@pytest.mark.parametrize("day_seconds", [6.0, 600.0, 86_400.0])
def test_profile_integrates_to_the_daily_volume(day_seconds: float) -> None:
    plan = DayPlan(day_seconds=day_seconds)
    assert plan.records_by(day_seconds) == pytest.approx(DAILY_RECORDS_2020, rel=1e-9)
    assert math.fsum(plan.hourly_records()) == pytest.approx(DAILY_RECORDS_2020, rel=1e-9)
    # The closed form agrees with a numerical integral of the rate.
    steps = 20_000
    dt = day_seconds / steps
    numeric = math.fsum(plan.rate_at((i + 0.5) * dt) * dt for i in range(steps))
    assert numeric == pytest.approx(DAILY_RECORDS_2020, rel=1e-4)


def test_rate_is_derived_from_volume_and_wall_time() -> None:
    short, long = DayPlan(day_seconds=600), DayPlan(day_seconds=1200)
    assert short.mean_rate == pytest.approx(37_484_000 / 600)
    assert short.rate_at(300) == pytest.approx(2 * long.rate_at(600))
    double = DayPlan(records_per_day=2 * 37_484_000, day_seconds=600)
    assert double.rate_at(123) == pytest.approx(2 * short.rate_at(123))


def test_peaks_in_office_hours_and_trough_at_night() -> None:
    plan = DayPlan(day_seconds=24 * 3600)  # one wall second per simulated second
    hourly = plan.hourly_records()
    morning = max(range(6, 12), key=lambda h: hourly[h])
    afternoon = max(range(13, 19), key=lambda h: hourly[h])
    trough = min(range(24), key=lambda h: hourly[h])
    assert morning in (9, 10)
    assert afternoon in (14, 15)
    assert 2 <= trough <= 5
    assert hourly[12] < hourly[morning]
    assert hourly[12] < hourly[afternoon]
    assert hourly[morning] > 10 * hourly[trough]
    assert plan.peak_rate == pytest.approx(max(plan.rate_at(h * 3600 + 1800) for h in range(24)))


def test_users_follow_the_rate() -> None:
    plan = DayPlan(day_seconds=600, peak_users=40, min_users=2)
    users = [plan.users_at(t) for t in range(600)]
    assert max(users) == 40
    assert min(users) >= 2
    assert plan.users_at(10.5 / 24 * 600) == 40  # the morning peak
    assert plan.users_at(3.5 / 24 * 600) < 5  # the night
    assert users[100:262] == sorted(users[100:262])  # rising from 04:00 to the morning peak


def test_rate_a_hair_below_an_hours_midpoint() -> None:
    """``(hour - 0.5) % 24`` rounds up to 24.0 just below 00:30: the rate is the night's,
    not an IndexError out of a user's wait_time."""
    from loadtests.profile import _interp

    hour = math.nextafter(0.5, 0.0)
    assert (hour - 0.5) % 24 == 24.0
    assert _interp(HOURLY_WEIGHTS, hour) == pytest.approx(HOURLY_WEIGHTS[0])


def test_day_plan_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="records_per_day"):
        DayPlan(records_per_day=0)
    with pytest.raises(ValueError, match="day_seconds"):
        DayPlan(day_seconds=0)
    with pytest.raises(ValueError, match="min_users"):
        DayPlan(peak_users=2, min_users=3)
    with pytest.raises(ValueError, match="24 positive"):
        DayPlan(weights=HOURLY_WEIGHTS[:23])


def test_zipf_weights_are_skewed_and_normalised() -> None:
    w = zipf_weights(17, 1.1)
    assert math.fsum(w) == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(w))
    assert w[0] / w[1] == pytest.approx(2**1.1)
    assert w[0] > 0.25  # the most popular topic carries over a quarter of the traffic
    assert zipf_weights(5, 0.0) == pytest.approx([0.2] * 5)


def test_zipf_draws_follow_the_weights() -> None:
    rng = random.Random(1)
    names = [f"t{i}" for i in range(10)]
    w = zipf_weights(10, 1.0)
    counts = dict.fromkeys(names, 0)
    for n in rng.choices(names, w, k=50_000):
        counts[n] += 1
    assert counts["t0"] / 50_000 == pytest.approx(w[0], rel=0.05)
    assert counts["t0"] > counts["t1"] > counts["t4"] > counts["t9"]


def test_weighted_sample_is_distinct_and_favours_heavy_items() -> None:
    rng = random.Random(7)
    items = ["a", "b", "c", "d"]
    first = {"a": 0, "b": 0, "c": 0, "d": 0}
    for _ in range(2000):
        got = weighted_sample(items, [0.7, 0.1, 0.1, 0.1], 3, rng)
        assert len(got) == len(set(got)) == 3
        first[got[0]] += 1
    assert first["a"] > 1200
    assert weighted_sample(items, [1, 1, 1, 1], 9, rng) != []
    assert sorted(weighted_sample(items, [1, 1, 1, 1], 9, rng)) == items


def test_mix_moves_most_records_in_bulk() -> None:
    mix = Mix()
    shares = mix.record_shares()
    assert math.fsum(shares.values()) == pytest.approx(1.0)
    assert shares["export"] + shares["batch"] > 0.99
    assert mix.request_shares()["single"] > 0.5  # yet most calls are single lookups
    assert mix.mean_records == pytest.approx((55 * 1 + 30 * 550 + 10 * 10_000) / 100, rel=1e-9)


def test_mix_choice_respects_what_the_topic_offers() -> None:
    mix, rng = Mix(), random.Random(3)
    no_export = {mix.choose(rng, exportable=False, lookups=True) for _ in range(2000)}
    assert "export" not in no_export
    assert {"single", "batch"} <= no_export
    no_lookup = {mix.choose(rng, exportable=True, lookups=False) for _ in range(2000)}
    assert not {"single", "batch"} & no_lookup
    assert "export" in no_lookup
    with pytest.raises(ValueError, match="batch_min"):
        Mix(batch_min=10, batch_max=2000)


def _simulate(pacer: Pacer, until: float, capacity: float, step: float = 0.05) -> float:
    """A process moving batches of 1,000 records whenever the pacer lets it, at most
    ``capacity`` records/s; returns the records moved."""
    moved, t, budget = 0.0, 0.0, 0.0
    while t < until:
        # Unused capacity does not pile up, but a step's remainder carries to the next.
        budget = min(budget, 1000.0) + capacity * step
        while budget >= 1000 and pacer.wait(t) == 0.0:
            pacer.spend(1000)
            moved += 1000
            budget -= 1000
        t += step
    return moved


def test_pacer_follows_the_day_when_capacity_allows() -> None:
    day = DayPlan(records_per_day=1_000_000, day_seconds=60)
    moved = _simulate(Pacer(day), 60, capacity=10 * day.peak_rate)
    assert moved == pytest.approx(1_000_000, rel=0.01)
    early = _simulate(Pacer(day), 15, capacity=10 * day.peak_rate)
    assert early == pytest.approx(day.records_by(15), rel=0.02)


def test_pacer_works_off_a_peak_backlog_later() -> None:
    day = DayPlan(records_per_day=1_000_000, day_seconds=60)
    # Capacity 80 % of the peak: the peaks fall behind, the afternoon and evening catch up.
    moved = _simulate(Pacer(day, max_lag=60), 60, capacity=0.8 * day.peak_rate)
    assert moved == pytest.approx(1_000_000, rel=0.01)
    # Without carrying the backlog the peaks' shortfall is lost for good.
    clipped = _simulate(Pacer(day, max_lag=0.1), 60, capacity=0.8 * day.peak_rate)
    assert clipped < 0.97 * 1_000_000


def test_pacer_writes_off_arrears_beyond_max_lag() -> None:
    day = DayPlan(records_per_day=1_000_000, day_seconds=60)
    pacer = Pacer(day, max_lag=1.0)
    pacer.refill(30.0)  # nothing moved for half a day
    assert pacer.tokens == pytest.approx(day.rate_at(30.0))
    pacer.spend(pacer.tokens + 500)
    assert pacer.wait(30.0) == pytest.approx(500 / day.rate_at(30.0))


def test_pacer_owes_the_rest_of_the_day_in_its_final_window() -> None:
    day = DayPlan(records_per_day=1_000_000, day_seconds=600)
    pacer = Pacer(day, max_lag=1e9, lead=0.5, tail=1.0, final=4.0)
    assert pacer.final_window == 4.0  # at most 1 % of the day, more than tail + 4 leads
    pacer.refill(595.0)  # 5 s left: two leads ahead as usual
    assert pacer.last == pytest.approx(596.0)
    pacer.refill(596.1)  # within the final window: everything left is owed at once
    assert pacer.last == 600.0
    assert pacer.tokens == pytest.approx(day.records_by(600.0))
    # A short day's window is 1 % of it, but never less than four leads before the tail.
    assert Pacer(DayPlan(day_seconds=100), lead=0.1, tail=0.5).final_window == 1.0
    assert Pacer(DayPlan(day_seconds=100), lead=0.5, tail=0.5).final_window == 2.5


def test_pacer_starts_no_call_in_the_tail() -> None:
    day = DayPlan(records_per_day=1_000_000, day_seconds=60)
    pacer = Pacer(day, max_lag=1e9, lead=0.5, tail=1.0)
    pacer.refill(57.1)  # within four leads of the tail: everything left is owed at once
    assert pacer.last == 60.0
    assert pacer.tokens == pytest.approx(day.records_by(60.0))
    assert pacer.wait(58.4) == 0.0  # owed, and a call can still land before the tail
    assert pacer.wait(58.6) > 1.0  # within tail + lead: no new call, whatever is owed


def test_pacer_lead_starts_calls_early_by_their_duration() -> None:
    day = DayPlan(records_per_day=1_000_000, day_seconds=60)
    pacer = Pacer(day)
    for _ in range(100):
        pacer.observe(0.5, 10_000)
        pacer.observe(0.005, 1)  # single lookups barely move the lead
    assert pacer.lead == pytest.approx(0.5, rel=0.01)
    pacer.refill(10.0)
    assert pacer.tokens == pytest.approx(day.records_by(10.0 + 2 * pacer.lead))
    pacer.refill(59.9)  # never beyond the end of the day
    assert pacer.last == 60.0
    # No call starts that would end after the day, even with records owed.
    pacer.tokens = 1e6
    assert pacer.wait(60.0 - pacer.tail - 0.3) > 0.3
    assert pacer.wait(50.0) == 0.0


def test_reservation_settles_with_what_arrived() -> None:
    day = DayPlan(records_per_day=1_000_000, day_seconds=60)
    pacer = Pacer(day, tokens=5_000.0)
    with pacer.reserve(1_000) as booking:
        assert pacer.tokens == 4_000.0  # booked while the call runs
        booking.records = 400  # 600 of the keys were not found
    assert pacer.tokens == 4_600.0
    assert pacer.lead > 0.0  # the finished call's duration is observed


class _Killed(BaseException):
    """Stands in for gevent's GreenletExit (a BaseException, like it)."""


def test_a_call_killed_midway_gives_its_whole_reservation_back() -> None:
    day = DayPlan(records_per_day=1_000_000, day_seconds=60)
    pacer = Pacer(day, tokens=5_000.0)

    def killed_call() -> None:
        with pacer.reserve(10_000) as booking:
            booking.records = 10_000  # even if it had counted them, they never arrived
            raise _Killed

    with pytest.raises(_Killed):
        killed_call()
    assert pacer.tokens == 5_000.0
    assert pacer.lead == 0.0
