"""Appending to the chain: entries, the daily volume and, when asked, a signed checkpoint,
all in one transaction under the chain head's row lock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange.audit import checkpoint
from exchange.audit.checkpoint import Checkpoint
from exchange.audit.entry import GENESIS, STORED, Entry, chain_hash, getter
from exchange.audit.keys import Signer
from exchange.audit.models import (
    AuditCheckpoint,
    AuditEntry,
    AuditHead,
    AuditVolume,
    entry_column,
)
from exchange.days import DayCache
from exchange.db.base import sqlite_time
from exchange.db.engine import Database
from exchange.db.rows import insert_rows


@dataclass(frozen=True, slots=True)
class Sign:
    """Ask :func:`append` to sign a checkpoint at the new head, in the same transaction."""

    signer: Signer
    kind: str
    writer: str
    at: dt.datetime
    #: entries replayed from the journal just before an ``open``
    replayed: int = 0


def ensure_head(db: Database) -> None:
    """Create the chain head row if this is a fresh database."""
    with db.sessions() as session:
        if session.get(AuditHead, 1) is not None:
            return
        session.add(AuditHead(id=1, seq=0, hash=GENESIS))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()  # another process created it first


def _lock_head(session: Session) -> tuple[int, str]:
    # Taking the write lock first (a no-op UPDATE) serialises writers on both backends
    # and spares SQLite the read-then-upgrade failure of a deferred transaction.
    if session.get_bind().dialect.name == "sqlite":
        # The group commit's statements go straight to the driver on SQLite: through the
        # ORM (statement construction, cache keys, bulk-update evaluation) they cost the
        # writer thread more Python than the rows they write (see append).
        conn = session.connection()
        conn.exec_driver_sql("UPDATE audit_head SET id = 1 WHERE id = 1")
        row = conn.exec_driver_sql("SELECT seq, hash FROM audit_head WHERE id = 1").one()
        return int(row[0]), str(row[1])
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(id=1))
    head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
    return int(head.seq), str(head.hash)


def _add_checkpoint(session: Session, sign: Sign, seq: int, hash_: str) -> Checkpoint:
    last = session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.n.desc()).limit(1)
    ).first()
    made = following(sign, checkpoint.of_row(last) if last is not None else None, seq, hash_)
    session.add(AuditCheckpoint(**checkpoint.to_row(made)))
    return made


def following(sign: Sign, prev: Checkpoint | None, seq: int, hash_: str) -> Checkpoint:
    """The checkpoint ``sign`` makes at ``seq``/``hash_`` after ``prev`` (the last one
    stored, None for the first): both writers' paths (this module, ``audit.pgchain``)."""
    return checkpoint.make(
        sign.signer,
        n=prev.n + 1 if prev is not None else 1,
        kind=sign.kind,
        writer=sign.writer,
        seq=seq,
        hash=hash_,
        prev=prev,
        at=sign.at,
        replayed=sign.replayed,
    )


def sign_head(db: Database, sign: Sign) -> Checkpoint:
    """A checkpoint at the head as it is now (a writer's ``open`` and ``close``)."""
    with db.sessions() as session:
        seq, hash_ = _lock_head(session)
        made = _add_checkpoint(session, sign, seq, hash_)
        session.commit()
    return made


#: What :func:`append` chains: an entry, or the canonical form of one (a journal line's
#: body: what the journaled writer keeps of an answered call until its commit).
Appendable = Entry | bytes


def entries_of(items: Sequence[Appendable]) -> list[Entry]:
    """Each item as an :class:`Entry` (a canonical form read back as recovery reads a
    journal line): for the writers that chain entry objects (PostgreSQL's)."""
    return [e if isinstance(e, Entry) else Entry.from_canonical(e) for e in items]


