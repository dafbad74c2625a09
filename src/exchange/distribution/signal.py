"""Wake long-polling readers when changes commit (in this process; other processes'
commits are found by polling)."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["ChangeSignal"]


class ChangeSignal:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Future[None]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    async def wait(self, seconds: float) -> None:
        """Until the next :meth:`notify` or ``seconds`` seconds."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(future)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), seconds)
        finally:
            self._waiters.discard(future)

    def notify(self) -> None:
        """Safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self._waiters:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for future in list(self._waiters):
            if not future.done():
                future.set_result(None)
