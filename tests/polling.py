"""Polling to a deadline: a test waits for what it can observe, never for a guessed time.

The deadline is generous (the suite runs on busy shared machines, where a background task
can be late by seconds); the interval only sets how soon a test notices, so a passing test
is as fast as the thing it waits for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: how long a test waits for something that should happen at once
WITHIN = 30.0
EVERY = 0.02


def wait_until(
    check: Callable[[], T], what: str, *, within: float = WITHIN, every: float = EVERY
) -> T:
    """``check()``'s first truthy answer, asked every ``every`` seconds; an
    ``AssertionError`` naming ``what`` (and the last answer) after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what} (last: {found!r})")
        time.sleep(every)


async def until(
    check: Callable[[], T | Awaitable[T]],
    what: str,
    *,
    within: float = WITHIN,
    every: float = EVERY,
) -> T:
    """:func:`wait_until` inside an event loop: sleeping yields to the tasks awaited."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if isinstance(found, Awaitable):
            found = await found
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what} (last: {found!r})")
        await asyncio.sleep(every)