def append(
    db: Database, entries: Sequence[Appendable], sign: Sign | None = None
) -> tuple[list[int], Checkpoint | None]:
    """Chain and commit ``entries`` in one transaction (with a checkpoint at the new head
    when ``sign`` is given); return their seqs and the checkpoint.

    An entry given as its canonical form is stored as that form says, and hashed over those
    very bytes (what :meth:`Entry.canonical` made of it)."""
    # A turn beside the other background writers (the usage flush; see Database.writing)
    with db.writing(), db.sessions() as session:
        seq, prev = _lock_head(session)
        first = seq + 1
        conn = session.connection()
        if conn.dialect.name == "sqlite":
            # Straight to the driver, each row built once as the driver takes it: through
            # SQLAlchemy's per-row parameter handling, then a second pass through the
            # columns' bind processors, the writer thread spent (and so took from the
            # event loop, through the GIL) more Python per entry than SQLite did. The
            # rows go in a few multi-row statements (exchange.db.rows: why not executemany).
            row_of, row_of_fields = _sqlite_rows(conn.dialect)
            flat: list[Any] = []
            # An entry's volume facts: (at, consumer, provider, topic, records, outcome)
            facts: list[tuple[Any, ...]] = []
            for item in entries:
                seq += 1
                if isinstance(item, bytes):
                    # Read back from its canonical form: the journaled writer keeps no
                    # entry object from a call's answer to its commit (audit.writer).
                    fields = orjson.loads(item)
                    digest = sha256(prev.encode() + item).hexdigest()
                    flat += row_of_fields(seq, fields, prev, digest)
                    facts.append(_facts_of_fields(fields))
                else:
                    digest = sha256(prev.encode() + item.canonical()).hexdigest()
                    flat += row_of(seq, item, prev, digest)
                    facts.append(_facts_of(item))
                prev = digest
            insert_rows(conn, _SQLITE_INSERT, len(COLUMNS), flat)
            volume = _volume(facts)
        else:
            objects = entries_of(entries)
            values = getter(STORED)
            dicts: list[dict[str, Any]] = []
            for entry in objects:
                seq += 1
                digest = chain_hash(prev, entry)
                dicts.append(dict(zip(_KEYS, (seq, *values(entry), prev, digest), strict=True)))
                prev = digest
            # psycopg adapts JSON through SQLAlchemy's bind casts, not a bind processor:
            # the Core insert keeps that right (and batches rows in one round trip).
            conn.execute(AuditEntry.__table__.insert(), dicts)  # type: ignore[attr-defined]
            volume = _volume([_facts_of(entry) for entry in objects])
        add_volume(session, volume)
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, prev)
            )
        else:
            session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))
        made = _add_checkpoint(session, sign, seq, prev) if sign is not None else None
        session.commit()
    return list(range(first, seq + 1)), made


#: The entry table's columns in insert order, as the Core insert keys them (the entry's
#: field names) and as SQL names them (:func:`~exchange.audit.models.entry_column`).
_KEYS = ("seq", *STORED, "prev_hash", "hash")
COLUMNS = tuple(entry_column(key) for key in _KEYS)


#: The entries' insert on SQLite, before its rows (:func:`insert_rows`).
_SQLITE_INSERT = "INSERT INTO audit_entry ({})".format(", ".join(f'"{c}"' for c in COLUMNS))


_RowOf = Callable[[int, Entry, str, str], tuple[Any, ...]]
_RowOfFields = Callable[[int, dict[str, Any], str, str], tuple[Any, ...]]
_Bind = Callable[[Any], Any]


def _row_source(read: Callable[[str], str], converted: dict[str, str]) -> str:
    """The tuple expression of one stored row, written from ``STORED`` (the one definition
    of the fields), each field as ``read`` spells reading it unless ``converted`` says."""
    values = ", ".join(f"({converted[f]})" if f in converted else read(f) for f in STORED)
    return f"(seq, {values}, prev, digest)"


def _row_maker() -> Callable[[_Bind, _Bind], tuple[_RowOf, _RowOfFields]]:
    """What :func:`_sqlite_rows` returns, given the ``items`` and ``verdicts`` binders: one
    tuple expression per entry (read from an :class:`Entry`, or from its canonical form
    parsed), its body written from ``STORED`` once, as :mod:`dataclasses` writes its
    methods, so that a field added to the entry takes its column's place by itself. Built
    at run time from an attrgetter instead, the row cost a third more per entry on the
    writer thread."""
    of_entry = _row_source(
        lambda f: f"e.{f}",
        {
            "at": "sqlite_time(e.at)",
            "items": "items_bind(e.items)",
            "verdicts": "None if e.verdicts is None else verdicts_bind(e.verdicts)",
        },
    )
    # The canonical form: every field of its version, "v" for the version (absent: 1),
    # the time as UTC text; a field of a later version than the entry's reads as None.
    of_fields = _row_source(
        lambda f: f"d.get({f!r})",
        {
            "at": "utc_text(d['at'])",
            "items": "items_bind(d['items'])",
            "verdicts": "None if (v := d.get('verdicts')) is None else verdicts_bind(v)",
            "version": "d.get('v', 1)",
        },
    )
    source = (
        "def make(items_bind, verdicts_bind):\n"
        "    def row(seq, e, prev, digest):\n"
        f"        return {of_entry}\n"
        "    def row_of_fields(seq, d, prev, digest):\n"
        f"        return {of_fields}\n"
        "    return row, row_of_fields\n"
    )
    scope: dict[str, Any] = {"sqlite_time": sqlite_time, "utc_text": _utc_text}
    exec(source, scope)
    made: Callable[[_Bind, _Bind], tuple[_RowOf, _RowOfFields]] = scope["make"]
    return made


def _utc_text(at: str) -> str:
    """:func:`sqlite_time` of a canonical form's time, from its text: the canonical form
    writes every time in UTC to the microsecond (``2024-03-01T02:00:00.000000+00:00``),
    so the stored text is that text re-punctuated, without a datetime made and formatted
    (a third of the row's cost on the writer thread)."""
    if len(at) == 32 and at[10] == "T" and at.endswith("+00:00"):
        return f"{at[:10]} {at[11:26]}"
    return sqlite_time(dt.datetime.fromisoformat(at))


_MAKE_ROW = _row_maker()


