"""``sqlite_time``: the text a row written straight to the driver stores for a time is the
text the ORM stores for the same time, so both read back and compare alike."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, select, text

from exchange.db.base import UTCDateTime, sqlite_time

TIMES = [
    dt.datetime(2026, 12, 4, 19, 30, 1, 123456, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 4, 19, 30, 1, tzinfo=dt.UTC),  # a whole second
    dt.datetime(2026, 1, 1, 8, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
]


@pytest.mark.parametrize("at", TIMES, ids=str)
def test_the_driver_row_holds_what_the_orm_stores(at: dt.datetime) -> None:
    engine = create_engine("sqlite://")
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
    )
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert().values(id=1, at=at))
        conn.exec_driver_sql("INSERT INTO t (id, at) VALUES (2, ?)", (sqlite_time(at),))
        stored = dict(conn.execute(text("SELECT id, at FROM t")).all())
        assert stored[2] == stored[1]
        read = conn.execute(select(table.c.at).order_by(table.c.id)).scalars().all()
        assert read == [at, at]
        # Compared as text against a time the ORM binds, as the audit's queries do.
        assert conn.execute(select(table.c.id).where(table.c.at >= at)).scalars().all() == [1, 2]


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        sqlite_time(dt.datetime(2026, 12, 4, 19, 30))
