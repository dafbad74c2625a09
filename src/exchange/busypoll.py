"""Busy-polling the event loop while a lone provider call is out.

Why: at one connection the exchange has nothing to do while its call to the provider is
out, so its event loop sleeps in ``epoll_wait`` and the answer has to wake it up. On this
project's machines (virtual, 2 cores) that wake-up is a large part of the hop: pinning
every process to one CPU, which keeps the caches warm and avoids the idle state's exit,
took a quarter to over half off the latency the exchange adds. Keeping the loop awake
instead (a ready callback makes uvloop and asyncio poll their sockets with a zero timeout
rather than sleep) lets the answer be read as soon as it lands.

When: only while a call is *lone*, the only request the server has under way. With two or
more, the loop has work between polls anyway, and the CPU a spin burns is better spent on
them; a second request arriving during a spin ends it at the next tick.

Cost: CPU, at most the budget (``busy_poll_us``) per lone call: a spin ends when the answer
comes, when the call fails or times out, when another request arrives, or when the budget
is spent (the loop then sleeps as before). Each tick is one loop iteration (a zero-timeout
poll and this check, a few µs).

Only for providers that answer within the budget: a provider whose recent lone answers all
took longer (:class:`Expected`, the shortest of its last few) is not polled for at all.
Measured across the city and province exchanges with a department answering in 4 ms
(bench/README.md, "federation"), a spin spent before such an answer made the lookup
slower, not faster: the hop added 0.89-0.94 ms with it against 0.39-0.49 ms with
busy-polling off, and sleeping until shortly before the expected answer and spinning
from there (hybrid polling) did no better (0.80-1.30 ms). Why a spin that ends long
before the answer costs the answer's wake-up is not established (this is a virtual
machine: the hypervisor's own polling of an idle virtual CPU adapts to how the guest
uses it); what decides is the measurement.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sized
from contextvars import ContextVar
from time import perf_counter
from typing import Any

__all__ = ["Expected", "budget_us", "configure", "poll_while_waiting", "serving"]

#: seconds a lone call may spin the loop; 0 is off
_budget = 0.0

#: the requests under way at the server that runs the current task (set by the task that
#: answers a request, so that a provider call made from it can tell whether it is alone)
_requests: ContextVar[Sized | None] = ContextVar("exchange_busypoll_requests", default=None)


def configure(budget_us: int) -> None:
    """Set this process's spin budget per lone call, in µs (0 turns polling off)."""
    if budget_us < 0:
        raise ValueError(f"busy-poll budget must be ≥ 0 µs, not {budget_us}")
    global _budget
    _budget = budget_us / 1e6


def budget_us() -> int:
    """This process's spin budget per lone call, in µs (0: off)."""
    return round(_budget * 1e6)


def serving(requests: Sized) -> None:
    """Declare, in the task answering a request, the server's requests under way (this
    one among them)."""
    _requests.set(requests)


class Expected:
    """When one provider's lone answers come: the shortest of its last ``KEPT`` lone
    calls, in seconds (``inf`` until the first). Only lone calls count: under load an
    answer also waits in queues, which says nothing of the next lone call."""

    KEPT = 8
    __slots__ = ("_next", "_recent", "shortest")

    def __init__(self) -> None:
        self._recent = [math.inf] * self.KEPT
        self._next = 0
        self.shortest = math.inf

    def record(self, seconds: float) -> None:
        """One lone call's answer time."""
        recent = self._recent
        recent[self._next] = seconds
        self._next = (self._next + 1) % self.KEPT
        self.shortest = min(recent)


def poll_while_waiting(
    loop: asyncio.AbstractEventLoop,
    waiter: asyncio.Future[Any],
    expected: Expected | None = None,
) -> None:
    """Keep ``loop`` polling without sleeping until ``waiter`` is done, if the calling
    task's request is the only one its server has under way (see the module docstring).
    With ``expected`` (the provider's), a lone call's answer time is recorded, and a
    provider whose recent lone answers all took longer than the budget is not polled for."""
    budget = _budget
    if not budget:
        return
    requests = _requests.get()
    if requests is None or len(requests) != 1:
        return
    start = perf_counter()
    if expected is not None:
        waiter.add_done_callback(lambda _: expected.record(perf_counter() - start))
        if budget < expected.shortest != math.inf:
            return  # a provider slower than the budget: its answer comes after the spin
    loop.call_soon(_tick, loop, waiter, requests, start + budget)


def _tick(
    loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[Any], requests: Sized, until: float
) -> None:
    if waiter.done() or len(requests) != 1 or perf_counter() >= until:
        return
    loop.call_soon(_tick, loop, waiter, requests, until)
