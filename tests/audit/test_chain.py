"""Appending to the chain: the head, the entries and the daily volume in one transaction
(SQLite writes them through the driver, PostgreSQL through SQLAlchemy: both checked)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import event, select
from tests.audit.entries import T0, sample_entry

from exchange import days
from exchange.audit import chain
from exchange.audit.entry import GENESIS, chain_hash
from exchange.audit.models import AuditEntry, AuditHead, AuditVolume, entry_column
from exchange.context import AppContext
from exchange.db import rows


def test_append_moves_the_head_and_adds_up_the_volume_across_groups(ctx: AppContext) -> None:
    chain.ensure_head(ctx.db)
    with ctx.db.sessions() as s:
        start = s.get(AuditHead, 1)
        assert start is not None
        base_seq, base_hash = start.seq, start.hash
    first = [sample_entry(i, records=2) for i in range(3)]
    # The second group: the same pair again, another topic, a denial (no volume), and a
    # call a day later in Beijing time (T0 is 10:00 there).
    second = [
        sample_entry(3, records=5),
        sample_entry(4, resource_code="101001001/000002"),
        sample_entry(5, outcome="client.no_grant", status=403, records=0),
        sample_entry(6, at=T0 + dt.timedelta(hours=15)),
    ]
    seqs1, made1 = chain.append(ctx.db, first)
    seqs2, made2 = chain.append(ctx.db, second)
    assert made1 is None
    assert made2 is None
    assert seqs1 == [base_seq + 1, base_seq + 2, base_seq + 3]
    assert seqs2 == list(range(base_seq + 4, base_seq + 8))

    with ctx.db.sessions() as s:
        rows = s.execute(
            select(AuditEntry.seq, AuditEntry.prev_hash, AuditEntry.hash)
            .where(AuditEntry.seq > base_seq)
            .order_by(AuditEntry.seq)
        ).all()
        prev = base_hash if base_seq else GENESIS
        for (_, prev_hash, hash_), entry in zip(rows, first + second, strict=True):
            assert prev_hash == prev
            assert hash_ == chain_hash(prev, dataclasses.replace(entry, cached=None))
            prev = hash_
        head = s.get(AuditHead, 1)
        assert head is not None
        assert (head.seq, head.hash) == (base_seq + 7, prev)
        volume = {
            (v.day, v.consumer, v.provider, v.resource_code): (v.calls, v.records)
            for v in s.scalars(select(AuditVolume))
        }
    day = days.beijing_day(T0)
    assert volume == {
        (day, "mzj", "gaj", "101001001/000001"): (4, 11),
        (day, "mzj", "gaj", "101001001/000002"): (1, 1),
        (day + dt.timedelta(days=1), "mzj", "gaj", "101001001/000001"): (1, 1),
    }


def test_each_entry_stores_its_own_items_past_the_memo_bound(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer remembers the stored JSON of item lists: a group of entries under a few
    lists, and more lists than the memo holds, each store their own items."""
    monkeypatch.setattr(chain, "ITEMS_MEMO", 3)
    # A memo of its own: the module's is per dialect and process, and earlier tests on the
    # same dialect may have filled it with these very lists past the patched bound.
    monkeypatch.setattr(chain, "_ITEMS_TEXT", {})
    lists = [["a"], ["a", "b"], ["b"], ["c", "d"], ["a", "b"], [], ["d"], ["a"]]
    chain.ensure_head(ctx.db)
    chain.append(ctx.db, [sample_entry(i, items=items) for i, items in enumerate(lists)])
    chain.append(ctx.db, [sample_entry(10 + i, items=items) for i, items in enumerate(lists)])
    with ctx.db.sessions() as session:
        stored = session.scalars(select(AuditEntry.items).order_by(AuditEntry.seq)).all()
    assert stored == lists + lists
    assert all(len(memo) <= 3 for memo in chain._ITEMS_TEXT.values())


def test_rows_written_through_the_driver_store_what_the_orm_stores(ctx: AppContext) -> None:
    """SQLite's group commit builds each row itself (values converted as the columns'
    processors convert them): every stored value, read back raw, equals the ORM's
    insert of the same entry. Times on the second, in another zone, with microseconds."""
    beijing = dt.timezone(dt.timedelta(hours=8))
    variants = [
        sample_entry(0),
        sample_entry(1, at=T0.replace(microsecond=123456)),
        sample_entry(2, at=dt.datetime(2024, 3, 1, 23, 59, 59, 999999, tzinfo=beijing)),
        sample_entry(3, items=["姓名", "id_number"], case="低保核对 ☃", correlation_id="c-1"),
        sample_entry(4, kind="verify", verdicts={"name": {"match": 2, "unknown": 1}}),
        sample_entry(5, provider=None, resource_code=None, outcome="client.bad_key", status=401),
    ]
    chain.ensure_head(ctx.db)
    seqs, _ = chain.append(ctx.db, variants)
    copies = [dataclasses.replace(e, request_id=f"orm-{i}") for i, e in enumerate(variants)]
    with ctx.db.sessions() as s:
        s.add_all(
            AuditEntry(
                seq=10_000 + i,
                prev_hash=GENESIS,
                hash=GENESIS,
                **{f: getattr(e, f) for f in chain.STORED},
            )
            for i, e in enumerate(copies)
        )
        s.commit()
    columns = ", ".join(f'"{entry_column(c)}"' for c in chain.STORED if c != "request_id")

    def raw(where: str) -> list[tuple[object, ...]]:
        with ctx.db.engine.connect() as conn:
            return list(
                conn.exec_driver_sql(
                    f"SELECT {columns} FROM audit_entry WHERE {where} ORDER BY seq"
                ).all()
            )

    assert raw(f"seq BETWEEN {seqs[0]} AND {seqs[-1]}") == raw("seq >= 10000")


