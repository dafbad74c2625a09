"""How long a commit-wait group (no journal: PostgreSQL) gathers entries after its first:
at once while calls come alone, up to BUSY_LINGER while they come together, and never
other than a ``linger`` the writer was given."""

from __future__ import annotations

import concurrent.futures
import queue
from typing import Any

from tests.audit.entries import sample_entry

from exchange.audit import committer
from exchange.audit.handover import Pending
from exchange.audit.writer import AuditWriter
from exchange.context import AppContext


class Recording:
    """The writer's queue, noting how long each ``get`` was allowed to wait."""

    def __init__(self, inner: queue.SimpleQueue[Any]) -> None:
        self.inner = inner
        self.waits: list[float | None] = []

    def put(self, item: Any) -> None:
        self.inner.put(item)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        self.waits.append(timeout)
        return self.inner.get(block, timeout)

    def get_nowait(self) -> Any:
        self.waits.append(0.0)
        return self.inner.get_nowait()


def test_the_rule_gathers_only_while_calls_come_together(ctx: AppContext) -> None:
    writer = AuditWriter(ctx.db)
    assert writer.gathering() == 0.0  # nothing committed yet
    writer._last_group = 1
    assert writer.gathering() == 0.0
    writer._last_group = 2
    assert writer.gathering() == committer.BUSY_LINGER
    given = AuditWriter(ctx.db, linger=0.0)
    given._last_group = 50
    assert given.gathering() == 0.0
    lingering = AuditWriter(ctx.db, linger=0.3)
    lingering._last_group = 1
    assert lingering.gathering() == 0.3


def test_a_group_after_a_crowded_one_waits_for_company(ctx: AppContext) -> None:
    writer = AuditWriter(ctx.db)
    recording = Recording(writer._queue)
    writer._queue = recording  # type: ignore[assignment]
    # Three calls queued before the thread starts: its first group holds all three.
    first = [Pending(sample_entry(i), concurrent.futures.Future()) for i in range(3)]
    for pending in first:
        recording.put(pending)
    writer.start()
    try:
        seqs = [p.future.result(10) for p in first if p.future is not None]
        assert seqs == sorted(seqs)
        assert writer.stats.largest_group == 3
        recording.waits.clear()
        # The next call comes alone after a crowded group: its group waits BUSY_LINGER
        # for company, finds none, and commits it.
        writer.record_sync(sample_entry(3), timeout=10)
        gathered = [w for w in recording.waits if w is not None and 0 < w <= 1]
        assert gathered, recording.waits
        assert max(gathered) <= committer.BUSY_LINGER
        recording.waits.clear()
        # That group held one entry: the next is committed without waiting.
        writer.record_sync(sample_entry(4), timeout=10)
        assert [w for w in recording.waits if w is not None and 0 < w <= 1] == []
    finally:
        writer.stop()
