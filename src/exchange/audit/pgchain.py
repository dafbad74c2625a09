"""The audit writer's PostgreSQL path: a group of entries chained and committed in one
round trip, through psycopg directly.

On PostgreSQL the broker's answer waits for the commit (there is no local journal), so
what a group commit costs is what every call waits. Through the ORM a group cost seven
round trips (a pre-ping at the pool checkout, lock the head, read it, insert, the volume
upsert, move the head, commit) and SQLAlchemy's per-row parameter handling; on a busy
2-core machine each round trip waits for the server process to be scheduled, and the
broker ran at a quarter of its SQLite throughput.

Here the writer thread holds one connection of its own (autocommit, never pinged) and
sends each group as **one statement**, prepared once: the head's move, the entries (the
JSON array of their canonical forms) and the day's volume, as data-modifying CTEs. The head moves
only if it is still where this writer last left it (``seq`` and ``hash`` compared), and
the inserts happen only if it moved, so the statement is its own optimistic lock: a head
another process moved (several brokers on one database) leaves the statement without
effect, and the group is chained again under the head's row lock (``FOR UPDATE``), as is
a group that carries a signed checkpoint. The chain, the volume and the checkpoints are
exactly :func:`exchange.audit.chain.append`'s; only the way to the server differs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

from exchange.audit.chain import Sign, following
from exchange.audit.checkpoint import Checkpoint
from exchange.audit.entry import STORED, VERSION, Entry, chain_hash
from exchange.audit.models import entry_column
from exchange.days import DayCache
from exchange.db.engine import Database
from exchange.db.held import HeldConnection

__all__ = ["APPLICATION_NAME", "PgChain"]

APPLICATION_NAME = "exchange-audit-writer"

#: The SQL type each stored field travels as (text where not named here).
_TYPES = {
    "at": "timestamptz",
    "items": "json",
    "records": "bigint",
    "status": "bigint",
    "latency_us": "bigint",
    "verdicts": "json",
    "version": "bigint",
}
#: The stored fields of an entry as the canonical JSON names them (``v`` is the version),
#: and their SQL types: each group travels as the JSON array of its entries' canonical
#: forms, already made for the hash (one join, where a column array per field cost the
#: writer thread a Python call per value), and PostgreSQL takes it apart.
_FIELDS: tuple[tuple[str, str], ...] = tuple(
    ("v" if name == "version" else name, _TYPES.get(name, "text")) for name in STORED
)
_VOLUME_COLUMNS = (
    ("day", "date"),
    ("consumer", "text"),
    ("provider", "text"),
    ("resource_code", "text"),
    ("calls", "bigint"),
    ("records", "bigint"),
)


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _append_sql() -> str:
    fields = [n for n, _ in _FIELDS]
    record = ", ".join(f'"{n}" {t}' for n, t in _FIELDS)
    # The table's columns, in the fields' order (the JSON keys are the fields' names).
    stored = [entry_column(n) for n in STORED]
    # Version 1 entries name no version in their hashed form.
    picked = ", ".join('coalesce(e."v", 1)' if n == "v" else f'e."{n}"' for n in fields)
    volume_names = [n for n, _ in _VOLUME_COLUMNS]
    volume_arrays = ", ".join(f"%s::{t}[]" for _, t in _VOLUME_COLUMNS)
    return f"""
