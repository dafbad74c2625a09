"""Licence tables: the type catalog and the licences issued through the platform.

The profile's starting state (17.76 M licences by mid-2020) is a count per type
(``licence_type.starting_count``), not rows: only licences issued through the API exist as
rows, and only they can be verified, used or revoked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base


class LicenceType(Base):
    """One licence type (证照类型) of the catalog."""

    __tablename__ = "licence_type"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(ForeignKey("member_department.code"), index=True)
    holder_kind: Mapped[str] = mapped_column(String(16))
    #: [{"field", "name", "data_type", "required"}]
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: None: long-term (长期)
    validity_years: Mapped[int | None] = mapped_column(Integer)
    online: Mapped[bool] = mapped_column(Boolean)
    #: licences of this type issued before the platform's records begin (the profile)
    starting_count: Mapped[int] = mapped_column(BigInteger)
    #: the last sequence number given to a licence of this type
    last_sequence: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer)


class Licence(Base):
    """One licence issued through the platform, with its signed verification code."""

    __tablename__ = "licence_record"
    __table_args__ = (
        UniqueConstraint("issuer", "external_ref", name="uq_licence_record_issuer_ref"),
        Index("ix_licence_record_holder", "holder_id", "type_code"),
        Index("ix_licence_record_status", "status", "revoked_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    type_code: Mapped[str] = mapped_column(ForeignKey("licence_type.code"), index=True)
    issuer: Mapped[str] = mapped_column(ForeignKey("member_department.code"))
    holder_kind: Mapped[str] = mapped_column(String(16))
    holder_id: Mapped[str] = mapped_column(String(18))
    holder_name: Mapped[str] = mapped_column(String(200))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_on: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    #: platform time of issue
    issued_at: Mapped[dt.datetime]
    #: the issuing system's own reference (业务流水号): a retried issue returns the licence
    external_ref: Mapped[str | None] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="valid")
    revoked_at: Mapped[dt.datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(200))
