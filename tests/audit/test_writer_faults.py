"""Nothing a caller does stops the audit writer: a cancelled wait, an entry the database
refuses; one bad entry never fails its neighbours' commit."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.audit.entries import sample_entry

from exchange.audit.entry import Entry
from exchange.audit.keys import load_or_create
from exchange.audit.models import AuditEntry
from exchange.audit.verify import verify
from exchange.audit.writer import AuditWriter
from exchange.context import AppContext


def entry(i: int) -> Entry:
    return sample_entry(i, items=["id_number"], latency_us=900)


def bad(i: int) -> Entry:
    """Values PostgreSQL refuses (SQLite stores them as given): a NUL in text, a number
    past the 32-bit column, a case longer than its varchar."""
    return dataclasses.replace(
        entry(i), case="abc\x00def" + "x" * 300, latency_us=2**40, items=["a\x00b"]
    )


def test_a_cancelled_wait_does_not_stop_the_writer(ctx: AppContext) -> None:
    writer = AuditWriter(ctx.db, linger=0.05)
    writer.start()
    try:

        async def abandon() -> None:
            # What a client hanging up does to the broker's task: cancel its wait.
            task = asyncio.ensure_future(writer.record(entry(1)))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(abandon())
        assert writer.record_sync(entry(2)) >= 1
        assert writer.running
    finally:
        writer.stop()
    with ctx.db.sessions() as s:
        ids = set(s.scalars(select(AuditEntry.request_id)))
    assert ids == {"req-1", "req-2"}  # the abandoned call's entry is kept all the same


@pytest.mark.parametrize("journaled", [False, True])
def test_one_bad_entry_never_fails_its_group(
    ctx: AppContext, tmp_path: Path, journaled: bool
) -> None:
    signer = load_or_create(tmp_path / "k")[0]
    journal = tmp_path / "journal" if journaled else None
    # A long linger gathers every entry below into one group.
    writer = AuditWriter(ctx.db, signer=signer, journal=journal, linger=0.3)
    writer.start()
    try:
        futures = []
        lock = threading.Lock()

        def submit(i: int) -> None:
            found = writer.submit(bad(i) if i == 7 else entry(i))
            with lock:
                futures.append(found)

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        writer.flush(10)
        seqs = sorted(f.result(10) for f in futures)
        assert seqs == list(range(1, 21))
        assert writer.running
    finally:
        writer.stop()
    with ctx.db.sessions() as s:
        row = s.scalars(select(AuditEntry).where(AuditEntry.request_id == "req-7")).one()
    if ctx.db.is_sqlite:
        assert (row.case, row.latency_us) == (bad(7).case, 2**40)
    else:  # stored escaped, cut and clamped, alone, after its group was refused
        assert row.case is not None
        assert row.case.startswith("abc\\x00def")
        assert len(row.case) == 200
        assert row.latency_us == 2**31 - 1
        assert row.items == ["a\\x00b"]
    assert verify(ctx.db, signer.verifier).ok


def test_waiters_of_a_group_are_answered_on_their_own_loops(ctx: AppContext) -> None:
    """Commit-wait ``record()``: callers on two event loops (two threads) share groups;
    each gets its answer on its own loop, a refused entry fails only its caller, and a
    cancelled caller does not keep the others waiting."""
    writer = AuditWriter(ctx.db, linger=0.2)  # gathers each loop's burst into one group
    writer.start()
    outcomes: dict[int, list[str]] = {}

    async def burst(base: int) -> list[str]:
        cancelled = asyncio.ensure_future(writer.record(entry(base + 99)))
        calls = [
            writer.record(bad(i) if i == base + 3 else entry(i)) for i in range(base, base + 30)
        ]
        await asyncio.sleep(0)
        cancelled.cancel()
        results = await asyncio.gather(*calls, return_exceptions=True)
        return ["ok" if r is None else type(r).__name__ for r in results]

    def run(base: int) -> None:
        outcomes[base] = asyncio.run(burst(base))

    try:
        threads = [threading.Thread(target=run, args=(base,)) for base in (0, 1000)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert writer.running
    finally:
        writer.stop()
    expected = ["ok"] * 30
    for base in (0, 1000):
        # PostgreSQL refuses the bad entry (stored escaped instead); SQLite stores it.
        assert outcomes[base][:3] + outcomes[base][4:] == expected[1:]
        assert outcomes[base][3] in {"ok", "AuditUnavailable"}
    assert writer.stats.entries == 62  # the cancelled callers' entries are kept too
    assert verify(ctx.db).ok
