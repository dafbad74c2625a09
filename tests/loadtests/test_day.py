"""The day's Locust glue that can be checked without running Locust."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from loadtests.day import STOP_TIMEOUT, Day, graceful_stops
from loadtests.profile import DayPlan, Mix, Pacer

ROOT = Path(__file__).resolve().parents[2]


def test_ramp_downs_let_users_finish_their_call_unless_told_otherwise() -> None:
    env = SimpleNamespace(stop_timeout=0.0)  # Locust's default: kill users mid-call
    graceful_stops(env)
    assert env.stop_timeout == STOP_TIMEOUT
    explicit = SimpleNamespace(stop_timeout=5.0)
    graceful_stops(explicit)
    assert explicit.stop_timeout == 5.0


# In a child process: importing Locust monkey-patches the standard library (gevent).
_DEFAULTS_ONCE = """
import locust.argument_parser as parser
from loadtests.day import defaults_once

before = parser.default_args_dict()
built = []
make = parser.get_empty_argument_parser
def counting(*args, **kwargs):
    built.append(1)
    return make(*args, **kwargs)
parser.get_empty_argument_parser = counting
defaults_once()
defaults_once()  # a second install keeps the one cache
dicts = [parser.default_args_dict() for _ in range(50)]
assert all(d == before for d in dicts), "the defaults changed"
assert "num_users" in dicts[0] and "day_minutes" not in dicts[0]
print(len(built))
"""


def test_a_worker_builds_locusts_option_defaults_once() -> None:
    """A worker tests every option of each spawn message against Locust's defaults; built
    once per process instead of once per option, they cost nothing per message."""
    out = subprocess.run(
        [sys.executable, "-c", _DEFAULTS_ONCE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.split() == ["1"]


def test_peak_users_follow_the_days_rate() -> None:
    """40 users for the 2020 day in 10 minutes; twice the rate, twice the users (one call
    at a time each); a slower or smaller day keeps 40."""
    from exchange.loadrun import DAILY_RECORDS_2020, peak_users

    assert peak_users(DAILY_RECORDS_2020, 10) == 40
    assert peak_users(DAILY_RECORDS_2020, 5) == 80
    assert peak_users(DAILY_RECORDS_2020, 2.5) == 160
    assert peak_users(DAILY_RECORDS_2020 // 2, 5) == 40
    assert peak_users(DAILY_RECORDS_2020, 30) == 40
    assert peak_users(1_000_000, 0.05) == 214  # 1 M in 3 s: 5.3 times the 10-minute day


class WorkerRunner:
    """Stands in for Locust's worker runner (``Day.share`` goes by the class name)."""

    def __init__(self) -> None:
        self.user_count = 0


class MasterRunner:
    def __init__(self, workers: int) -> None:
        self.worker_count = workers
        self.environment = SimpleNamespace(parsed_options=SimpleNamespace(day_workers=0))


def _worker_day(plan: DayPlan, workers: int, processes: int) -> float:
    """``processes`` Locust workers pacing one day with ample capacity, their users one
    shape tick (1 s) behind the users the shape wants, as when a ramp-up is dispatched;
    returns the records all of them moved in 1,000-record calls."""
    total = 0.0
    for _ in range(processes):
        day = Day(options=SimpleNamespace(day_workers=workers), day=plan, mix=Mix())
        runner, pacer = WorkerRunner(), Pacer(plan)
        t, step, budget = 0.0, 0.05, 0.0
        while t < plan.day_seconds:
            # The master's even dispatch of the users wanted a tick ago (rounded up).
            runner.user_count = -(-plan.users_at(max(t - 1.0, 0.0)) // processes)
            budget = min(budget, 1000.0) + 10 * plan.peak_rate * step
            while budget >= 1000 and pacer.wait(t, day.share(runner, t)) == 0.0:
                pacer.spend(1000)
                total += 1000
                budget -= 1000
            t += step
    return total


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_workers_whose_users_lag_the_shape_still_deliver_the_whole_day(processes: int) -> None:
    """Each worker owes an equal part of the day whatever its users: with shares taken
    from its users ÷ the users wanted now, a worker one tick behind the shape accrued too
    little on every ramp-up and never owed it again (99.0 % of this day with one worker)."""
    plan = DayPlan(records_per_day=1_000_000, day_seconds=300, peak_users=80)
    moved = _worker_day(plan, workers=processes, processes=processes)
    # Within one call per process of the day: never short, never over by more.
    assert abs(moved - plan.records_per_day) <= 1000 * processes


def test_a_master_forwards_its_worker_count_and_a_worker_owes_its_part() -> None:
    plan = DayPlan(records_per_day=1_000_000, day_seconds=300, peak_users=80)
    master = MasterRunner(workers=3)
    day = Day(options=master.environment.parsed_options, day=plan, mix=Mix())
    day.forward_workers(master)
    assert master.environment.parsed_options.day_workers == 3
    # What a worker reads from the spawn message's options.
    worker_day = Day(options=SimpleNamespace(day_workers=3), day=plan, mix=Mix())
    worker = WorkerRunner()
    for users in (1, 10, 80):  # whatever its users, a third of the day
        worker.user_count = users
        assert worker_day.share(worker, 100.0) == pytest.approx(1 / 3)
    # A local runner or the master itself carries the whole day.
    assert day.share(SimpleNamespace(user_count=5), 100.0) == 1.0
    # Not a master: nothing to forward.
    local = SimpleNamespace(worker_count=2, environment=master.environment)
    master.environment.parsed_options.day_workers = 0
    day.forward_workers(local)
    assert master.environment.parsed_options.day_workers == 0
