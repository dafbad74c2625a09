"""Turns for a process's background writers of a SQLite database, first come first served.

SQLite lets one writer at a time in; a connection that finds the database locked polls
(``busy_timeout``) with growing sleeps, and meanwhile the holder may take the lock again at
once. Under load the audit writer commits group after group, and the grant-usage flush,
polling beside it, was starved past its 10 s timeout ("authz usage flush failed: database
is locked"). The background writers of a process (the audit writer's group commits, the
usage flush) take a turn here first, in the order they asked; SQLite's own lock still
guards against other processes and the API's occasional writes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["WriteTurns"]


class WriteTurns:
    """A ticket lock: each caller waits for its ticket's turn (no overtaking)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._issued = 0
        self._serving = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the turn for the block (not re-entrant)."""
        with self._cond:
            ticket = self._issued
            self._issued += 1
            while ticket != self._serving:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._serving += 1
                self._cond.notify_all()

    @property
    def waiting(self) -> int:
        """Callers holding or waiting for a turn."""
        return self._issued - self._serving
