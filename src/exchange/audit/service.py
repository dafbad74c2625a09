"""The hash-chained audit log, its group-committing writer, verification and statistics.

Each entry's ``hash`` is ``sha256(prev_hash + canonical JSON of the entry)``; the genesis
``prev_hash`` is 64 zeros. ``seq`` is not part of the hashed content, so moving an entry
shows up as a broken link ("reordered") rather than as an edit.

Durability: :class:`AuditWriter` resolves a caller's future only after the transaction
holding its entry has committed, and the broker answers only after that. Entries are
committed in groups by one thread: whatever queued while the previous group was being
committed goes into the next one, so a single caller waits for one commit and a loaded
broker amortises a commit over hundreds of entries.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange.audit.models import AuditEntry, AuditHead, AuditVolume
from exchange.audit.schemas import (
    AuditEntryOut,
    Problem,
    StatsOut,
    VerifyReport,
    Volume,
    VolumeStats,
)
from exchange.db.engine import Database
from exchange.errors import Unavailable

log = logging.getLogger(__name__)

GENESIS = "0" * 64
BEIJING = dt.timezone(dt.timedelta(hours=8))


@dataclass(slots=True)
class Entry:
    """What the broker records about one call, before it has a place in the chain."""

    request_id: str
    at: dt.datetime
    kind: str
    consumer: str
    provider: str | None
    resource_code: str | None
    items: list[str]
    case: str | None
    records: int
    outcome: str
    status: int
    latency_us: int

    def canonical(self) -> bytes:
        """The hashed content: sorted keys, UTC time to the microsecond, UTF-8."""
        return canonical_json(
            {
                "request_id": self.request_id,
                "at": self.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
                "kind": self.kind,
                "consumer": self.consumer,
                "provider": self.provider,
                "resource_code": self.resource_code,
                "items": list(self.items),
                "case": self.case,
                "records": self.records,
                "outcome": self.outcome,
                "status": self.status,
                "latency_us": self.latency_us,
            }
        )

    @classmethod
    def of(cls, row: AuditEntry) -> Entry:
        return cls(
            request_id=row.request_id,
            at=row.at,
            kind=row.kind,
            consumer=row.consumer,
            provider=row.provider,
            resource_code=row.resource_code,
            items=list(row.items),
            case=row.case,
            records=row.records,
            outcome=row.outcome,
            status=row.status,
            latency_us=row.latency_us,
        )


def canonical_json(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, entry: Entry) -> str:
    return hashlib.sha256(prev_hash.encode() + entry.canonical()).hexdigest()


class AuditUnavailable(Unavailable):
    """The entry could not be committed, so the exchange must not be answered."""

    code = "broker.audit_unavailable"


@dataclass(slots=True)
class _Pending:
    entry: Entry
    future: concurrent.futures.Future[int] = field(default_factory=concurrent.futures.Future)


_STOP = object()


@dataclass(slots=True)
class WriterStats:
    groups: int = 0
    entries: int = 0
    largest_group: int = 0
    commit_seconds: float = 0.0


class AuditWriter:
    """One thread that appends entries to the chain and commits them in groups.

    ``linger`` (seconds) lets a group wait for company after its first entry; 0 commits
    as soon as the previous commit is done, which already groups entries under load.
    """

    def __init__(
        self, db: Database, *, max_group: int = 2000, linger: float = 0.0, name: str = "audit"
    ) -> None:
        self._db = db
        self._max_group = max_group
        self._linger = linger
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._name = name
        self.stats = WriterStats()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        ensure_head(self._db)
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    def submit(self, entry: Entry) -> concurrent.futures.Future[int]:
        """Queue an entry; the future resolves to its ``seq`` once committed."""
        pending = _Pending(entry)
        if not self.running:
            pending.future.set_exception(AuditUnavailable("the audit writer is not running"))
            return pending.future
        self._queue.put(pending)
        return pending.future

    async def record(self, entry: Entry) -> int:
        """Append and wait for the commit (the broker's durable point)."""
        return await asyncio.wrap_future(self.submit(entry))

    def record_sync(self, entry: Entry, timeout: float = 30.0) -> int:
        return self.submit(entry).result(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            group: list[_Pending] = [first]  # type: ignore[list-item]
            deadline = time.monotonic() + self._linger
            while len(group) < self._max_group:
                try:
                    if self._linger > 0:
                        wait = deadline - time.monotonic()
                        item = (
                            self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                        )
                    else:
                        item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)  # type: ignore[arg-type]
            self._commit(group)

    def _commit(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            seqs = append(self._db, [p.entry for p in group])
        except Exception as exc:
            log.exception("audit group of %d entries failed to commit", len(group))
            error = AuditUnavailable(f"the audit log could not be written: {type(exc).__name__}")
            for pending in group:
                pending.future.set_exception(error)
            return
        elapsed = time.perf_counter() - started
        self.stats.groups += 1
        self.stats.entries += len(group)
        self.stats.largest_group = max(self.stats.largest_group, len(group))
        self.stats.commit_seconds += elapsed
        for pending, seq in zip(group, seqs, strict=True):
            pending.future.set_result(seq)


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


def _beijing_day(at: dt.datetime) -> dt.date:
    return at.astimezone(BEIJING).date()


def append(db: Database, entries: Sequence[Entry]) -> list[int]:
    """Chain and commit ``entries`` in one transaction; return their seqs."""
    with db.sessions() as session:
        # Taking the write lock first (a no-op UPDATE) serialises writers on both backends
        # and spares SQLite the read-then-upgrade failure of a deferred transaction.
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(id=1))
        head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
        seq, prev = int(head.seq), str(head.hash)
        rows: list[dict[str, Any]] = []
        volume: dict[tuple[dt.date, str, str, str], list[int]] = {}
        for entry in entries:
            seq += 1
            digest = chain_hash(prev, entry)
            rows.append(
                {
                    "seq": seq,
                    "request_id": entry.request_id,
                    "at": entry.at,
                    "kind": entry.kind,
                    "consumer": entry.consumer,
                    "provider": entry.provider,
                    "resource_code": entry.resource_code,
                    "items": entry.items,
                    "case": entry.case,
                    "records": entry.records,
                    "outcome": entry.outcome,
                    "status": entry.status,
                    "latency_us": entry.latency_us,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
            if entry.outcome == "ok" and entry.provider and entry.resource_code:
                key = (_beijing_day(entry.at), entry.consumer, entry.provider, entry.resource_code)
                acc = volume.setdefault(key, [0, 0])
                acc[0] += 1
                acc[1] += entry.records
        session.execute(insert(AuditEntry), rows)
        _add_volume(session, volume)
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))
        session.commit()
    return [r["seq"] for r in rows]


def _add_volume(session: Session, volume: dict[tuple[dt.date, str, str, str], list[int]]) -> None:
    if not volume:
        return
    dialect = session.get_bind().dialect.name
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


# --- verification ---------------------------------------------------------------------


def _walk(db: Database, chunk: int = 5000) -> Iterator[AuditEntry]:
    after = 0
    while True:
        with db.sessions() as session:
            rows = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq > after)
                .order_by(AuditEntry.seq)
                .limit(chunk)
            ).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def verify(db: Database) -> VerifyReport:
    """Walk the chain; stop at the first entry that was edited, deleted or reordered."""
    prev_seq, prev_hash, count = 0, GENESIS, 0
    for row in _walk(db):
        if row.seq != prev_seq + 1:
            missing = (
                f"{prev_seq + 1}" if row.seq == prev_seq + 2 else f"{prev_seq + 1}–{row.seq - 1}"
            )
            return VerifyReport(
                ok=False,
                entries=count,
                last_seq=prev_seq,
                first_bad_seq=prev_seq + 1,
                problem=Problem.deleted,
                message=f"entry {missing} is missing: seq jumps from {prev_seq} to {row.seq}",
            )
        if chain_hash(row.prev_hash, Entry.of(row)) != row.hash:
            return VerifyReport(
                ok=False,
                entries=count,
                last_seq=prev_seq,
                first_bad_seq=row.seq,
                problem=Problem.edited,
                message=f"entry {row.seq} was edited: its content no longer matches its hash",
            )
        if row.prev_hash != prev_hash:
            return VerifyReport(
                ok=False,
                entries=count,
                last_seq=prev_seq,
                first_bad_seq=row.seq,
                problem=Problem.reordered,
                message=(
                    f"entry {row.seq} does not follow entry {prev_seq}: entries were reordered "
                    "(or one was removed and the rest renumbered)"
                ),
            )
        prev_seq, prev_hash, count = row.seq, row.hash, count + 1
    with db.sessions() as session:
        head = session.get(AuditHead, 1)
    if head is not None and (head.seq, head.hash) != (prev_seq, prev_hash):
        return VerifyReport(
            ok=False,
            entries=count,
            last_seq=prev_seq,
            first_bad_seq=prev_seq + 1,
            problem=Problem.deleted,
            message=(
                f"the chain ends at entry {prev_seq} but its head records entry {head.seq}: "
                "entries were cut from the end"
            ),
        )
    return VerifyReport(ok=True, entries=count, last_seq=prev_seq, message="chain intact")


