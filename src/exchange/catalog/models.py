"""Catalog tables: topics, their versions, element sources (一数一源) and the change feed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from exchange.catalog.schemas import TopicStatus
from exchange.db.base import Base, one_of, utcnow


class Topic(Base):
    """One information-resource topic (信息资源). ``data`` holds the registrant's metadata."""

    __tablename__ = "catalog_topic"
    __table_args__ = (
        UniqueConstraint("category", "sequence", name="uq_catalog_topic_code"),
        Index("ix_catalog_topic_provider_status", "provider", "status"),
        one_of("status", TopicStatus),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(9))
    sequence: Mapped[str] = mapped_column(String(6))
    resource_code: Mapped[str] = mapped_column(String(16), unique=True)
    slug: Mapped[str | None] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    provider: Mapped[str] = mapped_column(ForeignKey("member_department.code"))
    classification: Mapped[str] = mapped_column(String(16))
    # Stored as topic_group: GROUP is a reserved word in SQL.
    group: Mapped[str] = mapped_column("topic_group", String(16), key="group")
    resource_type: Mapped[str] = mapped_column(String(16))
    sharing_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="published")
    version: Mapped[int] = mapped_column(Integer, default=1)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    search_text: Mapped[str] = mapped_column(Text)
    published_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    retire_reason: Mapped[str | None] = mapped_column(Text, default=None)


class TopicVersion(Base):
    __tablename__ = "catalog_topic_version"
    __table_args__ = (UniqueConstraint("topic_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("catalog_topic.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)


class ElementSource(Base):
    """一数一源: the primary key makes a second source of one element impossible."""

    __tablename__ = "catalog_element_source"

    element: Mapped[str] = mapped_column(String(120), primary_key=True)
    # Indexed: a topic's change or retirement finds its sources by topic.
    topic_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_topic.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(32))


class SequenceCounter(Base):
    """Last sequence number used under each front part of the resource code."""

    __tablename__ = "catalog_sequence"

    category: Mapped[str] = mapped_column(String(9), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Change(Base):
    """The change feed: one row per registration, change and retirement, in order."""

    __tablename__ = "catalog_change"

    cursor: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    topic_id: Mapped[int] = mapped_column(Integer, index=True)
    resource_code: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    by: Mapped[str] = mapped_column("changed_by", String(32), key="by")  # BY is reserved in SQL
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