def test_an_entry_given_as_its_canonical_form_is_stored_and_hashed_as_the_entry(
    ctx: AppContext,
) -> None:
    """The journaled writer keeps only an answered call's canonical form until its commit:
    chained from those bytes, an entry stores every value, hashes and adds to the volume
    exactly as the entry itself does. Older versions of the form (no correlation id, no
    verdicts) store those as NULL."""
    beijing = dt.timezone(dt.timedelta(hours=8))
    variants = [
        sample_entry(0),
        sample_entry(1, at=T0.replace(microsecond=123456), records=4),
        sample_entry(2, at=dt.datetime(2024, 3, 1, 23, 59, 59, 999999, tzinfo=beijing)),
        sample_entry(3, at=T0 + dt.timedelta(hours=14)),  # the next day in Beijing
        sample_entry(4, items=["姓名", "id_number"], case="低保核对 ☃\\x00", correlation_id="c"),
        sample_entry(5, kind="verify", verdicts={"name": {"match": 2, "unknown": 1}}),
        sample_entry(6, provider=None, resource_code=None, outcome="client.bad_key", status=401),
        sample_entry(7, outcome="provider.timeout", status=504, records=0),
        sample_entry(8, version=1),
        sample_entry(9, version=2, correlation_id="c-2"),
    ]
    chain.ensure_head(ctx.db)

    def stored(group: list[chain.Appendable]) -> list[tuple[object, ...]]:
        """The group's stored values, each row's hash checked against its entry's."""
        seqs, _ = chain.append(ctx.db, group)
        columns = ", ".join(f'"{entry_column(c)}"' for c in chain.STORED)
        with ctx.db.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT {columns}, prev_hash, hash FROM audit_entry "
                f"WHERE seq BETWEEN {seqs[0]} AND {seqs[-1]} ORDER BY seq"
            ).all()
        for row, entry in zip(rows, variants, strict=True):
            assert row[-1] == chain_hash(str(row[-2]), dataclasses.replace(entry, cached=None))
        return [tuple(row[:-2]) for row in rows]

    def volume() -> dict[tuple[object, ...], tuple[int, int]]:
        with ctx.db.sessions() as s:
            return {
                (v.day, v.consumer, v.provider, v.resource_code): (v.calls, v.records)
                for v in s.scalars(select(AuditVolume))
            }

    before = volume()
    as_entries = stored(list(variants))
    after_entries = volume()
    assert stored([e.canonical() for e in variants]) == as_entries
    # The second group counted as the first: 8 answered calls (one of them with 4
    # records), the one at Beijing midnight on the next day.
    day = days.beijing_day(T0)
    key = ("mzj", "gaj", "101001001/000001")
    added = {(day, *key): (7, 10), (day + dt.timedelta(days=1), *key): (1, 1)}

    def grown(now: dict[tuple[object, ...], tuple[int, int]], times: int) -> bool:
        return all(
            now[k] == tuple(b + times * a for a, b in zip(v, before.get(k, (0, 0)), strict=True))
            for k, v in added.items()
        )

    assert grown(after_entries, 1)
    assert grown(volume(), 2)


def test_a_group_goes_in_multi_row_statements_and_is_stored_whole(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's group commit inserts its entries and volume rows a statement per
    ``ROWS_PER_STATEMENT`` rows, never one step per row (``exchange.db.rows`` says why): a
    group spread over several statements is stored whole, chained in order, its volume
    added up."""
    if not ctx.db.is_sqlite:
        pytest.skip("SQLite's group commit (PostgreSQL's is audit.pgchain's)")
    monkeypatch.setattr(rows, "ROWS_PER_STATEMENT", 4)
    chain.ensure_head(ctx.db)
    codes = [f"101001001/00000{k}" for k in range(1, 7)]
    group = [sample_entry(i, resource_code=codes[i % 6], records=i) for i in range(10)]
    seen: list[tuple[str, bool]] = []

    def before(*args: object) -> None:
        seen.append((str(args[2]), bool(args[5])))

    event.listen(ctx.db.engine, "before_cursor_execute", before)
    try:
        seqs, _ = chain.append(ctx.db, group)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", before)
    assert not [sql for sql, many in seen if many]
    entries = [sql for sql, _ in seen if sql.startswith("INSERT INTO audit_entry")]
    volume = [sql for sql, _ in seen if sql.startswith("INSERT INTO audit_volume")]
    assert [sql.count("), (") + 1 for sql in entries] == [4, 4, 2]
    assert [sql.count("), (") + 1 for sql in volume] == [4, 2]

    with ctx.db.sessions() as s:
        stored = s.execute(
            select(AuditEntry.seq, AuditEntry.request_id, AuditEntry.prev_hash, AuditEntry.hash)
            .where(AuditEntry.seq.in_(seqs))
            .order_by(AuditEntry.seq)
        ).all()
        by_topic = {v.resource_code: (v.calls, v.records) for v in s.scalars(select(AuditVolume))}
    assert [r.request_id for r in stored] == [e.request_id for e in group]
    prev = stored[0].prev_hash
    for row, entry in zip(stored, group, strict=True):
        assert row.prev_hash == prev
        assert row.hash == chain_hash(prev, dataclasses.replace(entry, cached=None))
        prev = row.hash
    assert by_topic == {
        code: (len(range(k, 10, 6)), sum(range(k, 10, 6))) for k, code in enumerate(codes)
    }
