"""Credit tables: published decisions, the decisions units announced (what is due), and
the starting counts a profile carries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base

_ID = BigInteger().with_variant(Integer, "sqlite")


class CreditRecord(Base):
    """One published administrative permit (行政许可) or penalty (行政处罚) decision.

    Amounts are kept in fen (分) as integers: exact, and SQLite has no decimal type.
    """

    __tablename__ = "credit_record"
    __table_args__ = (
        UniqueConstraint("submitter", "kind", "decision_number"),
        Index("ix_credit_record_code_date", "credit_code", "decision_date"),
        Index("ix_credit_record_submitter_id", "submitter", "id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    submitter: Mapped[str] = mapped_column(String(32))
    decision_number: Mapped[str] = mapped_column(String(100))
    party_kind: Mapped[str] = mapped_column(String(20))
    party_name: Mapped[str] = mapped_column(String(200), index=True)
    credit_code: Mapped[str | None] = mapped_column(String(18))
    legal_representative: Mapped[str | None] = mapped_column(String(100))
    id_number: Mapped[str | None] = mapped_column(String(18))
    category: Mapped[str] = mapped_column(String(100))
    legal_basis: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    violation_facts: Mapped[str | None] = mapped_column(Text)
    fine_fen: Mapped[int | None] = mapped_column(BigInteger)
    confiscated_fen: Mapped[int | None] = mapped_column(BigInteger)
    major: Mapped[bool] = mapped_column(Boolean, default=False)
    licence_number: Mapped[str | None] = mapped_column(String(100))
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    decision_date: Mapped[dt.date] = mapped_column(Date)
    authority: Mapped[str] = mapped_column(String(200))
    authority_code: Mapped[str] = mapped_column(String(18))
    submitted_at: Mapped[dt.datetime]
    due_at: Mapped[dt.datetime]
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    #: last day the public sees it (``rules.publicity_until``); None: always (permits)
    public_until: Mapped[dt.date | None] = mapped_column(Date)


class CreditNotice(Base):
    """A decision a unit's business system announced on the day it was made (应公示清单).

    It is what makes a *missing* submission countable: a notice whose deadline passed with
    no record published is missing.
    """

    __tablename__ = "credit_notice"
    __table_args__ = (
        UniqueConstraint("submitter", "kind", "decision_number"),
        Index("ix_credit_notice_open_due", "record_id", "due_at"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    submitter: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))
    decision_number: Mapped[str] = mapped_column(String(100))
    decision_date: Mapped[dt.date] = mapped_column(Date)
    due_at: Mapped[dt.datetime]
    noticed_at: Mapped[dt.datetime]
    record_id: Mapped[int | None] = mapped_column(_ID, default=None)


class CreditBaseline(Base):
    """Counts a unit carries from before the exchange (a profile's starting state): they
    add to the live counts in the statistics but are not rows (:mod:`exchange.credit.baseline`)."""

    __tablename__ = "credit_baseline"

    unit: Mapped[str] = mapped_column(String(32), primary_key=True)
    profile: Mapped[str] = mapped_column(String(32))
    permits: Mapped[int] = mapped_column(BigInteger, default=0)
    penalties: Mapped[int] = mapped_column(BigInteger, default=0)
    late: Mapped[int] = mapped_column(BigInteger, default=0)
    missing: Mapped[int] = mapped_column(BigInteger, default=0)
