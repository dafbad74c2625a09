"""Where the grant cache's quota counts go: ``authz_usage``, one row per grant per day.

:meth:`UsageCounts.add` adds a batch of counts and returns the shared totals of the rows it
touched (every process's flushed counts), in one statement on each backend:

* **PostgreSQL**: through psycopg on a connection the flush thread holds
  (:class:`~exchange.db.held.HeldConnection`): one multi-row upsert of three arrays whose
  ``RETURNING`` gives the totals, prepared once, autocommit. Through the pool it took a
  checkout with a pre-ping, the executemany, a read-back and a commit: four round trips
  each second in every process, each one waiting for a server process on a busy machine.
* **SQLite**: the same upsert through SQLAlchemy (one writer at a time in any case), in
  the process's write turn beside the audit writer (:mod:`exchange.db.turns`).

Rows are written in key order, so two processes flushing the same grants lock their rows
in the same order and cannot deadlock.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from exchange.authz.models import GrantUsage
from exchange.db.engine import Database
from exchange.db.held import HeldConnection

__all__ = ["APPLICATION_NAME", "UsageCounts"]

APPLICATION_NAME = "exchange-usage-flush"

#: Each key once (the caller's counts are keyed by grant and day), so the upsert never
#: meets its own row twice.
_UPSERT = b"""
INSERT INTO authz_usage AS u (grant_id, day, records)
SELECT * FROM unnest(%s::integer[], %s::date[], %s::integer[])
ON CONFLICT (grant_id, day) DO UPDATE SET records = u.records + excluded.records
RETURNING grant_id, day, records
"""

Counts = dict[tuple[int, dt.date], int]

#: Rows per SQLite statement: three variables each, under SQLite's 32,766 per statement.
_SQLITE_ROWS = 2000


class UsageCounts:
    """Adds counts to ``authz_usage``; one thread at a time (the cache's flush lock)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._held = None if db.is_sqlite else HeldConnection(db.engine, APPLICATION_NAME)

    @property
    def connected(self) -> bool:
        """Whether a held PostgreSQL connection is open (closed by :meth:`close`)."""
        return self._held is not None and self._held.opened

    def add(self, counts: Counts) -> Counts:
        """Add ``counts`` (records per grant and day) in one transaction; return the totals
        now stored for those keys. Raises what the database raises; nothing is added
        then."""
        if not counts:
            return {}
        keys = sorted(counts)
        if self._held is None:
            return self._add_sqlite(keys, counts)
        with self._held.using() as conn:
            rows = conn.execute(
                _UPSERT,
                (
                    [g for g, _ in keys],
                    [d for _, d in keys],
                    [counts[k] for k in keys],
                ),
                prepare=True,
            ).fetchall()
        return {(int(g), d): int(r) for g, d, r in rows}

    def _add_sqlite(self, keys: list[tuple[int, dt.date]], counts: Counts) -> Counts:
        table = GrantUsage.__table__
        totals: Counts = {}
        with self._db.writing(), self._db.session() as session:
            for i in range(0, len(keys), _SQLITE_ROWS):
                rows = [
                    {"grant_id": g, "day": d, "records": counts[g, d]}
                    for g, d in keys[i : i + _SQLITE_ROWS]
                ]
                upsert = sqlite_insert(GrantUsage).values(rows)
                stmt = upsert.on_conflict_do_update(
                    index_elements=["grant_id", "day"],
                    set_={"records": table.c.records + upsert.excluded.records},
                ).returning(GrantUsage.grant_id, GrantUsage.day, GrantUsage.records)
                totals.update(((g, d), r) for g, d, r in session.execute(stmt))
        return totals

    def close(self) -> None:
        """Close the held connection (by the flushing thread, or once it has ended)."""
        if self._held is not None:
            self._held.close()
