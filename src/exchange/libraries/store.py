"""Bulk writes of gathered records: executemany on SQLite, COPY on PostgreSQL.

Gathering writes millions of rows; the ORM would spend ~50 µs a row building objects. Rows
go straight to the driver instead, in the same transaction as the source's watermark, so a
page is either wholly in the library with its watermark moved, or not at all.

- SQLite: an export page is written in two steps, each one statement run in C. First it
  is *staged* (:func:`stage_page`, on a private in-memory database, so it can run in
  another thread while the previous page is written): ``INSERT … SELECT … FROM
  json_each(?)`` takes the page's NDJSON as one JSON array, each record's key and values
  apart, and the rows sorted by key; the staged table goes on as its database image
  (``serialize``). Then the write attaches that image and upserts its rows in order
  (``INSERT … SELECT … FROM stage ON CONFLICT DO UPDATE``): only this second step holds
  SQLite's write lock, and it no longer parses or sorts anything. Row by row
  (``executemany``), the sqlite3 module would take the GIL back after every row; in one
  step it is let go once for the whole page. Rows given as tuples (change events, tests)
  still go through ``executemany``, in key order.
- PostgreSQL: ``COPY`` into a temporary staging table, then one ``INSERT … SELECT … ON
  CONFLICT DO UPDATE`` from it (COPY alone cannot upsert).

Every record written carries its source's pass number (``generation``): after a full pass
has read its source to the end, :func:`sweep` removes what the pass did not write, i.e.
what the source no longer exports.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import msgspec

from exchange.db.base import sqlite_time
from exchange.db.engine import SQLITE_CACHE_KIB, Database
from exchange.db.freshness import announce

__all__ = [
    "CHANGED",
    "WRITE_CACHE_KIB",
    "Page",
    "Row",
    "Staged",
    "stage_page",
    "sweep",
    "wide_caches",
    "write_events",
    "write_page",
]

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
    #: the records (lines) of the page, counted once
    records: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", self.body.count(b"\n"))

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

    def stage_insert(self) -> tuple[str, tuple[Any, ...]]:
        """The page as one statement filling :data:`_STAGE_TABLE` (``subject``, ``vals``)
        from its records with ``json_each``, in key order, and its parameters. (Item
        names hold no ``"`` or ``\\``: the catalog's are identifiers, and the broker's
        filter refuses such names.)

        A record's values are taken by one ``json_extract`` with a path per field, which
        answers a JSON array of their JSON texts in that order (1.5 µs a record of 6
        fields in C, measured, against 2.2 µs for :meth:`rows` holding the GIL); a field
        a record lacks, and a slot not granted (a path no record has: the broker passed
        only granted items), is null. A key given twice in a page: both rows are staged,
        in page order, and the write upserts them in that order, so the later wins."""
        paths = tuple(f'$."{f}"' if f is not None else _ABSENT for f in self.fields)
        if len(paths) >= 2:
            values = "json_extract(value, " + ", ".join("?" * len(paths)) + ")"
        else:  # one path: json_extract would answer the value itself, not an array
            values = "json_array(" + ", ".join("value -> ?" for _ in paths) + ")"
        sql = (
            f"INSERT INTO stage (subject, vals) SELECT value ->> ?, {values} "
            "FROM json_each(CAST(? AS TEXT)) ORDER BY 1, key"
        )
        # NDJSON (one object a line, as the broker writes it) → one JSON array, in C.
        array = b"[" + self.body.rstrip(b"\n").replace(b"\n", b",") + b"]"
        key = f'$."{self.key_field}"'
        # Bound as bytes, read as text: a str would be decoded here and encoded to UTF-8
        # again by the driver, both holding the GIL (a fifth of the writer's GIL time).
        return sql, (key, *paths, array)


@dataclass(frozen=True, slots=True)
class Staged:
    """An export page staged for its write (:func:`stage_page`): the image of an
    in-memory SQLite database whose table ``stage`` holds the page's rows (subject, vals)
    in the order they are to be upserted."""

    source_id: int
    image: bytes
    refreshed: int
    records: int


#: the staging table: rowid order is the upsert order (key order, then page order)
_STAGE_TABLE = "CREATE TABLE stage (subject TEXT, vals TEXT)"
_STAGE_ROW = "INSERT INTO stage (subject, vals) VALUES (?, ?)"


def stage_page(page: Page) -> Staged:
    """Take an export page's records apart and sort them, on a private in-memory SQLite
    database (no lock of the library's database is held, and the GIL is let go for the
    statement): run in a thread beside the write of the page before it, this is the part
    of a write that needs no turn at the database (about three quarters of it, measured).

    A page that is not one JSON array once its lines are joined (a provider's blank
    lines, which the broker lets through) is staged row by row, as msgspec reads NDJSON."""
    mem = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    try:
        mem.execute(_STAGE_TABLE)
        try:
            mem.execute(*page.stage_insert())
        except sqlite3.OperationalError as exc:
            if "JSON" not in str(exc):
                raise
            # The statement failed whole (autocommit): the table is still empty.
            rows = sorted(((r[1], r[2]) for r in page.rows()), key=itemgetter(0))
            mem.executemany(_STAGE_ROW, rows)
        image = mem.serialize()
    finally:
        mem.close()
    return Staged(page.source_id, image, page.refreshed, page.records)


#: the JSON path of a slot not granted: an item no record the broker passes can hold
_ABSENT = '$." not granted"'
_NULL = msgspec.Raw(b"null")
_ENCODER = msgspec.json.Encoder()

#: the source's current pass number, stamped on every record a write upserts (see
#: :func:`sweep`), and the write's change number, kept by a record only if the write
#: changed its values (the quality check looks at those: ``exchange.libraries.quality``);
#: each has the source id as its one parameter
_GENERATION = "SELECT generation FROM library_source WHERE id = ?"
_CHANGE = "SELECT changes FROM library_source WHERE id = ?"
#: a write takes the source's next change number first, in its transaction
_NEXT_CHANGE = "UPDATE library_source SET changes = changes + 1 WHERE id = {p}"
_ON_CONFLICT = (
    "ON CONFLICT (source_id, subject) DO UPDATE SET vals = excluded.vals, "
    "refreshed = excluded.refreshed, generation = excluded.generation, "
    "changed = CASE WHEN library_record.vals = excluded.vals THEN library_record.changed "
    "ELSE excluded.changed END"
)
_COLUMNS = "library_record (source_id, subject, vals, refreshed, generation, changed)"
#: one row: (source_id, subject, vals, refreshed, then the source_id twice more)
_UPSERT = f"INSERT INTO {_COLUMNS} VALUES (?, ?, ?, ?, ({_GENERATION}), ({_CHANGE})) {_ON_CONFLICT}"
#: a staged page upserted in its rows' order: (source_id, refreshed, source_id twice more)
_FROM_STAGE = (
    f"INSERT INTO {_COLUMNS} SELECT ?, subject, vals, ?, ({_GENERATION}), ({_CHANGE}) "
    f"FROM stage.stage WHERE true ORDER BY rowid {_ON_CONFLICT}"
)
#: SQLite's page cache of the connection writing a page, KiB (128 MiB: a page's upserts
#: walk the source's part of the B-tree in key order; in cache, each page of it is read
#: once). Set for the write and set back to the pool's size after, so the pooled
#: connection does not keep it: declared in :mod:`exchange.bounds` as one such cache at a
#: time (a gathering writes its pages one after another).
WRITE_CACHE_KIB = 131_072
_CACHE = f"PRAGMA cache_size=-{WRITE_CACHE_KIB}"
_POOL_CACHE = f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}"
_wide = 0
_wide_lock = threading.Lock()


def wide_caches() -> int:
    """Connections holding the write cache now (for the memory bound)."""
    return _wide


def _widen(by: int) -> None:
    global _wide
    with _wide_lock:
        _wide += by


_STAGE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS library_stage "
    "(source_id integer, subject varchar(32), vals text, refreshed bigint)"
)
_MERGE = (
    f"INSERT INTO {_COLUMNS} SELECT DISTINCT ON (source_id, subject) source_id, subject, "
    f"vals, refreshed, ({_GENERATION.replace('?', '%s')}), ({_CHANGE.replace('?', '%s')}) "
    f"FROM library_stage {_ON_CONFLICT}"
)
_SOURCE = (
    "UPDATE library_source SET gathered = gathered + {p}, pass_gathered = pass_gathered + {p}, "
    "watermark = {p}, total_rows = {p}, refreshed_at = {p} WHERE id = {p}"
)


def _subject(row: Row) -> str:
    return row[1]


def _with_source(rows: Sequence[Row]) -> list[tuple[int, str, str, int, int, int]]:
    """Rows as :data:`_UPSERT` takes them (the source id again, for its generation and
    its change number)."""
    return [(*row, row[0], row[0]) for row in rows]


@contextmanager
def _transaction(
    db: Database, *, wide_cache: bool = False, stage: Staged | None = None
) -> Iterator[Any]:
    """A DBAPI cursor of a pooled connection, in one transaction taken in the writer's turn
    (SQLite; see :meth:`Database.writing`): committed when the block ends, rolled back if
    it raises, the connection given back either way.

    SQLite only: ``wide_cache``, the write's larger page cache (:data:`WRITE_CACHE_KIB`)
    for the block; ``stage``, a page's staged image attached as schema ``stage``. Both are
    undone before the connection goes back to the pool."""
    raw = db.engine.raw_connection()
    attached = widened = False
    try:
        cur = raw.cursor()
        try:
            if wide_cache:
                # A larger page cache keeps the B-tree walk in memory (set back below).
                _widen(1)
                widened = True
                cur.execute(_CACHE)
            if stage is not None:
                # Outside the transaction: SQLite attaches only between transactions.
                cur.execute("ATTACH DATABASE ':memory:' AS stage")
                attached = True
                driver = raw.driver_connection
                assert isinstance(driver, sqlite3.Connection)
                driver.deserialize(stage.image, name="stage")
            with db.writing():
                yield cur
                raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            try:
                if attached:
                    cur.execute("DETACH DATABASE stage")
                if widened:
                    # Lowering the size frees the pages past it: the pool's connection
                    # goes back with its usual cache.
                    cur.execute(_POOL_CACHE)
            finally:
                if widened:
                    _widen(-1)
                cur.close()
    finally:
        raw.close()


def write_page(
    db: Database,
    source_id: int,
    rows: Sequence[Row] | Page | Staged,
    *,
    watermark: int,
    total_rows: int | None,
    refreshed_at: dt.datetime,
) -> int:
    """Upsert ``rows`` (or an export page's records, staged or not) and move the source's
    watermark and counts, in one transaction; the records written.

    On SQLite a page is staged first (:func:`stage_page`) if it was not: the gatherer
    stages the next page in another thread while this one is written."""
    n = len(rows) if isinstance(rows, Sequence) else rows.records
    if db.is_sqlite:
        staged = stage_page(rows) if isinstance(rows, Page) else rows
        image = staged if isinstance(staged, Staged) else None
        with _transaction(db, wide_cache=True, stage=image) as cur:
            cur.execute(_NEXT_CHANGE.format(p="?"), (source_id,))
            if isinstance(staged, Staged):
                cur.execute(_FROM_STAGE, (source_id, staged.refreshed, source_id, source_id))
            else:
                # Keys arrive in the source's order, random in the key space: sorted, the
                # B-tree inserts walk its pages in order (2-4x the rate measured).
                cur.executemany(_UPSERT, _with_source(sorted(staged, key=_subject)))
            cur.execute(
                _SOURCE.format(p="?"),
                (n, n, watermark, total_rows, sqlite_time(refreshed_at), source_id),
            )
    else:
        if isinstance(rows, Staged):
            raise TypeError("a staged page is SQLite's: PostgreSQL is given the page")
        if isinstance(rows, Page):
            rows = rows.rows()
        # A key twice in one page: the later record wins, as on SQLite (the merge's
        # DISTINCT ON would keep either).
        rows = list({row[1]: row for row in rows}.values())
        with _transaction(db) as cur:
            cur.execute(_NEXT_CHANGE.format(p="%s"), (source_id,))
            cur.execute(_STAGE)
            cur.execute("TRUNCATE library_stage")
            if rows:
                with cur.copy(
                    "COPY library_stage (source_id, subject, vals, refreshed) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(_MERGE, (source_id, source_id))
            cur.execute(
                _SOURCE.format(p="%s"), (n, n, watermark, total_rows, refreshed_at, source_id)
            )
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
    sqlite = db.is_sqlite
    p = "?" if sqlite else "%s"
    at: object = sqlite_time(refreshed_at) if sqlite else refreshed_at
    n = len(upserts) + len(deletes)
    with _transaction(db) as cur:
        cur.execute(_NEXT_CHANGE.format(p=p), (source_id,))
        if upserts:
            # The last change of a key in the page wins (events are in feed order).
            latest = {row[1]: row for row in upserts}
            cur.executemany(
                _UPSERT if sqlite else _UPSERT.replace("?", "%s"),
                _with_source(list(latest.values())),
            )
        if deletes:
            cur.executemany(_DELETE.format(p=p), [(source_id, k) for k in deletes])
        cur.execute(_EVENTS.format(p=p), (n, n, cursor, at, source_id))
    _announce(db)


_SWEEP_STATE = "SELECT generation, swept_generation FROM library_source WHERE id = {p}"
_SWEEP = "DELETE FROM library_record WHERE source_id = {p} AND generation < {p}"
_SWEPT = (
    "UPDATE library_source SET removed = removed + {p}, pass_removed = {p}, "
    "swept_generation = {p} WHERE id = {p}"
)
#: a sweep that removed records: the source refreshed, and a change the quality check
#: looks at (its conflicts about records gone are closed there)
_SWEPT_REFRESHED = (
    "UPDATE library_source SET refreshed_at = {p}, changes = changes + 1 WHERE id = {p}"
)


def sweep(db: Database, source_id: int, *, refreshed_at: dt.datetime) -> int | None:
    """Reconcile a source after its full pass read the export to its end: the records the
    pass did not write (an older generation) are no longer at the source, and go. One
    ``DELETE`` for the source, in one transaction with its counts; the records removed, or
    ``None`` when there is nothing to sweep (the source's last full pass was swept already,
    or only incremental passes ran since).

    Only this source's records go: a subject keeps the elements of its other sources, and
    is gone from the library once no source holds it. Run twice (a restart between the
    sweep and the source's state), the second finds the generation swept and does nothing.
    """
    sqlite = db.is_sqlite
    p = "?" if sqlite else "%s"
    removed: int | None = None
    with _transaction(db) as cur:
        cur.execute(_SWEEP_STATE.format(p=p), (source_id,))
        found = cur.fetchone()
        if found is not None and found[0] > found[1]:
            generation = int(found[0])
            cur.execute(_SWEEP.format(p=p), (source_id, generation))
            removed = max(0, cur.rowcount)
            cur.execute(_SWEPT.format(p=p), (removed, removed, generation, source_id))
            if removed:
                at: object = sqlite_time(refreshed_at) if sqlite else refreshed_at
                cur.execute(_SWEPT_REFRESHED.format(p=p), (at, source_id))
    if removed:
        _announce(db)
    return removed