WITH head AS (
    UPDATE audit_head SET seq = %s, hash = %s
    WHERE id = 1 AND seq = %s AND hash = %s
    RETURNING seq
), entries AS (
    INSERT INTO audit_entry ("seq", {_quoted(stored)}, "prev_hash", "hash")
    SELECT (SELECT seq FROM head) - %s + e.n, {picked}, e.prev, e.hash
    FROM ROWS FROM (
        json_to_recordset(%s::json) AS ({record}),
        unnest(string_to_array(%s, ',')),
        unnest(string_to_array(%s, ','))
    ) WITH ORDINALITY AS e({_quoted(fields)}, prev, hash, n)
    WHERE EXISTS (SELECT FROM head)
), volume AS (
    INSERT INTO audit_volume AS v ({_quoted(volume_names)})
    SELECT * FROM unnest({volume_arrays})
    WHERE EXISTS (SELECT FROM head)
    ON CONFLICT (day, consumer, provider, resource_code) DO UPDATE
    SET calls = v.calls + excluded.calls, records = v.records + excluded.records
)
SELECT count(*) FROM head
"""


#: One statement text for every group, so the server prepares it once per connection.
APPEND = _append_sql().encode()


class PgChain:
    """Appends to the chain of a PostgreSQL database from one thread (the audit writer's).

    Not thread-safe: the writer's thread is its only caller.
    """

    def __init__(self, db: Database) -> None:
        if db.is_sqlite:
            raise ValueError("PgChain is the PostgreSQL path; SQLite uses chain.append")
        # The writer's own connection (autocommit, never pinged; see exchange.db.held).
        self._held = HeldConnection(db.engine, APPLICATION_NAME)
        #: the head as this writer last committed it (None: read it under the lock)
        self._head: tuple[int, str] | None = None
        #: groups sent optimistically, and those that found the head moved
        self.optimistic = 0
        self.moved = 0

    @property
    def connected(self) -> bool:
        """Whether the writer's connection is open (closed by :meth:`close`)."""
        return self._held.opened

    def close(self) -> None:
        """Close the connection (by the writer's thread, or once it has ended)."""
        self._held.close()
        self._head = None

    def append(
        self, entries: Sequence[Entry], sign: Sign | None = None
    ) -> tuple[list[int], Checkpoint | None]:
        """Chain and commit ``entries`` (with a checkpoint at the new head when ``sign`` is
        given); return their seqs and the checkpoint. Raises what the database raises;
        nothing of the group is committed then."""
        if not entries:
            return [], None
        for entry in entries:
            if entry.at.tzinfo is None:  # as the column type refuses one (UTCDateTime)
                raise ValueError("naive datetime given to a UTCDateTime column")
        try:
            with self._held.using() as conn:  # closed if the server went away
                return self._append(conn, entries, sign)
        except BaseException:
            # Whether the server committed is unknown after a lost connection: read the
            # head again next time rather than trust the one remembered.
            self._head = None
            raise

    def _append(
        self, conn: psycopg.Connection[Any], entries: Sequence[Entry], sign: Sign | None
    ) -> tuple[list[int], Checkpoint | None]:
        head = self._head
        if sign is None and head is not None:
            params, seqs, new_head = _params(head, entries)
            self.optimistic += 1
            row = conn.execute(APPEND, params, prepare=True).fetchone()
            if row is not None and row[0] == 1:
                self._head = new_head
                return seqs, None
            self.moved += 1  # another process appended: chain again from its head
        with conn.transaction():
            found = conn.execute(
                "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
            ).fetchone()
            if found is None:
                raise RuntimeError("the audit chain has no head (ensure_head first)")
            params, seqs, new_head = _params((int(found[0]), str(found[1])), entries)
            row = conn.execute(APPEND, params, prepare=True).fetchone()
            if row is None or row[0] != 1:  # cannot happen under the row lock
                raise RuntimeError("the audit head moved under its row lock")
            made = _checkpoint(conn, sign, *new_head) if sign is not None else None
        self._head = new_head
        return seqs, made


def _params(
    head: tuple[int, str], entries: Sequence[Entry]
) -> tuple[list[Any], list[int], tuple[int, str]]:
    """The statement's parameters for ``entries`` chained after ``head``, their seqs and
    the new head."""
    seq, prev = head
    first = seq + 1
    bodies: list[bytes] = []
    prevs: list[str] = []
    hashes: list[str] = []
    volume: dict[tuple[dt.date, str, str, str], list[int]] = {}
    days = DayCache()
    for entry in entries:
        body = entry.canonical() if entry.version == VERSION else _full(entry)
        digest = chain_hash(prev, entry)
        bodies.append(body)
        prevs.append(prev)
        hashes.append(digest)
        prev = digest
        if entry.outcome == "ok" and entry.provider and entry.resource_code:
            key = (days.of(entry.at), entry.consumer, entry.provider, entry.resource_code)
            acc = volume.setdefault(key, [0, 0])
            acc[0] += 1
            acc[1] += entry.records
    seq += len(entries)
    rows = sorted(volume.items())
    params: list[Any] = [
        *(seq, prev, head[0], head[1]),
        len(entries),
        (b"[" + b",".join(bodies) + b"]").decode(),
        ",".join(prevs),
        ",".join(hashes),
        [k[0] for k, _ in rows],
        [k[1] for k, _ in rows],
        [k[2] for k, _ in rows],
        [k[3] for k, _ in rows],
        [v[0] for _, v in rows],
        [v[1] for _, v in rows],
    ]
    return params, list(range(first, seq + 1)), (seq, prev)


def _full(entry: Entry) -> bytes:
    """Every stored field of an entry of an older version (its canonical form leaves out
    the fields its version does not hash, but the row keeps them)."""
    return orjson.dumps(
        {
            **{name: getattr(entry, name) for name, _ in _FIELDS if name != "v"},
            "at": entry.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            "v": entry.version,
        }
    )


def _checkpoint(conn: psycopg.Connection[Any], sign: Sign, seq: int, hash_: str) -> Checkpoint:
    """A signed checkpoint at the new head, in the caller's transaction (as
    :func:`exchange.audit.chain.append` adds one)."""
    last = conn.execute(
        "SELECT n, seq, body, signature FROM audit_checkpoint ORDER BY n DESC LIMIT 1"
    ).fetchone()
    prev = (
        Checkpoint(n=int(last[0]), seq=int(last[1]), body=str(last[2]), signature=str(last[3]))
        if last is not None
        else None
    )
    made = following(sign, prev, seq, hash_)
    conn.execute(
        "INSERT INTO audit_checkpoint (n, seq, body, signature) VALUES (%s, %s, %s, %s)",
        (made.n, made.seq, made.body, made.signature),
    )
    return made
