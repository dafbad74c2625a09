"""Authorization tables: applications, their items' outcomes and history, disputes, grants,
usage, epoch."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, attribute_keyed_dict, mapped_column, relationship

from exchange.authz.schemas import (
    ApplicationStatus,
    DisputeDecision,
    GrantStatus,
    ItemOutcome,
    ReasonCode,
)
from exchange.db.base import Base, one_of, utcnow

# What a grant row stores; "expired" is read from valid_until, never written.
STORED_GRANT_STATUSES = tuple(s.value for s in GrantStatus if s is not GrantStatus.expired)
DISPUTE_STATUSES = ("open", "decided")


class Application(Base):
    """共享申请: one consumer's request for items of one topic, with per-item outcomes."""

    __tablename__ = "authz_application"
    __table_args__ = (
        Index("ix_authz_application_consumer_status", "consumer", "status"),
        Index("ix_authz_application_provider_status", "provider", "status"),
        one_of("status", ApplicationStatus),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(ForeignKey("member_department.code"))
    provider: Mapped[str] = mapped_column(ForeignKey("member_department.code"))
    resource_code: Mapped[str] = mapped_column(
        ForeignKey("catalog_topic.resource_code"), index=True
    )
    topic_name: Mapped[str] = mapped_column(String(200))
    #: the items asked for, in the order asked (each has its row in ``outcomes``)
    items: Mapped[list[str]] = mapped_column(JSON)
    #: item → its outcome; loaded with the application, changed in place
    outcomes: Mapped[dict[str, ApplicationItem]] = relationship(
        collection_class=attribute_keyed_dict("item"),
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )
    purpose_scope: Mapped[str] = mapped_column(String(32))
    purpose_text: Mapped[str] = mapped_column(Text)
    legal_function: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    daily_quota: Mapped[int | None] = mapped_column(Integer)
    delivery: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    submitted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    review_deadline: Mapped[dt.datetime | None] = mapped_column(default=None)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    reviewed_by: Mapped[str | None] = mapped_column(String(32), default=None)
    review_reason: Mapped[str | None] = mapped_column(Text, default=None)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("authz_grant.id"), default=None)
    #: the peer platform whose provider department reviews it (a topic mounted from the
    #: peer): the review here is refused, the peer's decision is mirrored
    forwarded_to: Mapped[str | None] = mapped_column(String(16), default=None)
    #: the peer platform's department this application was forwarded for (the consumer
    #: is then the peer platform's unit)
    on_behalf_of: Mapped[str | None] = mapped_column(String(64), default=None)


class ApplicationItem(Base):
    """One item of an application and its outcome: pending until reviewed, then granted,
    refused (不予共享, at once) or rejected, with the code and reason of the decision."""

    __tablename__ = "authz_application_item"
    __table_args__ = (one_of("outcome", ItemOutcome), one_of("code", ReasonCode))

    application_id: Mapped[int] = mapped_column(
        ForeignKey("authz_application.id", ondelete="CASCADE"), primary_key=True
    )
    item: Mapped[str] = mapped_column(String(64), primary_key=True)
    sharing_type: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text, default=None)

    def settle(self, outcome: ItemOutcome, code: ReasonCode, reason: str | None) -> None:
        self.outcome, self.code, self.reason = outcome.value, code.value, reason


class ApplicationEvent(Base):
    """Every step of an application and its dispute: who, when, what and why."""

    __tablename__ = "authz_application_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("authz_application.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Dispute(Base):
    """争议协调: negotiation between the two sides, then the operator's decision."""

    __tablename__ = "authz_dispute"
    __table_args__ = (
        one_of("status", DISPUTE_STATUSES),
        one_of("decision", DisputeDecision, nullable=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("authz_application.id", ondelete="CASCADE"), unique=True
    )
    consumer: Mapped[str] = mapped_column(String(32), index=True)
    provider: Mapped[str] = mapped_column(String(32), index=True)
    items: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text)
    decision: Mapped[str | None] = mapped_column(String(16), default=None)
    decided_items: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    decided_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str | None] = mapped_column(String(32), default=None)
    decision_reason: Mapped[str | None] = mapped_column(Text, default=None)


class DisputeMessage(Base):
    __tablename__ = "authz_dispute_message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("authz_dispute.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    author: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)


class Grant(Base):
    """授权: what a consumer may read of a topic, for what purpose, until when.

    At most one grant per (consumer, topic) is current: the newest row. Later decisions
    for the same pair extend it (items are added, terms renewed); a revoked or expired grant
    is kept as history and a new approval opens a new row.
    """

    __tablename__ = "authz_grant"
    __table_args__ = (
        Index("ix_authz_grant_consumer_topic", "consumer", "resource_code"),
        one_of("status", STORED_GRANT_STATUSES),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(ForeignKey("member_department.code"))
    provider: Mapped[str] = mapped_column(ForeignKey("member_department.code"), index=True)
    resource_code: Mapped[str] = mapped_column(
        ForeignKey("catalog_topic.resource_code"), index=True
    )
    items: Mapped[list[str]] = mapped_column(JSON)
    purpose_scope: Mapped[str] = mapped_column(String(32))
    purpose_text: Mapped[str] = mapped_column(Text)
    legal_function: Mapped[str] = mapped_column(Text)
    delivery: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    daily_quota: Mapped[int | None] = mapped_column(Integer)
    # Stored status is active | suspended | revoked; "expired" is read from valid_until.
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    changed_by: Mapped[str | None] = mapped_column(String(32), default=None)


class GrantUsage(Base):
    """Records exchanged per grant per platform day, flushed from each process's cache."""

    __tablename__ = "authz_usage"
    # The day's usage is read for every grant at once (warming the quota counters).
    __table_args__ = (Index("ix_authz_usage_day", "day"),)

    grant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    records: Mapped[int] = mapped_column(Integer, default=0)
