"""Blocking database work from async code, run in a worker thread that a cancelled caller
still waits for.

``run_in_threadpool`` cannot stop its thread: when the awaiting task is cancelled (a
runtime's ``stop()`` cancels its loops), the task ends at once while the thread carries on
with its session. Shutdown then disposes the engine under it, and the connection it
checks in afterwards lands in a pool nobody closes (PostgreSQL: ``psycopg.Connection
deleted while still open``); a lease it commits after ``stop()`` gave every lease back is
left held until it expires. :func:`run_joined` lets the cancellation through only once
the thread's call has ended, so ``stop()`` returning means no thread of it still uses the
database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

__all__ = ["run_joined"]

P = ParamSpec("P")
T = TypeVar("T")


async def run_joined(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``await run_in_threadpool(func, ...)``, except that a cancelled caller waits for
    the call to end (its result or error is dropped) before the cancellation goes on."""
    call = asyncio.ensure_future(run_in_threadpool(func, *args, **kwargs))
    try:
        return await asyncio.shield(call)
    except asyncio.CancelledError:
        # Awaited again, the call is not cancelled a second time: it runs to its end.
        await asyncio.wait([call])
        if not call.cancelled():
            call.exception()  # retrieved, so asyncio does not log it as never retrieved
        raise
