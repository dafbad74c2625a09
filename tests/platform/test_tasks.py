"""exchange.tasks.cancel_and_wait: a runtime's background loops stopped together."""

from __future__ import annotations

import asyncio

import pytest

from exchange.tasks import cancel_and_wait


def test_every_task_is_cancelled_and_has_ended_when_it_returns() -> None:
    cleaned: list[str] = []

    async def loop(name: str) -> None:
        try:
            await asyncio.Event().wait()  # never set: runs until cancelled
        finally:
            # Clean-up after the cancellation takes a turn of its own: it must have run
            # by the time cancel_and_wait returns.
            await asyncio.sleep(0)
            cleaned.append(name)

    async def scenario() -> list[asyncio.Task[None]]:
        tasks = [asyncio.create_task(loop(n)) for n in ("ticker", "publisher")]
        await asyncio.sleep(0)
        await cancel_and_wait(tasks[0], None, tasks[1])
        return tasks

    tasks = asyncio.run(scenario())
    assert all(t.done() and t.cancelled() for t in tasks)
    assert sorted(cleaned) == ["publisher", "ticker"]


def test_nothing_to_stop_and_tasks_already_ended() -> None:
    async def scenario() -> None:
        await cancel_and_wait()
        await cancel_and_wait(None, None)
        done = asyncio.create_task(asyncio.sleep(0))
        await done
        await cancel_and_wait(done)

    asyncio.run(scenario())


def test_an_error_raised_while_stopping_is_not_swallowed() -> None:
    async def broken() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("flush failed while stopping") from None

    async def scenario() -> None:
        task = asyncio.create_task(broken())
        await asyncio.sleep(0)
        await cancel_and_wait(task)

    with pytest.raises(RuntimeError, match="flush failed"):
        asyncio.run(scenario())
