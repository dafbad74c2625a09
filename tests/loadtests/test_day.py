"""The day's Locust glue that can be checked without running Locust."""

from __future__ import annotations

from types import SimpleNamespace

from loadtests.day import STOP_TIMEOUT, graceful_stops


def test_ramp_downs_let_users_finish_their_call_unless_told_otherwise() -> None:
    env = SimpleNamespace(stop_timeout=0.0)  # Locust's default: kill users mid-call
    graceful_stops(env)
    assert env.stop_timeout == STOP_TIMEOUT
    explicit = SimpleNamespace(stop_timeout=5.0)
    graceful_stops(explicit)
    assert explicit.stop_timeout == 5.0
