"""Distribution tables: the change-event outbox, subscriptions and their dead letters.

The outbox (``distribution_event``) is written in the transaction that accepts a
provider's changes, so an accepted change is never lost; delivery reads it afterwards. A
subscription keeps its own cursor (the id of the last event it has been given), so the
feed can be replayed from any cursor whose events are still held.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, utcnow

#: 64-bit ids on PostgreSQL; SQLite's INTEGER PRIMARY KEY is 64-bit and autoincrements.
BigId = BigInteger().with_variant(Integer, "sqlite")


class ChangeEventRow(Base):
    """One record-level change of one topic, as its source department published it."""

    __tablename__ = "distribution_event"
    __table_args__ = (
        Index("ix_distribution_event_topic_id", "resource_code", "id"),
        # The source's own event id is its idempotency key: a publish retried after a
        # timeout answers the ids already given instead of writing the events again.
        Index("uq_distribution_event_source_id", "resource_code", "source_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    resource_code: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    # Stored as record_key: KEY is a keyword of SQLite (and of SQL).
    key: Mapped[str] = mapped_column("record_key", String(200), key="key")
    kind: Mapped[str] = mapped_column(String(32))
    #: when the change happened at the source (what delivery lag is measured from)
    changed_at: Mapped[dt.datetime] = mapped_column()
    accepted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: the record after the change (None for a deletion that sends no record)
    record: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    #: the exchange's request id of the call that published it
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    #: the source's own id of the event (optional; unique per topic while the event is held)
    source_id: Mapped[str | None] = mapped_column(String(128), default=None)


class Subscription(Base):
    """A consumer's standing order for a topic's changes (or the catalog's)."""

    __tablename__ = "distribution_subscription"
    __table_args__ = (
        Index("ix_distribution_subscription_consumer", "consumer"),
        Index("ix_distribution_subscription_due", "status", "delivery", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(ForeignKey("member_department.code"))
    #: "topic" (a topic's record changes) or "catalog" (topics registered/changed/retired)
    source: Mapped[str] = mapped_column(String(16))
    resource_code: Mapped[str | None] = mapped_column(String(16), default=None, index=True)
    provider: Mapped[str | None] = mapped_column(String(32), default=None)
    items: Mapped[list[str]] = mapped_column(JSON, default=list)
    filter: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    delivery: Mapped[str] = mapped_column(String(8))
    endpoint: Mapped[str | None] = mapped_column(String(2000), default=None)
    #: active | suspended
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: id of the last event handed over (push: acknowledged; pull: the cursor last read from)
    cursor: Mapped[int] = mapped_column(BigId, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Push state: the failing batch's attempts, when to try again and why it failed.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    first_failed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    #: which process delivers it, until when (several processes share the work)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    # Counters (events), kept in the row so every process and restart sees the same ones.
    delivered: Mapped[int] = mapped_column(BigId, default=0)
    retried: Mapped[int] = mapped_column(BigId, default=0)
    dead_lettered: Mapped[int] = mapped_column(BigId, default=0)
    last_delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: lag of the last delivered batch's newest event: source change → acknowledged (ms)
    last_lag_ms: Mapped[int | None] = mapped_column(Integer, default=None)


class DeadLetter(Base):
    """An event a push subscription could not deliver; the consumer retries or discards it."""

    __tablename__ = "distribution_dead_letter"
    __table_args__ = (Index("ix_distribution_dead_letter_sub", "subscription_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("distribution_subscription.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(BigId)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    dead_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: dead | retry (queued for another delivery by the consumer)
    status: Mapped[str] = mapped_column(String(8), default="dead")


class PruneMark(Base):
    """How far a topic's events were pruned: a cursor older than ``through`` cannot be
    replayed whole (the replay window starts there)."""

    __tablename__ = "distribution_pruned"

    resource_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: the newest event id pruned (every pruned event of the topic is at or below it)
    through: Mapped[int] = mapped_column(BigId, default=0)
    #: events of the topic pruned so far
    events: Mapped[int] = mapped_column(BigId, default=0)
    pruned_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
