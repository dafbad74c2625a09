"""A PostgreSQL connection held by one background writer: psycopg directly, autocommit.

The exchange's background writers (the audit writer's group commits, the quota counters'
flush) write on every beat from one thread each. Through the engine's pool each beat
cost a checkout with its pre-ping (a round trip before the real one) and SQLAlchemy's
statement handling; on a busy 2-core machine every round trip also waits for the server
process to be scheduled. A held connection is checked out once, never pinged, and its
statements are prepared once per connection (psycopg's ``prepare=True``).

One thread uses a held connection at a time (its owner's); :meth:`HeldConnection.close`
is called by that thread, or once it has ended, never while it may be in a call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Engine

__all__ = ["HeldConnection"]


class HeldConnection:
    """A lazily opened psycopg connection with the engine's connect arguments (URL,
    options), named ``application_name`` so an operator sees its owner in
    ``pg_stat_activity``. Reopened on the next use after it broke."""

    def __init__(self, engine: Engine, application_name: str) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("a held connection is PostgreSQL's; SQLite writes through the pool")
        self._engine = engine
        self._name = application_name
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def opened(self) -> bool:
        """Whether a connection is open now (tests check that close left none)."""
        return self._conn is not None and not self._conn.closed

    def get(self) -> psycopg.Connection[Any]:
        """The open connection, connecting first if there is none (or it broke)."""
        conn = self._conn
        if conn is None or conn.closed:
            cargs, cparams = self._engine.dialect.create_connect_args(self._engine.url)
            cparams.setdefault("application_name", self._name)
            conn = psycopg.connect(*cargs, **cparams, autocommit=True)
            self._conn = conn
        return conn

    @contextmanager
    def using(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection for a block; closed if the block broke it (a lost server), so
        the next use connects again instead of failing on a dead socket."""
        conn = self.get()
        try:
            yield conn
        except BaseException:
            if conn.broken:
                self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
