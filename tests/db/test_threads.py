"""run_joined: a cancelled caller lets its cancellation through only once the thread's
call has ended (a runtime's stop() then leaves no thread using the database); and a
database disposed under a thread's connection says so."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from exchange.db.engine import Database
from exchange.db.threads import run_joined


def test_a_cancelled_caller_waits_for_the_call_in_its_thread() -> None:
    entered = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def work() -> int:
        entered.set()
        release.wait(60)
        finished.set()
        return 1

    async def main() -> None:
        task = asyncio.ensure_future(run_joined(work))
        # The thread has the call once it says so (a thread's Event, awaited off the loop).
        assert await asyncio.to_thread(entered.wait, 60)
        task.cancel()
        # Cancelled while the thread still works: the task must not end before it.
        done, _ = await asyncio.wait([task], timeout=0.2)
        assert not done, "the cancelled caller ended while its thread still ran"
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished.is_set()

    asyncio.run(main())


def test_an_uncancelled_call_answers_and_raises_as_run_in_threadpool() -> None:
    def fails() -> None:
        raise ValueError("boom")

    async def main() -> None:
        assert await run_joined(lambda a, b: a + b, 2, b=3) == 5
        with pytest.raises(ValueError, match="boom"):
            await run_joined(fails)

    asyncio.run(main())


def test_disposing_with_a_connection_still_checked_out_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path}/held.db")
    held = db.engine.connect()
    held.execute(text("SELECT 1"))
    assert db.checked_out() == 1
    with caplog.at_level(logging.WARNING, logger="exchange.db.engine"):
        db.dispose()
    held.close()
    [record] = [r for r in caplog.records if r.name == "exchange.db.engine"]
    assert "1 connection(s) still checked out" in record.getMessage()


def test_disposing_after_every_connection_came_back_is_silent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path}/returned.db")
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert db.checked_out() == 0
    with caplog.at_level(logging.WARNING, logger="exchange.db.engine"):
        db.dispose()
    assert not [r for r in caplog.records if r.name == "exchange.db.engine"]
