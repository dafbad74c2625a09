"""The day's Locust glue that can be checked without running Locust."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from loadtests.day import STOP_TIMEOUT, graceful_stops

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
