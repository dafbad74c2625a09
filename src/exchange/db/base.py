"""Declarative base with a naming convention, so constraint names are stable on every backend."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import CheckConstraint, DateTime, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def one_of(column: str, values: Iterable[str], *, nullable: bool = False) -> CheckConstraint:
    """CHECK that a status column holds only the values the code's enum knows.

    Named after the column (``ck_<table>_<column>`` by the convention). SQLite databases
    migrated from before these checks enforce them with triggers instead (see the revision
    that added them): SQLite cannot add a CHECK to an existing table without rebuilding it.
    """
    condition = f"{column} IN ({', '.join(repr(str(v)) for v in values)})"
    if nullable:
        condition = f"{column} IS NULL OR {condition}"
    return CheckConstraint(condition, name=column)


def utcnow() -> dt.datetime:
    """Wall-clock UTC now (the simulated clock lives in exchange.clock)."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite drops tzinfo on the way back; normalising here keeps comparisons between stored
    and computed times from raising "can't compare offset-naive and offset-aware".
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self,
        value: dt.datetime | None,
        dialect: Dialect,  # noqa: ARG002
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self,
        value: dt.datetime | None,
        dialect: Dialect,  # noqa: ARG002
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def sqlite_time(at: dt.datetime) -> str:
    """The text SQLite stores for a :class:`UTCDateTime` value, as the ORM stores it (in UTC,
    SQLAlchemy's SQLite format: ``2024-03-01 02:00:00.000000``), for rows written straight
    to the driver. The sqlite3 adapter's own ``…+00:00`` reads back the same but compares
    wrongly, as text, against a time the ORM binds."""
    if at.tzinfo is not dt.UTC:  # the clock's own times are (no conversion to pay)
        if at.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        at = at.astimezone(dt.UTC)
    return at.isoformat(" ", "microseconds")[:-6]  # without "+00:00"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime}  # noqa: RUF012
