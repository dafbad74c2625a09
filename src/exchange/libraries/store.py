"""Bulk writes of gathered records: executemany on SQLite, COPY on PostgreSQL.

Gathering writes millions of rows; the ORM would spend ~50 µs a row building objects. Rows
go straight to the driver instead, in the same transaction as the source's watermark, so a
page is either wholly in the library with its watermark moved, or not at all.

- SQLite: ``INSERT … ON CONFLICT DO UPDATE`` through ``executemany`` (the sqlite3 module
  steps the prepared statement per row without returning to Python between rows), the
  rows in key order.
- PostgreSQL: ``COPY`` into a temporary staging table, then one ``INSERT … SELECT … ON
  CONFLICT DO UPDATE`` from it (COPY alone cannot upsert).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from exchange.db.engine import Database
from exchange.db.freshness import announce

__all__ = ["CHANGED", "Page", "Row", "write_events", "write_page"]

#: the freshness topic of the gathered records: every process's lookup cache drops them
CHANGED = "libraries"

#: (source_id, subject, vals JSON, refreshed epoch seconds)
Row = tuple[int, str, str, int]


@dataclass(frozen=True, slots=True)
class Page:
    """One export page of a source as the broker answered it: NDJSON records (one object
    a line, as the broker re-encodes them), stored as rows of (key, ``fields`` in order)
    with ``None`` in place of a field the library is not granted (stored as null)."""

    source_id: int
    body: bytes
    key_field: str
    #: the source's fields in ``vals`` order; None: not granted, stored as null
    fields: tuple[str | None, ...]
    refreshed: int

    @property
    def records(self) -> int:
        return self.body.count(b"\n")

    def rows(self) -> list[Row]:
        """The page as rows: each record's values as one JSON array in ``fields`` order.

        The values are never built as Python objects: each is kept as its JSON text
        (:class:`msgspec.Raw`) and written back into the array as it came, so only the key
        is decoded (a third of the cost of decoding and encoding every value, measured).
        A slot not granted is a field no record has, which stays ``null``."""
        names = [self.key_field, *(f or f" not granted {i}" for i, f in enumerate(self.fields))]
        struct = msgspec.defstruct(
            "LibraryRow",
            [("f0", Any, None), *((f"f{i}", msgspec.Raw, _NULL) for i in range(1, len(names)))],
            rename={f"f{i}": name for i, name in enumerate(names)},
        )
        decoder = msgspec.json.Decoder(struct)
        encode = _ENCODER.encode
        astuple = msgspec.structs.astuple
        sid, refreshed = self.source_id, self.refreshed
        return [
            (sid, (values := astuple(rec))[0], encode(values[1:]).decode(), refreshed)
            for rec in decoder.decode_lines(self.body)
        ]


_NULL = msgspec.Raw(b"null")
_ENCODER = msgspec.json.Encoder()

_UPSERT = (
    "INSERT INTO library_record (source_id, subject, vals, refreshed) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (source_id, subject) DO UPDATE SET vals = excluded.vals, "
    "refreshed = excluded.refreshed"
)
_CACHE = "PRAGMA cache_size=-131072"  # KiB: 128 MiB for this connection
_STAGE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS library_stage "
    "(source_id integer, subject varchar(32), vals text, refreshed bigint)"
)
_MERGE = (
    "INSERT INTO library_record (source_id, subject, vals, refreshed) "
    "SELECT DISTINCT ON (source_id, subject) source_id, subject, vals, refreshed "
    "FROM library_stage ON CONFLICT (source_id, subject) DO UPDATE SET "
    "vals = excluded.vals, refreshed = excluded.refreshed"
)
_SOURCE = (
    "UPDATE library_source SET gathered = gathered + {p}, pass_gathered = pass_gathered + {p}, "
    "watermark = {p}, total_rows = {p}, refreshed_at = {p} WHERE id = {p}"
)


def _subject(row: Row) -> str:
    return row[1]


def _sqlite_time(at: dt.datetime) -> str:
    # The form SQLAlchemy's SQLite DateTime stores (UTC, no offset), so the ORM reads it.
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def write_page(
    db: Database,
    source_id: int,
    rows: Sequence[Row] | Page,
    *,
    watermark: int,
    total_rows: int | None,
    refreshed_at: dt.datetime,
) -> int:
    """Upsert ``rows`` (or an export page's records) and move the source's watermark and
    counts, in one transaction; the records written."""
    n = rows.records if isinstance(rows, Page) else len(rows)
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if db.is_sqlite:
            # A larger page cache keeps the B-tree walk in memory.
            cur.execute(_CACHE)
            # Keys arrive in the source's order, random in the key space: sorted, the
            # B-tree inserts walk its pages in order (2-4x the rate measured).
            ordered = sorted(rows.rows() if isinstance(rows, Page) else rows, key=_subject)
            with db.writing():
                cur.executemany(_UPSERT, ordered)
                cur.execute(
                    _SOURCE.format(p="?"),
                    (n, n, watermark, total_rows, _sqlite_time(refreshed_at), source_id),
                )
                raw.commit()
        else:
            if isinstance(rows, Page):
                rows = rows.rows()
            # A key twice in one page: the later record wins, as on SQLite (the merge's
            # DISTINCT ON would keep either).
            rows = list({row[1]: row for row in rows}.values())
            cur.execute(_STAGE)
            cur.execute("TRUNCATE library_stage")
            if rows:
                with cur.copy(
                    "COPY library_stage (source_id, subject, vals, refreshed) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(_MERGE)
            cur.execute(
                _SOURCE.format(p="%s"), (n, n, watermark, total_rows, refreshed_at, source_id)
            )
            raw.commit()
        cur.close()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    _announce(db)
    return n


def _announce(db: Database) -> None:
    """Tell the lookup caches of every process that records changed, once they are
    committed (announced before, a lookup in between would cache the old rows again)."""
    with db.session() as session:
        announce(session, CHANGED)


_DELETE = "DELETE FROM library_record WHERE source_id = {p} AND subject = {p}"
_EVENTS = (
    "UPDATE library_source SET gathered = gathered + {p}, events_applied = events_applied "
    "+ {p}, event_cursor = {p}, refreshed_at = {p} WHERE id = {p}"
)


def write_events(
    db: Database,
    source_id: int,
    upserts: Sequence[Row],
    deletes: Sequence[str],
    *,
    cursor: int,
    refreshed_at: dt.datetime,
) -> None:
    """Apply one page of change events (records changed, records gone) and move the
    source's event cursor, in one transaction: a page is applied wholly or not at all, and
    applying it twice (a restart before the cursor moved) gives the same records."""
    raw = db.engine.raw_connection()
    sqlite = db.is_sqlite
    p = "?" if sqlite else "%s"
    at: object = _sqlite_time(refreshed_at) if sqlite else refreshed_at
    n = len(upserts) + len(deletes)
    try:
        cur = raw.cursor()
        with db.writing():
            if upserts:
                # The last change of a key in the page wins (events are in feed order).
                latest = {row[1]: row for row in upserts}
                cur.executemany(
                    _UPSERT if sqlite else _UPSERT.replace("?", "%s"), list(latest.values())
                )
            if deletes:
                cur.executemany(_DELETE.format(p=p), [(source_id, k) for k in deletes])
            cur.execute(_EVENTS.format(p=p), (n, n, cursor, at, source_id))
            raw.commit()
        cur.close()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    _announce(db)
