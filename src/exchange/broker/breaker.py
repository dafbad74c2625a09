"""The circuit breaker the broker keeps per provider (:class:`exchange.broker.upstream.Upstream`).

A provider that keeps failing is not called for a while: callers get a 503 at once instead
of piling onto it and each waiting out a full timeout.
"""

from __future__ import annotations

from enum import StrEnum


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``reset`` seconds lets one trial
    call through (half-open) and closes on its success, re-opens on its failure.

    While open, calls fail at once with 503 instead of piling onto a provider that is down
    and holding the caller for a full timeout.

    A trial whose outcome is never reported (its caller cancelled, an export abandoned by
    its client) would hold the half-open breaker shut for good: after ``reset`` seconds
    without news, another trial is let through.
    """

    def __init__(self, threshold: int, reset: float) -> None:
        self.threshold = threshold
        self.reset = reset
        self.state = BreakerState.closed
        self.failures = 0
        self.opened_at = 0.0
        self._trial = False
        self._trial_at = 0.0

    def allow(self, now: float) -> bool:
        if self.state is BreakerState.closed:
            return True
        if self.state is BreakerState.open:
            if now - self.opened_at < self.reset:
                return False
            self.state = BreakerState.half_open
            self._trial = False
        if self._trial and now - self._trial_at < self.reset:
            return False  # one trial at a time while half-open
        self._trial, self._trial_at = True, now
        return True

    def retry_after(self, now: float) -> float:
        return max(0.0, self.reset - (now - self.opened_at))

    def success(self) -> None:
        self.state = BreakerState.closed
        self.failures = 0
        self._trial = False

    def failure(self, now: float) -> None:
        self.failures += 1
        self._trial = False
        if self.state is BreakerState.half_open or self.failures >= self.threshold:
            self.state = BreakerState.open
            self.opened_at = now
