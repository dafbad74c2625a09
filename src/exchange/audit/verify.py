"""Verification: the chain, its signed checkpoints (database and mirror), the writers'
open/close record, the daily statistics and the journal's refused lines.

Everything is read in one snapshot (one transaction, repeatable read), so a writer
committing meanwhile cannot make a consistent log look inconsistent. Each kind of
tampering found becomes a :class:`Finding` with the first bad sequence number and why;
the report's top-level fields repeat the earliest one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from exchange.audit import checkpoint as cps
from exchange.audit.checkpoint import CLOSE, OPEN, Checkpoint, Mirror
from exchange.audit.entry import GENESIS, Entry, chain_hash
from exchange.audit.journal import REFUSED, refused_count
from exchange.audit.keys import Verifier
from exchange.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditVolume
from exchange.audit.schemas import Finding, Problem, VerifyReport
from exchange.days import DayCache
from exchange.db.engine import Database

_Key = tuple[dt.date, str, str, str]


def verify(
    db: Database,
    verifier: Verifier | None = None,
    mirror: Mirror | None = None,
    journal: Path | None = None,
) -> VerifyReport:
    """Check the whole log; without ``verifier`` only the hash chain, the head and the
    statistics are checked (what a key-less chain can prove: internal consistency)."""
    try:
        mirrored = mirror.read() if mirror is not None else []
    except (OSError, SQLAlchemyError) as exc:
        return _unreadable(
            f"the checkpoint mirror {mirror.describe() if mirror else ''} "
            f"cannot be read: {type(exc).__name__}"
        )
    try:
        with db.sessions() as session:
            _snapshot(session)
            walk = _Walk(session)
            stored = [
                cps.of_row(r)
                for r in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.n))
            ]
            walk.run(stored, mirrored)
            volume = _stored_volume(session)
            head = session.get(AuditHead, 1)
            head_at = (int(head.seq), str(head.hash)) if head is not None else None
            session.rollback()
    except SQLAlchemyError as exc:
        detail = str(exc.args[0]) if exc.args else ""
        return _unreadable(f"the audit tables cannot be read: {type(exc).__name__}: {detail}"[:400])

    findings: list[Finding] = []
    if walk.broken is not None:
        findings.append(walk.broken)
    if head_at is not None and head_at != (walk.last_seq, walk.last_hash) and walk.broken is None:
        findings.append(
            Finding(
                problem=Problem.deleted if head_at[0] > walk.last_seq else Problem.forged,
                first_bad_seq=walk.last_seq + 1 if head_at[0] > walk.last_seq else walk.last_seq,
                message=(
                    f"the chain ends at entry {walk.last_seq} but its head records entry "
                    f"{head_at[0]}: entries were cut from the end"
                    if head_at[0] > walk.last_seq
                    else f"the chain head (entry {head_at[0]}) does not match its last entry"
                ),
            )
        )
    signed_seq = 0
    valid: list[Checkpoint] = []
    if verifier is not None:
        valid, found = _checkpoints(verifier, stored, mirrored)
        findings += found
        cover, signed_seq = _covered(valid, walk)
        findings += cover
        findings += _writers(valid, walk.last_seq)
    findings += _stats(walk.volume, volume)
    refused = refused_count(journal)
    if refused:
        findings.append(
            Finding(
                problem=Problem.journal,
                message=(
                    f"{refused} journal line(s) failed authentication and were refused "
                    f"(forged or damaged): see {f'{journal}*/{REFUSED}' if journal else REFUSED}"
                ),
            )
        )
    # Earliest entry first; at one entry, the chain's own findings before the signatures'.
    order = list(Problem)
    findings.sort(
        key=lambda f: (f.first_bad_seq is None, f.first_bad_seq or 0, order.index(f.problem))
    )
    tail = max(0, walk.last_seq - signed_seq) if verifier is not None else 0
    report = VerifyReport(
        ok=not findings,
        entries=walk.count,
        last_seq=walk.last_seq,
        checkpoints=len(valid),
        signed_seq=signed_seq,
        unsigned_tail=tail,
        findings=findings,
        key_id=verifier.key_id() if verifier is not None else None,
        message="chain intact" if not findings else findings[0].message,
    )
    if findings:
        report.first_bad_seq = findings[0].first_bad_seq
        report.problem = findings[0].problem
    return report


def _unreadable(message: str) -> VerifyReport:
    finding = Finding(problem=Problem.unreadable, message=message)
    return VerifyReport(
        ok=False,
        entries=0,
        last_seq=0,
        problem=Problem.unreadable,
        message=message,
        findings=[finding],
    )


def _snapshot(session: Session) -> None:
    """Read everything as of one moment."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    else:
        # pysqlite opens no transaction for reads: a read transaction pins the snapshot.
        session.connection().exec_driver_sql("BEGIN")


