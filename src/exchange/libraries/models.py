"""Library tables: what each library gathers from where, the gathered records, conflicts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base

_BIG = BigInteger().with_variant(Integer(), "sqlite")


class LibrarySource(Base):
    """One topic a library gathers from, with its watermark and counts.

    ``watermark`` is the next export offset: it moves in the same transaction as the rows
    of the page it ends, so a gathering stopped anywhere resumes at the first page whose
    rows were not committed (a page re-read after a crash is upserted, not doubled).
    """

    __tablename__ = "library_source"
    __table_args__ = (UniqueConstraint("library", "resource_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    library: Mapped[str] = mapped_column(String(16))
    resource_code: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    topic_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(8))
    key_field: Mapped[str] = mapped_column(String(64))
    #: [[field, element, is_source, sharing_type], ...] in the order ``vals`` stores them
    fields: Mapped[list[Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="new")
    watermark: Mapped[int] = mapped_column(_BIG, default=0)
    total_rows: Mapped[int | None] = mapped_column(_BIG, default=None)
    #: records received from this source, every pass added up
    gathered: Mapped[int] = mapped_column(_BIG, default=0)
    #: records received in the current (or last) pass
    pass_gathered: Mapped[int] = mapped_column(_BIG, default=0)
    passes: Mapped[int] = mapped_column(Integer, default=0)
    application_id: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    pass_started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    refreshed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: numbers the writes of this source's records: every page (of an export or of
    #: change events) and every sweep that removes records takes the next number, and a
    #: record keeps the number of the write that last changed its values (``changed``)
    changes: Mapped[int] = mapped_column(_BIG, default=0, server_default="0")
    #: the change number up to which the quality check has looked at this source's
    #: records; 0: not yet, or its items changed: the check looks at all of them
    checked_until: Mapped[int] = mapped_column(_BIG, default=0)
    #: the library unit's pull subscription to the source's change events, and the last
    #: event applied (the feed's cursor): incremental passes apply events after it
    subscription_id: Mapped[int | None] = mapped_column(Integer, default=None)
    event_cursor: Mapped[int] = mapped_column(_BIG, default=0, server_default="0")
    events_applied: Mapped[int] = mapped_column(_BIG, default=0, server_default="0")
    #: the number of the source's latest pass from offset 0 (a full pass): the records it
    #: wrote carry it. Once that pass has read to the end of the export, the records of an
    #: older number are the ones the source no longer exports, and go (the sweep); a pass
    #: cut short never reaches its end, so it removes nothing.
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: the last generation whose sweep ran (a full pass is swept once, even if resumed)
    swept_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: records removed as gone from the source, every full pass added up
    removed: Mapped[int] = mapped_column(_BIG, default=0, server_default="0")
    #: records removed by the current (or last) full pass's sweep
    pass_removed: Mapped[int] = mapped_column(_BIG, default=0, server_default="0")


class LibraryRecord(Base):
    """One subject's record from one source: the gathered items' values as a JSON array in
    the source's ``fields`` order (names are not repeated per row), and when it was last
    refreshed (epoch seconds). Keyed (source, subject): a subject's record is a few
    index seeks, and rows of one source are contiguous for the quality check's joins."""

    __tablename__ = "library_record"
    __table_args__ = ({"sqlite_with_rowid": False},)

    source_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    subject: Mapped[str] = mapped_column(String(32), primary_key=True)
    vals: Mapped[str] = mapped_column(Text)
    refreshed: Mapped[int] = mapped_column(_BIG)
    #: the source's :attr:`LibrarySource.generation` when this record was last written
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: the source's :attr:`LibrarySource.changes` number of the write that last changed
    #: ``vals`` (a write of the same values keeps it): what the quality check looks at
    changed: Mapped[int] = mapped_column(_BIG, default=0, server_default="0")


class LibraryConflict(Base):
    """Two sources disagree about one subject (校核纠错): open until resolved."""

    __tablename__ = "library_conflict"
    __table_args__ = (
        UniqueConstraint("library", "subject", "kind", "element", "other_source_id"),
        Index("ix_library_conflict_status", "library", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    library: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    element: Mapped[str] = mapped_column(String(120))
    source_id: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(32))
    value: Mapped[str | None] = mapped_column(Text)
    other_source_id: Mapped[int] = mapped_column(Integer)
    other_provider: Mapped[str] = mapped_column(String(32))
    other_value: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    found_at: Mapped[dt.datetime]
    resolved_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(32), default=None)
    resolution: Mapped[str | None] = mapped_column(String(32), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
