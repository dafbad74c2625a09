"""Signed checkpoints over the chain, and the second place they are kept (the mirror).

A checkpoint says "entry ``seq`` of the chain has hash ``hash``", signed with the
exchange's Ed25519 key. Since every entry's hash covers all before it, a valid checkpoint
fixes the whole chain up to ``seq``: editing, deleting, reordering or rewriting anything
there (and recomputing every hash after it) no longer matches a signature the editor
cannot make. Checkpoints chain too (``prev`` is the digest of the previous one), so one
cannot be dropped from the middle unnoticed.

``kind`` says why it was written: ``open`` when a writer starts (at the head it found),
``run`` by count and time while it writes, ``close`` when it stops cleanly. Between a
``close`` that left no writer open and the next ``open``, nobody may append: entries
there are forged, except those the opening writer replayed from its journal (their lines
carried the key's MAC), which its ``open`` counts as ``replayed``.

Each checkpoint also goes to a mirror the operator chooses (an append-only file, by
default beside the state, or another database), so that deleting the whole log, its
checkpoints and head included, still leaves signed evidence of how far it went.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from exchange.audit.entry import GENESIS, canonical_json
from exchange.audit.keys import Signer
from exchange.audit.models import AuditCheckpoint
from exchange.db.engine import Database

OPEN, RUN, CLOSE = "open", "run", "close"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint as stored: the signed body and its signature."""

    n: int
    seq: int
    body: str
    signature: str

    def fields(self) -> dict[str, Any]:
        """The signed body's fields (raises ValueError if it is not a checkpoint body)."""
        data = orjson.loads(self.body)
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("not a checkpoint body")
        return data

    def digest(self) -> str:
        return hashlib.sha256(self.body.encode()).hexdigest()

    def line(self) -> bytes:
        return orjson.dumps({"n": self.n, "body": self.body, "signature": self.signature})


def make(
    signer: Signer,
    *,
    n: int,
    kind: str,
    writer: str,
    seq: int,
    hash: str,
    prev: Checkpoint | None,
    at: dt.datetime,
    replayed: int = 0,
) -> Checkpoint:
    extra = {"replayed": replayed} if replayed else {}
    body = canonical_json(
        {
            **extra,
            "v": 1,
            "n": n,
            "kind": kind,
            "writer": writer,
            "seq": seq,
            "hash": hash,
            "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            "prev": prev.digest() if prev is not None else GENESIS,
        }
    )
    return Checkpoint(n=n, seq=seq, body=body.decode(), signature=signer.sign(body))


def of_row(row: AuditCheckpoint) -> Checkpoint:
    return Checkpoint(n=row.n, seq=row.seq, body=row.body, signature=row.signature)


def to_row(cp: Checkpoint) -> dict[str, Any]:
    return {"n": cp.n, "seq": cp.seq, "body": cp.body, "signature": cp.signature}


class Mirror(Protocol):
    """The second, append-only place checkpoints are written to."""

    def write(self, checkpoints: list[Checkpoint]) -> None: ...

    def read(self) -> list[Checkpoint]: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


class FileMirror:
    """Checkpoints as JSON lines appended to a file (``O_APPEND``, flushed to disk).

    Keep it where the database's writers cannot reach it (another disk, another host's
    share, a file with the append-only attribute) for it to outlive a deleted log.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, checkpoints: list[Checkpoint]) -> None:
        if not checkpoints:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(cp.line() + b"\n" for cp in checkpoints)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[Checkpoint]:
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_bytes().splitlines():
            try:
                data = orjson.loads(line)
                found.append(
                    Checkpoint(
                        n=int(data["n"]),
                        seq=int(orjson.loads(data["body"])["seq"]),
                        body=str(data["body"]),
                        signature=str(data["signature"]),
                    )
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                # A torn last line (a kill mid-write) or garbage: a garbage line cannot
                # hide anything, since only validly signed checkpoints count.
                continue
        return found

    def describe(self) -> str:
        return str(self.path)

    def close(self) -> None:
        return None


class DatabaseMirror:
    """Checkpoints in the ``audit_checkpoint`` table of another database."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        AuditCheckpoint.__table__.create(self.db.engine, checkfirst=True)  # type: ignore[attr-defined]

    def write(self, checkpoints: list[Checkpoint]) -> None:
        with self.db.sessions() as session:
            for cp in checkpoints:
                try:
                    with session.begin_nested():
                        session.add(AuditCheckpoint(**to_row(cp)))
                except IntegrityError:
                    continue  # already there (written by another writer of this chain)
            session.commit()

    def read(self) -> list[Checkpoint]:
        with self.db.sessions() as session:
            rows = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.n))
            return [of_row(r) for r in rows]

    def describe(self) -> str:
        return self.db.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.db.dispose()


def mirror_for(spec: str) -> Mirror:
    """A database URL (``scheme://…``) or a file path."""
    if "://" in spec:
        return DatabaseMirror(spec)
    return FileMirror(Path(spec).expanduser())
