"""Recovery of what a killed audit writer journaled: the uncommitted tail of a journal
replayed into the chain, and every journal no live process holds swept."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import select

from exchange.audit import chain
from exchange.audit.entry import Entry
from exchange.audit.journal import Journal, Refused, read_entries, slots
from exchange.audit.keys import Signer
from exchange.audit.models import AuditEntry
from exchange.db.engine import Database

log = logging.getLogger(__name__)


def replay(db: Database, journal: Journal, signer: Signer) -> tuple[int, list[Refused]]:
    """Commit the journaled entries a dead process had not committed; delete its segments.

    The writer commits in journal order, so the committed entries form a prefix of the
    journal: the uncommitted tail starts after the last journaled entry found in the
    database (compared by canonical content, which ``request_id`` alone does not fix).
    Lines whose MAC does not check are refused (and kept aside), never chained.
    """
    lines, refused = read_entries(journal, signer)
    if not lines:
        journal.drop_before(1 << 62)
        return 0, refused
    pending: list[Entry | None] = []
    for line in lines:
        try:
            pending.append(Entry.from_canonical(line))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.error("audit journal: skipping an unreadable line %r", line[:120])
            pending.append(None)
    committed: set[bytes] = set()
    ids = sorted({e.request_id for e in pending if e is not None})
    with db.sessions() as session:
        for i in range(0, len(ids), 500):
            rows = session.scalars(
                select(AuditEntry).where(AuditEntry.request_id.in_(ids[i : i + 500]))
            )
            committed.update(Entry.of(row).canonical() for row in rows)
    done = max((i + 1 for i, line in enumerate(lines) if line in committed), default=0)
    tail = [e for e in pending[done:] if e is not None]
    for i in range(0, len(tail), 2000):
        chain.append(db, tail[i : i + 2000])
    journal.drop_before(1 << 62)
    if tail:
        log.warning("audit journal: replayed %d uncommitted entries", len(tail))
    return len(tail), refused


@dataclass(frozen=True, slots=True)
class Recovery:
    """What :func:`recover` did: entries replayed, lines refused (None: a live broker
    holds every journal and commits its entries itself); ``held``: journals a live
    process holds, left to it."""

    replayed: int | None
    refused: list[Refused] = field(default_factory=list)
    held: int = 0


def recover(db: Database, directory: Path, signer: Signer) -> Recovery:
    """Replay the journals dead brokers left (``exchange audit verify`` runs this first):
    every journal of the database whose first journal is ``directory`` that no live
    process holds."""
    found = slots(directory)
    if not found:
        return Recovery(0)
    chain.ensure_head(db)
    replayed, refused, held = 0, [], 0
    for path in found:
        try:
            journal = Journal(path)
        except BlockingIOError:
            held += 1
            continue
        try:
            n, bad = replay(db, journal, signer)
        finally:
            journal.close()
        replayed += n
        refused += bad
    return Recovery(None if held == len(found) else replayed, refused, held)
