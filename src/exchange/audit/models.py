"""Audit tables: the hash-chained entries, the chain head, the signed checkpoints, and the
daily volume roll-up."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base

#: The outcome index's condition: the entries that are not answered calls (see
#: :func:`exchange.audit.service.entries`, which repeats it so that the index is usable).
NOT_OK = "outcome <> 'ok'"


class AuditEntry(Base):
    """One exchange or denial. ``seq`` is assigned by the writer, gapless, in chain order."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_consumer_seq", "consumer", "seq"),
        Index("ix_audit_entry_provider_seq", "provider", "seq"),
        # The log filtered by outcome (the denials, the provider failures) in chain order:
        # without it a rare outcome is found by reading the whole chain. Partial: "ok" is
        # nearly every entry (found at once in chain order without an index), and leaving
        # it out spares each answered call's insert an index entry (revision ba1e0c5d7f21).
        Index(
            "ix_audit_entry_outcome_seq",
            "outcome",
            "seq",
            sqlite_where=text(NOT_OK),
            postgresql_where=text(NOT_OK),
        ),
    )

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime]
    kind: Mapped[str] = mapped_column(String(16))
    consumer: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(32))
    resource_code: Mapped[str | None] = mapped_column(String(16))
    items: Mapped[list[str]] = mapped_column(JSON)
    #: the business case the caller named (X-Exchange-Case); stored as business_case,
    #: CASE being a reserved word in SQL
    case: Mapped[str | None] = mapped_column("business_case", String(200), key="case")
    records: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(48))
    status: Mapped[int] = mapped_column(Integer)
    latency_us: Mapped[int] = mapped_column(Integer)
    #: the caller's own X-Request-Id (the exchange assigns ``request_id``)
    correlation_id: Mapped[str | None] = mapped_column(String(64), default=None)
    #: a verification's outcomes by item and outcome (counts), never the values
    verdicts: Mapped[dict[str, dict[str, int]] | None] = mapped_column(
        JSON(none_as_null=True), default=None
    )
    #: version of the hashed form (``audit.entry``); 1 for entries written before versions
    version: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    @property
    def latency_ms(self) -> float:
        return self.latency_us / 1000


class AuditHead(Base):
    """The chain's last (seq, hash), locked by each group commit.

    Locking one row serialises writers of several broker processes on one PostgreSQL, and
    lets ``verify`` notice entries cut from the end of the chain.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed statement "the chain's entry ``seq`` has hash …" (``audit.checkpoint``).

    ``body`` is the signed canonical JSON itself (kind, writer, seq, hash, time and the
    digest of the previous checkpoint, so checkpoints chain too); ``seq`` and ``n`` are
    copies for queries, never trusted by verification.
    """

    __tablename__ = "audit_checkpoint"

    n: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    body: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(128))


class AuditVolume(Base):
    """Records exchanged per platform day, consumer, provider and topic (the daily figure)."""

    __tablename__ = "audit_volume"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    consumer: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    records: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)


def entry_column(field: str) -> str:
    """The stored column of an entry field (:data:`exchange.audit.entry.STORED`): the
    field's own name, except where that is a reserved word in SQL (``case``). The one
    mapping from field to column, for the writers' hand-written statements."""
    return AuditEntry.__mapper__.columns[field].name


__all__ = ["AuditCheckpoint", "AuditEntry", "AuditHead", "AuditVolume", "entry_column"]
