"""The fault draw: what a topic's profile makes of one request, and after how long; the
injected latency is slept whole."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import pytest
import uvloop

from exchange.departments import asgi
from exchange.departments.asgi import sleep_at_least
from exchange.departments.faults import FaultProfile, draw_fault


def test_a_quiet_profile_answers_at_once() -> None:
    assert draw_fault(FaultProfile()) == ("ok", 0.0)


def test_an_outage_answers_after_the_latency() -> None:
    assert draw_fault(FaultProfile(outage=True, latency_ms=40.0, error_rate=1.0)) == (
        "outage",
        0.04,
    )


def test_a_hang_lasts_its_own_time_and_comes_before_errors() -> None:
    profile = FaultProfile(hang_rate=1.0, hang_seconds=2.5, error_rate=1.0, latency_ms=10.0)
    assert draw_fault(profile) == ("hang", 2.5)


def test_errors_and_malformed_bodies_follow_their_rates() -> None:
    assert draw_fault(FaultProfile(error_rate=1.0, malformed_rate=1.0))[0] == "error"
    assert draw_fault(FaultProfile(malformed_rate=1.0))[0] == "malformed"


def test_jitter_adds_at_most_its_bound_and_a_seeded_draw_repeats() -> None:
    profile = FaultProfile(latency_ms=100.0, jitter_ms=50.0, error_rate=0.5)
    draws = [draw_fault(profile, random.Random(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    many = [draw_fault(profile, random.Random(seed)) for seed in range(200)]
    assert all(0.1 <= delay <= 0.15 for _, delay in many)
    assert {outcome for outcome, _ in many} == {"ok", "error"}


def test_injected_latency_is_never_shorter_than_asked_while_the_loop_polls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under uvloop a timer set while the loop polls (as the exchange's busy-polling makes
    it, in a process that also runs the mock departments) fires up to a millisecond early:
    the department sleeps what is left, and only that (each sleep after the first asks for
    less than the one before; a median of the wall time, asserted here before, failed on
    a loaded machine where every sleep runs late)."""
    real_sleep = asyncio.sleep
    asked: list[float] = []

    async def recording(delay: float) -> None:
        asked.append(delay)
        await real_sleep(delay)

    async def run() -> list[tuple[float, list[float]]]:
        loop = asyncio.get_running_loop()
        polling = True

        def poll() -> None:  # keeps the loop turning without sleeping
            if polling:
                loop.call_soon(poll)

        poll()
        out = []
        for i in range(20):
            await real_sleep(0.0003 * (i % 4))  # land at various points of a millisecond
            asked.clear()
            start = time.monotonic()
            await sleep_at_least(0.004)
            out.append((time.monotonic() - start, list(asked)))
        polling = False
        return out

    monkeypatch.setattr(asgi.asyncio, "sleep", recording)
    runs = uvloop.run(run())
    for slept, sleeps in runs:
        assert slept >= 0.004
        assert sleeps[0] == 0.004
        # What is left, never the whole latency again.
        assert all(b < a for a, b in itertools.pairwise(sleeps))
