"""How a lookup reads the records it assembles: one indexed query on a raw DB-API connection
per thread and, on SQLite, within a short-lived read snapshot. A part of
:class:`~exchange.libraries.service.LibraryService`."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from typing import Any

import orjson

from exchange.db.engine import Database

__all__ = ["SNAPSHOT_SECONDS", "Held", "RecordReads", "read_sql"]

#: SQLite: how long lookups read one snapshot of the library before taking a new one (a
#: pass ending in this process takes a new one at once)
SNAPSHOT_SECONDS = 0.1
#: one source's record of a subject: (source id, values in the source's order, refreshed)
Held = tuple[int, list[Any], int]


def read_sql(sqlite: bool) -> str:
    """The lookup's query, ``{keys}`` and ``{ids}`` to fill in."""
    if sqlite:
        # The rows come back as one JSON array in one row: the sqlite3 module lets go
        # of the GIL at every step of a cursor, and each time it does, the audit
        # writer's thread may hold it for a switch interval (5 ms) before the lookup
        # gets it back (py-spy: the query's lines were a fifth of the serving thread).
        return (
            "SELECT json_group_array(json_array(subject, source_id, json(vals), "
            "refreshed)) FROM library_record WHERE subject IN ({keys}) "
            "AND source_id IN ({ids})"
        )
    return (
        "SELECT subject, source_id, vals, refreshed FROM library_record "
        "WHERE subject IN ({keys}) AND source_id IN ({ids})"
    )


class RecordReads:
    """:meth:`_read` of :class:`~exchange.libraries.service.LibraryService`."""

    db: Database
    _sql: str
    _local: threading.local
    #: moves whenever records change anywhere (a snapshot older than it is not reused)
    _generation: int

    def _connection(self) -> Any:
        """A raw DB-API connection per thread: a lookup is one indexed query, and the ORM
        (or a pooled checkout per call) would cost several times the query itself."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.db.engine.raw_connection()
            self._local.conn = conn
            self._local.began = -SNAPSHOT_SECONDS
            self._local.generation = -1
            self._local.open = False
            self._local.token = None
        return conn

    def _snapshot(self, conn: Any) -> None:
        """SQLite: keep one read transaction for up to :data:`SNAPSHOT_SECONDS`. Outside a
        transaction every query starts one, and finds the database changed by the audit
        writer's latest commit (one per few lookups), which drops the connection's page
        cache: the query then read its B-tree pages again through the OS, several times
        the cost of the query itself. Within one, the pages stay cached. A timer on the
        event loop ends the snapshot when lookups stop, so it never holds back the WAL's
        checkpoints (off the loop, none is kept)."""
        local = self._local
        now = time.monotonic()
        fresh = now - local.began < SNAPSHOT_SECONDS and local.generation == self._generation
        if local.open and fresh:
            return
        conn.rollback()
        local.open = False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        cur = conn.cursor()
        try:
            cur.execute("BEGIN")
        finally:
            cur.close()
        token = object()
        local.open, local.began, local.generation, local.token = (
            True,
            now,
            self._generation,
            token,
        )
        loop.call_later(SNAPSHOT_SECONDS, self._release, conn, token)

    def _release(self, conn: Any, token: object) -> None:
        local = self._local
        held: Any = getattr(local, "conn", None)
        if held is not None and held is conn and local.open and local.token is token:
            held.rollback()  # lookups stopped: let the WAL be checkpointed past us
            local.open = False

    def _read(self, keys: list[str], source_ids: Iterable[int]) -> dict[str, tuple[Held, ...]]:
        """The records of ``keys`` from the sources ``source_ids``, by key in source order:
        one indexed query."""
        sqlite = self.db.is_sqlite
        p = "?" if sqlite else "%s"
        sql = self._sql.format(
            keys=",".join([p] * len(keys)), ids=",".join(str(i) for i in source_ids)
        )
        conn = self._connection()
        if sqlite:
            self._snapshot(conn)
        cur = conn.cursor()
        held: dict[str, list[Held]] = {}
        try:
            cur.execute(sql, keys)
            if sqlite:
                found = orjson.loads(cur.fetchone()[0])
            else:
                found = [(k, i, orjson.loads(v), r) for k, i, v, r in cur.fetchall()]
            for subject, source_id, values, refreshed in found:
                held.setdefault(subject, []).append((source_id, values, refreshed))
        finally:
            cur.close()
            if not sqlite:
                conn.rollback()  # end the read transaction: the next sees new gathering
        return {k: tuple(sorted(v)) for k, v in held.items()}