# --- reading --------------------------------------------------------------------------


def to_out(row: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        seq=row.seq,
        request_id=row.request_id,
        at=row.at,
        kind=row.kind,
        consumer=row.consumer,
        provider=row.provider,
        resource_code=row.resource_code,
        items=list(row.items),
        case=row.case,
        records=row.records,
        outcome=row.outcome,
        status=row.status,
        latency_ms=row.latency_us / 1000,
        hash=row.hash,
    )


def entries(
    session: Session,
    *,
    department: str | None = None,
    consumer: str | None = None,
    provider: str | None = None,
    resource_code: str | None = None,
    request_id: str | None = None,
    outcome: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[AuditEntry]:
    """Entries in chain order; ``department`` limits to those it consumed or provided."""
    stmt = select(AuditEntry).where(AuditEntry.seq > after)
    if department is not None:
        stmt = stmt.where((AuditEntry.consumer == department) | (AuditEntry.provider == department))
    for column, value in (
        (AuditEntry.consumer, consumer),
        (AuditEntry.provider, provider),
        (AuditEntry.resource_code, resource_code),
        (AuditEntry.request_id, request_id),
        (AuditEntry.outcome, outcome),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return list(session.scalars(stmt.order_by(AuditEntry.seq).limit(limit)))


def _volume(session: Session, day: dt.date | None) -> VolumeStats:
    def grouped(column: Any) -> dict[str, Volume]:
        stmt = select(column, func.sum(AuditVolume.calls), func.sum(AuditVolume.records)).group_by(
            column
        )
        if day is not None:
            stmt = stmt.where(AuditVolume.day == day)
        return {
            str(key): Volume(calls=int(calls or 0), records=int(records or 0))
            for key, calls, records in session.execute(stmt)
        }

    by_provider = grouped(AuditVolume.provider)
    return VolumeStats(
        records=sum(v.records for v in by_provider.values()),
        calls=sum(v.calls for v in by_provider.values()),
        by_provider=by_provider,
        by_consumer=grouped(AuditVolume.consumer),
        by_topic=grouped(AuditVolume.resource_code),
    )


def stats(session: Session, today: dt.date) -> StatsOut:
    """Records exchanged today and in total, by department and topic."""
    return StatsOut(day=today, today=_volume(session, today), total=_volume(session, None))


def count(session: Session) -> int:
    return int(session.scalar(select(func.count(AuditEntry.seq))) or 0)


def fetch_all(db: Database) -> Iterable[AuditEntry]:
    """Every entry in chain order (for export and the CLI)."""
    return _walk(db)
