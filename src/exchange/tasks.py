"""Background tasks of a runtime, stopped together."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel every task given (None: never started) and wait until each has ended, so a
    runtime's ``stop()`` returns only once none of its loops still runs. A task's own
    cancellation is expected; any other error it ended with is raised."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task