class _Walk:
    """One pass over the entries in seq order: chain links, hashes at checkpointed seqs,
    and the volume the entries add up to."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.count = 0
        self.last_seq = 0
        self.last_hash = GENESIS
        self.broken: Finding | None = None
        self.hashes: dict[int, str] = {0: GENESIS}
        self.volume: dict[_Key, list[int]] = {}

    def rows(self, chunk: int = 5000) -> Iterator[Any]:
        after = 0
        table = AuditEntry.__table__
        while True:
            rows = self.session.execute(
                select(table).where(table.c.seq > after).order_by(table.c.seq).limit(chunk)
            ).all()
            if not rows:
                return
            yield from rows
            after = rows[-1].seq

    def run(self, stored: list[Checkpoint], mirrored: list[Checkpoint]) -> None:
        wanted = {cp.seq for cp in stored} | {cp.seq for cp in mirrored}
        prev_seq, prev_hash = 0, GENESIS
        days = DayCache()
        for row in self.rows():
            if row.seq in wanted:
                self.hashes[row.seq] = row.hash
            try:
                entry: Entry | None = Entry.of(row)
                digest = chain_hash(row.prev_hash, entry) if entry is not None else ""
            except (AttributeError, TypeError, ValueError):
                # A value no entry can hold (a NULL time, items that are not a list):
                # edited by hand; reported below, never a traceback.
                entry, digest = None, ""
            # The statistics are checked against every stored entry, chained or not.
            if (
                entry is not None
                and entry.outcome == "ok"
                and entry.provider
                and entry.resource_code
            ):
                key = (days.of(entry.at), entry.consumer, entry.provider, entry.resource_code)
                acc = self.volume.setdefault(key, [0, 0])
                acc[0] += 1
                acc[1] += entry.records
            if self.broken is not None:
                continue
            if row.seq != prev_seq + 1:
                missing = (
                    f"{prev_seq + 1}"
                    if row.seq == prev_seq + 2
                    else f"{prev_seq + 1}–{row.seq - 1}"
                )
                self.broken = Finding(
                    problem=Problem.deleted,
                    first_bad_seq=prev_seq + 1,
                    message=f"entry {missing} is missing: seq jumps from {prev_seq} to {row.seq}",
                )
                continue
            if entry is None or digest != row.hash:
                self.broken = Finding(
                    problem=Problem.edited,
                    first_bad_seq=row.seq,
                    message=f"entry {row.seq} was edited: its content no longer matches its hash",
                )
                continue
            if row.prev_hash != prev_hash:
                self.broken = Finding(
                    problem=Problem.reordered,
                    first_bad_seq=row.seq,
                    message=(
                        f"entry {row.seq} does not follow entry {prev_seq}: entries were "
                        "reordered (or one was removed and the rest renumbered)"
                    ),
                )
                continue
            prev_seq, prev_hash = row.seq, row.hash
            self.count += 1
        self.last_seq, self.last_hash = prev_seq, prev_hash


def _checkpoints(
    verifier: Verifier, stored: list[Checkpoint], mirrored: list[Checkpoint]
) -> tuple[list[Checkpoint], list[Finding]]:
    """The checkpoints that verify, in order, and what is wrong with the others."""
    findings: list[Finding] = []
    by_n: dict[int, Checkpoint] = {}
    in_db = {cp.n: cp for cp in stored}
    in_mirror: dict[int, Checkpoint] = {}
    for cp in mirrored:
        if _genuine(verifier, cp):
            in_mirror.setdefault(cp.n, cp)
    for n, cp in in_db.items():
        if _genuine(verifier, cp):
            by_n[n] = cp
            other = in_mirror.get(n)
            if other is not None and other.body != cp.body:
                findings.append(
                    Finding(
                        problem=Problem.checkpoint,
                        first_bad_seq=min(cp.seq, other.seq) + 1,
                        message=f"checkpoint {n} differs between the database and the mirror",
                    )
                )
        else:
            findings.append(
                Finding(
                    problem=Problem.checkpoint,
                    first_bad_seq=cp.seq,
                    message=(
                        f"checkpoint {n} (at entry {cp.seq}) has no valid signature: it was "
                        "forged or altered"
                    ),
                )
            )
    for n, cp in in_mirror.items():
        if n not in by_n:
            by_n[n] = cp
            if n not in in_db or not _genuine(verifier, in_db[n]):
                findings.append(
                    Finding(
                        problem=Problem.checkpoint,
                        first_bad_seq=cp.seq + 1 if n not in in_db else cp.seq,
                        message=(
                            f"signed checkpoint {n} (at entry {cp.seq}) is in the mirror but "
                            "not in the database: it was deleted"
                        ),
                    )
                )
    valid = [by_n[n] for n in sorted(by_n)]
    prev: Checkpoint | None = None
    for cp in valid:
        expected = prev.digest() if prev is not None else GENESIS
        if (
            cp.fields().get("prev") != expected
            or (prev is not None and cp.n != prev.n + 1)
            or (prev is None and cp.n != 1)
        ):
            findings.append(
                Finding(
                    problem=Problem.checkpoint,
                    first_bad_seq=(prev.seq if prev is not None else 0) + 1,
                    message=(
                        f"signed checkpoints are missing before checkpoint {cp.n}: "
                        "they were deleted from the database and the mirror"
                    ),
                )
            )
        prev = cp
    return valid, findings


def _genuine(verifier: Verifier, cp: Checkpoint) -> bool:
    if not verifier.verify(cp.body.encode(), cp.signature):
        return False
    try:
        fields = cp.fields()
    except ValueError:
        return False
    return fields.get("n") == cp.n and fields.get("seq") == cp.seq


def _covered(valid: list[Checkpoint], walk: _Walk) -> tuple[list[Finding], int]:
    """Each signed (seq, hash) against the chain; returns findings and the last seq the
    chain provably holds as signed."""
    findings: list[Finding] = []
    good = 0
    end = walk.last_seq if walk.broken is None else (walk.broken.first_bad_seq or 1) - 1
    stored_end = max(walk.hashes) if walk.hashes else 0
    for cp in valid:
        fields = cp.fields()
        if cp.seq > stored_end and cp.seq not in walk.hashes:
            findings.append(
                Finding(
                    problem=Problem.truncated,
                    first_bad_seq=walk.last_seq + 1,
                    message=(
                        f"signed checkpoint {cp.n} says the chain reached entry {cp.seq} with "
                        f"hash {str(fields['hash'])[:12]}…, but it ends at entry "
                        f"{walk.last_seq}: entries were cut or the log was deleted and reset"
                    ),
                )
            )
            break
        if walk.hashes.get(cp.seq) != fields["hash"]:
            findings.append(
                Finding(
                    problem=Problem.rewritten,
                    first_bad_seq=good + 1,
                    message=(
                        f"entries {good + 1}–{cp.seq} no longer match signed checkpoint "
                        f"{cp.n}: they were rewritten (hashes recomputed) after signing"
                    ),
                )
            )
            break
        if cp.seq <= end:
            good = max(good, cp.seq)
    return findings, good


def _writers(valid: list[Checkpoint], last_seq: int) -> list[Finding]:
    """Entries appended while no exchange had the log open are forged: after a clean stop
    (``close``) no writer appends until the next one opens at the head it finds."""
    live: set[str] = set()
    # Entries after ``idle_from`` need an open writer. The very first checkpoint's
    # ``open`` adopts what a chain held before it was ever signed (an upgraded log).
    first = valid[0].fields() if valid else {}
    idle_from: int | None = valid[0].seq if first.get("n") == 1 and first.get("kind") == OPEN else 0
    for cp in valid:
        fields = cp.fields()
        kind, writer = fields.get("kind"), str(fields.get("writer"))
        if idle_from is not None and cp.seq > idle_from:
            # An opening writer vouches for what it replayed from its authenticated journal.
            vouched = int(fields.get("replayed", 0)) if kind == OPEN else 0
            if cp.seq - vouched > idle_from:
                return [_forged(idle_from, cp.seq - vouched, f"before checkpoint {cp.n} ({kind})")]
        if kind == OPEN:
            live.add(writer)
        elif kind == CLOSE:
            live.discard(writer)
        idle_from = cp.seq if not live else None
    if idle_from is not None and last_seq > idle_from:
        return [_forged(idle_from, last_seq, "after the last clean stop")]
    return []


def _forged(after: int, upto: int, where: str) -> Finding:
    span = f"{after + 1}" if upto == after + 1 else f"{after + 1}–{upto}"
    return Finding(
        problem=Problem.forged,
        first_bad_seq=after + 1,
        message=(
            f"entries {span} were appended while no exchange had the log open ({where}): "
            "no signed checkpoint vouches for them"
        ),
    )


def _stored_volume(session: Session) -> dict[_Key, tuple[int, int]]:
    return {
        (r.day, r.consumer, r.provider, r.resource_code): (int(r.calls), int(r.records))
        for r in session.execute(select(AuditVolume.__table__))
    }


def _stats(derived: dict[_Key, list[int]], stored: dict[_Key, tuple[int, int]]) -> list[Finding]:
    """The daily statistics must be what the verified entries add up to."""
    for key in sorted(set(derived) | set(stored)):
        want = tuple(derived.get(key, (0, 0)))
        have = stored.get(key, (0, 0))
        if want != have:
            day, consumer, provider, code = key
            return [
                Finding(
                    problem=Problem.stats,
                    message=(
                        f"the statistics for {day} ({consumer} from {provider}, topic {code}) "
                        f"say {have[0]} calls / {have[1]} records but the entries add up to "
                        f"{want[0]} / {want[1]}: the statistics were altered"
                    ),
                )
            ]
    return []
