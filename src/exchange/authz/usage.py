"""Where the grant cache's quota counts go: ``authz_usage``, one row per grant per day.

:meth:`UsageCounts.add` adds a batch of counts and returns the shared totals of the rows it
touched (every process's flushed counts), in one statement on each backend:

* **PostgreSQL**: through psycopg on a connection the flush thread holds
  (:class:`~exchange.db.held.HeldConnection`): one multi-row upsert of three arrays whose
  ``RETURNING`` gives the totals, prepared once, autocommit. Through the pool it took a
  checkout with a pre-ping, the executemany, a read-back and a commit: four round trips
  each second in every process, each one waiting for a server process on a busy machine.
* **SQLite**: the same upsert through the driver (one writer at a time in any case), in
  the process's write turn beside the audit writer (:mod:`exchange.db.turns`).

Rows are written in key order, so two processes flushing the same grants lock their rows
in the same order and cannot deadlock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from exchange.authz.models import GrantUsage
from exchange.db.engine import Database
from exchange.db.held import HeldConnection
from exchange.db.rows import insert_rows

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


#: The upsert of keys on SQLite, before and after its rows (:func:`insert_rows`), with
#: its totals.
_SQLITE_UPSERT = "INSERT INTO authz_usage (grant_id, day, records)"
_SQLITE_UPSERT_CONFLICT = (
    " ON CONFLICT (grant_id, day) DO UPDATE SET records = authz_usage.records + "
    "excluded.records RETURNING grant_id, day, records"
)


def _same(value: Any) -> Any:
    return value


def _date(value: Any) -> dt.date:
    if not isinstance(value, dt.date):
        raise TypeError(f"authz_usage.day read back as {value!r}")
    return value


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
        # Straight to the driver, as the audit writer's group commit: the ORM's bulk
        # upsert with RETURNING built ORM rows for every key, ~6 µs of CPU per lookup
        # under lookups spread over 42 grants (py-spy, 719 req/s, loaded machine). The
        # day goes through the column's own processors, so the stored text and the
        # returned dates are what the ORM stored and returned.
        totals: Counts = {}
        with self._db.writing(), self._db.session() as session:
            conn = session.connection()
            day_type = GrantUsage.__table__.c.day.type.dialect_impl(conn.dialect)
            to_db = day_type.bind_processor(conn.dialect) or _same
            of_db = day_type.result_processor(conn.dialect, None) or _same
            params = [v for g, d in keys for v in (g, to_db(d), counts[g, d])]
            rows = insert_rows(
                conn,
                _SQLITE_UPSERT,
                3,
                params,
                tail=_SQLITE_UPSERT_CONFLICT,
                per_statement=_SQLITE_ROWS,
            )
            totals.update(((int(g), _date(of_db(d))), int(r)) for g, d, r in rows)
        return totals

    def close(self) -> None:
        """Close the held connection (by the flushing thread, or once it has ended)."""
        if self._held is not None:
            self._held.close()