def _sqlite_rows(dialect: Dialect) -> tuple[_RowOf, _RowOfFields]:
    """Builds an entry's row as the SQLite driver takes it (one tuple in ``COLUMNS``
    order, values stored as the columns' own processors would store them:
    tests/audit/test_chain.py compares), from an entry and from its parsed canonical form."""
    return _MAKE_ROW(_items_text(dialect), _binders(dialect)[2])


def _facts_of(entry: Entry) -> tuple[Any, ...]:
    return (
        entry.at,
        entry.consumer,
        entry.provider,
        entry.resource_code,
        entry.records,
        entry.outcome,
    )


def _facts_of_fields(d: dict[str, Any]) -> tuple[Any, ...]:
    return (d["at"], d["consumer"], d["provider"], d["resource_code"], d["records"], d["outcome"])


def _volume(facts: Sequence[tuple[Any, ...]]) -> dict[tuple[dt.date, str, str, str], list[int]]:
    """Calls and records delivered per (Beijing day, consumer, provider, topic), from each
    entry's facts (:func:`_facts_of`; the time as a datetime, or as canonical UTC text)."""
    volume: dict[tuple[dt.date, str, str, str], list[int]] = {}
    days = DayCache()
    for at, consumer, provider, code, records, outcome in facts:
        if outcome == "ok" and provider and code:
            day = days.of_text(at) if isinstance(at, str) else days.of(at)
            key = (day, consumer, provider, code)
            acc = volume.setdefault(key, [0, 0])
            acc[0] += 1
            acc[1] += records
    return volume


_BINDERS: dict[str, tuple[_Bind, _Bind, _Bind]] = {}


def _binders(dialect: Dialect) -> tuple[_Bind, _Bind, _Bind]:
    """The bind processors of the ``at``, ``items`` and ``verdicts`` columns for this
    dialect (a NULL ``verdicts`` is passed as None, not as JSON ``null``)."""
    found = _BINDERS.get(dialect.name)
    if found is None:
        table = AuditEntry.__table__
        made = []
        for name in ("at", "items", "verdicts"):
            processor = table.c[name].type.bind_processor(dialect)
            made.append(processor if processor is not None else _same)
        found = _BINDERS[dialect.name] = (made[0], made[1], made[2])
    return found


def _same(value: Any) -> Any:
    return value


#: Distinct item lists whose stored JSON :func:`_items_text` remembers (a grant's items,
#: sorted: a few per grant in use; past the bound it starts again empty).
ITEMS_MEMO = 4096
_ITEMS_TEXT: dict[str, dict[tuple[str, ...], Any]] = {}


def _items_text(dialect: Dialect) -> _Bind:
    """The ``items`` column's bind processor, remembering its output per item list.

    An entry's items are its grant's (sorted), so a group repeats a few lists: the JSON
    type's processor (the standard library's ``json.dumps``) was ~5 % of the writer
    thread's samples under spread lookups. The stored text is the processor's own.
    """
    memo = _ITEMS_TEXT.setdefault(dialect.name, {})
    process = _binders(dialect)[1]

    def bind(items: list[str]) -> Any:
        key = tuple(items)
        found = memo.get(key)
        if found is None:
            if len(memo) >= ITEMS_MEMO:
                memo.clear()
            found = memo[key] = process(items)
        return found

    return bind


#: The daily volume's upsert on SQLite, through the driver: before its rows, and after
#: them (:func:`insert_rows`).
_SQLITE_VOLUME = "INSERT INTO audit_volume (day, consumer, provider, resource_code, calls, records)"
_SQLITE_VOLUME_CONFLICT = (
    " ON CONFLICT (day, consumer, provider, resource_code) "
    "DO UPDATE SET calls = audit_volume.calls + excluded.calls, "
    "records = audit_volume.records + excluded.records"
)


def add_volume(session: Session, volume: dict[tuple[dt.date, str, str, str], list[int]]) -> None:
    """Add calls and records to the daily volume rows (one per day, consumer, provider
    and topic), creating the rows that do not exist yet."""
    if not volume:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        # A group holds a row per consumer and topic called in it: under lookups spread
        # over many topics, dozens per commit, and the ORM's bulk upsert cost the writer
        # thread ~15 % of its time (profiled). The day goes through the column's own
        # bind processor, so the stored text is what the ORM would have stored.
        conn = session.connection()
        day_bind = AuditVolume.__table__.c.day.type.bind_processor(conn.dialect) or _same
        values: list[Any] = []
        for (day, consumer, provider, code), (calls, records) in sorted(volume.items()):
            values += (day_bind(day), consumer, provider, code, calls, records)
        insert_rows(conn, _SQLITE_VOLUME, 6, values, tail=_SQLITE_VOLUME_CONFLICT)
        return
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    values = [
        {
            "day": day,
            "consumer": consumer,
            "provider": provider,
            "resource_code": code,
            "calls": calls,
            "records": records,
        }
        for (day, consumer, provider, code), (calls, records) in sorted(volume.items())
    ]
    stmt = dialect_insert(AuditVolume)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day", "consumer", "provider", "resource_code"],
        set_={
            "calls": AuditVolume.calls + stmt.excluded.calls,
            "records": AuditVolume.records + stmt.excluded.records,
        },
    )
    session.execute(stmt, values)
