"""A bulk pull that its time slice stops before it has caught up goes on at once: the pull
leaves the mount in ``provisions_behind`` and the background task runs its next pass
without waiting a tick (the wait cost a million-record pull ~2 s of ~7); a pull that
caught up leaves nothing there, and the task waits for its tick again."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from exchange.federation import provision, runtime
from exchange.federation.runtime import Federation

PAGE = 10


def _page(rows_from: int, total: int) -> provision.Page:
    rows_to = min(total, rows_from + PAGE)
    header = provision.PageHeader(
        rows_from=rows_from,
        rows_to=rows_to,
        rows_total=total,
        changes_from=0,
        changes_to=0,
        records=rows_to - rows_from,
        events=0,
    )
    body = provision.encode_page(header, b"{}\n" * (rows_to - rows_from), [])
    return provision.parse_page(body)


def _puller(total: int) -> tuple[Federation, list[int]]:
    """A Federation with only what ``pull`` uses: a peer holding ``total`` rows, pages of
    :data:`PAGE`, a store that keeps a watermark."""
    fed = Federation.__new__(Federation)
    fed.page_size = PAGE
    fed.received_total = 0
    fed.provisions_behind = set()
    mark = {"rows": 0}
    stored: list[int] = []

    async def fetch(mount: Any, rows: int, changes: int | None) -> Any:
        return f"rid-{rows}", 0.0, _page(rows, total)

    def store(mount: Any, page: provision.Page, rid: str) -> bool:
        if page.header.rows_from != mark["rows"]:
            return False
        mark["rows"] = page.header.rows_to
        stored.append(page.header.records)
        return True

    async def audit(*_: Any) -> None:
        return None

    fed._fetch = fetch  # type: ignore[method-assign]
    fed._store = store  # type: ignore[method-assign]
    fed._watermark = lambda mount: (mark["rows"], 0)  # type: ignore[method-assign]
    fed._audit_pull = audit  # type: ignore[method-assign]
    return fed, stored


def test_a_pull_stopped_by_its_slice_is_left_behind_and_one_caught_up_is_not() -> None:
    mount: Any = SimpleNamespace(resource_code="t/1", peer_resource_code="p/1")
    fed, stored = _puller(total=100)
    # No time at all: the first page and nothing asked after it.
    got = asyncio.run(fed.pull(mount, budget=0.0))
    assert got == PAGE == sum(stored)
    assert fed.provisions_behind == {"t/1"}
    # Time enough: every page, then an empty poll at the end; caught up.
    fed.provisions_behind.clear()
    got = asyncio.run(fed.pull(mount, budget=600.0))
    assert got == 100 - PAGE
    assert sum(stored) == 100
    assert fed.provisions_behind == set()


def test_a_pull_alone_goes_on_past_its_slice_with_the_feed_synced_beside_it() -> None:
    """No other provision waits: when the slice ends the pull takes another (no pages
    drained, none started again from one) and the feed's sync is started beside it."""
    mount: Any = SimpleNamespace(resource_code="t/1", peer_resource_code="p/1")
    fed, stored = _puller(total=100)
    beside: list[int] = []
    fed._between_slices = lambda: beside.append(sum(stored))  # type: ignore[method-assign]
    # No time at all, yet every page and the empty poll at the end: caught up.
    got = asyncio.run(fed.pull(mount, budget=0.0, alone=True))
    assert got == 100 == sum(stored)
    assert fed.provisions_behind == set()
    # Each spent slice gave the feed its turn, while the pull went on.
    assert beside
    assert beside[0] < 100


def test_the_background_task_goes_on_at_once_while_a_provision_is_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A tick so long that a pass waiting for it would never come within the test.
    monkeypatch.setattr(runtime, "SYNC_SECONDS", 3600.0)
    fed = Federation.__new__(Federation)
    fed.provisions_behind = set()
    fed.retention = 0
    fed.last_sync_error = None
    passes: list[int] = []
    reached: dict[int, asyncio.Event] = {}

    async def sync_once() -> None:
        return None

    async def provision_all(*, now: bool = False) -> dict[str, int]:
        passes.append(len(passes))
        # Behind for the first three passes (the slice ended), caught up on the fourth.
        fed.provisions_behind = {"t/1"} if len(passes) < 4 else set()
        if len(passes) in reached:
            reached[len(passes)].set()
        return {"t/1": 1}

    fed.sync_once = sync_once  # type: ignore[method-assign]
    fed.provision_all = provision_all  # type: ignore[method-assign]

    async def main() -> None:
        fed._kick = asyncio.Event()
        reached.update({4: asyncio.Event(), 5: asyncio.Event()})
        task = asyncio.create_task(fed._run())
        try:
            await asyncio.wait_for(reached[4].wait(), 30)
            # Caught up: the task now waits for its tick (or a kick), no fifth pass.
            for _ in range(20):
                await asyncio.sleep(0)
            assert len(passes) == 4
            fed._kick.set()
            await asyncio.wait_for(reached[5].wait(), 30)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
