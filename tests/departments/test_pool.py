"""The export workers' process pool: calls and answers straight between the event loop and
each worker, failures as the standard pool reports them."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
from pathlib import Path

import pytest
from tests.departments.pool_calls import (
    add,
    fail,
    nap,
    poison,
    refuse,
    refuse_in_turn,
    set_offset,
    unpicklable,
)
from tests.polling import until

from exchange.departments.pool import BrokenProcessPool, WorkerPool

# -- tests ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_calls_are_answered_by_initialised_workers() -> None:
    pool = WorkerPool(2, set_offset, (100,))
    await pool.start()
    try:
        answers = await asyncio.gather(*(pool.submit(add, i) for i in range(20)))
        assert [x for _, x in answers] == [i + 100 for i in range(20)]
        pids = {pid for pid, _ in answers}
        assert len(pids) == 2  # both workers took calls
        assert os.getpid() not in pids
    finally:
        await pool.stop()


@pytest.mark.anyio
async def test_a_call_s_exception_is_raised_to_its_caller_and_the_pool_goes_on() -> None:
    pool = WorkerPool(1)
    await pool.start()
    try:
        with pytest.raises(ValueError, match="bad key"):
            await pool.submit(fail, "bad key")
        with pytest.raises(RuntimeError, match="could not be sent back"):
            await pool.submit(unpicklable)
        with pytest.raises(RuntimeError, match="answer could not be read"):
            await pool.submit(poison)
        assert (await pool.submit(add, 1))[1] == 1
    finally:
        await pool.stop()


def _not_in_the_workers() -> int:
    """Picklable here, but this test module is not importable by name in a worker."""
    return 1


@pytest.mark.anyio
async def test_a_call_the_worker_cannot_read_fails_alone() -> None:
    pool = WorkerPool(1)
    await pool.start()
    try:
        with pytest.raises(ModuleNotFoundError):
            await pool.submit(_not_in_the_workers)
        assert (await pool.submit(add, 2))[1] == 2
    finally:
        await pool.stop()


@pytest.mark.anyio
async def test_each_worker_holds_its_next_call_before_it_ends_one() -> None:
    """``depth`` calls a worker are under way at once; the rest wait in the server and go
    to the first worker with room."""
    pool = WorkerPool(2, depth=2)
    await pool.start()
    try:
        calls = [pool.submit(nap, 0.2) for _ in range(5)]
        await asyncio.sleep(0)
        busy = sorted(len(w.busy) for w in pool._workers)
        assert busy == [2, 2]
        assert len(pool._queued) == 1
        pids = await asyncio.gather(*calls)
        assert len(set(pids)) == 2
    finally:
        await pool.stop()


@pytest.mark.anyio
async def test_an_initializer_that_fails_fails_the_start() -> None:
    pool = WorkerPool(2, refuse)
    with pytest.raises(RuntimeError, match="no city here"):
        await pool.start()
    assert pool.broken is not None
    with pytest.raises(BrokenProcessPool):
        pool.submit(add, 1)


@pytest.mark.anyio
async def test_the_start_fails_with_the_initializer_s_error_not_a_worker_s_end(
    tmp_path: Path,
) -> None:
    """One worker's failed start ends it, and its end fails the other's start before that
    one answers: the error raised is still the initializer's (BrokenProcessPool is a
    RuntimeError too, hence the message)."""
    pool = WorkerPool(2, refuse_in_turn, (str(tmp_path / "first"),))
    with pytest.raises(RuntimeError, match="no city here") as raised:
        await pool.start()
    assert not isinstance(raised.value, BrokenProcessPool)


@pytest.mark.anyio
async def test_a_worker_dying_while_idle_is_reported_once_and_a_stop_is_not() -> None:
    """on_break hears of a death at once, with no call under way to notice it (the exports
    start new workers from it); a pool stopped or killed on purpose does not call it."""
    heard: list[str] = []
    pool = WorkerPool(2, on_break=heard.append)
    await pool.start()
    processes = [w.process for w in pool._workers]
    os.kill(processes[1].pid or 0, signal.SIGKILL)
    await until(lambda: bool(heard), "the death reported", within=5)
    await asyncio.sleep(0.1)  # the other worker's end is not a second report
    assert len(heard) == 1
    assert f"export worker {processes[1].pid} ended" in heard[0]
    assert pool.broken == heard[0]
    await until(lambda: not any(p.is_alive() for p in processes), "both workers ended", within=5)
    for end in ("stop", "kill"):
        quiet = WorkerPool(1, on_break=heard.append)
        await quiet.start()
        if end == "stop":
            await quiet.stop()
        else:
            quiet.kill()
        assert quiet.broken is not None
    assert len(heard) == 1


@pytest.mark.anyio
async def test_a_killed_worker_breaks_the_pool() -> None:
    """As with the standard pool: calls not answered and every later call fail with
    BrokenProcessPool (the exports then derive here, see the departments' tests)."""
    pool = WorkerPool(2)
    await pool.start()
    processes = [w.process for w in pool._workers]
    under_way = pool.submit(nap, 5.0)
    await asyncio.sleep(0.1)
    os.kill(processes[0].pid or 0, signal.SIGKILL)
    with pytest.raises(BrokenProcessPool, match="ended"):
        await asyncio.wait_for(under_way, 5)
    with pytest.raises(BrokenProcessPool):
        pool.submit(add, 1)
    # The other one was ended too (the pool reaps them in a thread of its own: waited for
    # here by polling, as a second join of the same child races with the pool's).
    await until(lambda: not any(p.is_alive() for p in processes), "both workers ended", within=5)


@pytest.mark.anyio
async def test_an_answer_nobody_waits_for_is_discarded() -> None:
    discarded: list[object] = []
    pool = WorkerPool(1, discard=discarded.append)
    await pool.start()
    try:
        abandoned = pool.submit(add, 7)
        queued = pool.submit(add, 8)
        never_sent = pool.submit(add, 9)
        abandoned.cancel()
        never_sent.cancel()
        assert (await queued)[1] == 8
        await asyncio.sleep(0.05)
        assert [x for _, x in discarded] == [7]  # type: ignore[misc]
    finally:
        await pool.stop()


@pytest.mark.anyio
async def test_stop_ends_the_workers_and_cancels_what_waits(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A call under way is finished and its answer dropped quietly (the worker finds its
    answer pipe closed and ends), a call waiting is cancelled."""
    pool = WorkerPool(1, depth=1)
    await pool.start()
    processes = [w.process for w in pool._workers]
    running = pool.submit(nap, 0.3)
    waiting = pool.submit(nap, 0.3)
    await asyncio.sleep(0.05)
    await pool.stop()
    assert running.cancelled()
    assert waiting.cancelled()
    assert all(not p.is_alive() for p in processes)
    assert "Traceback" not in capfd.readouterr().err
    with pytest.raises(BrokenProcessPool):
        pool.submit(add, 1)


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        WorkerPool(0)


@pytest.mark.anyio
async def test_a_worker_s_answer_pipe_holds_a_span_s_answer() -> None:
    """An answer of a span of 8,192 rows (64 KiB of row numbers and more) fits in the
    pipe, so a worker does not wait for the server to read it before its next call."""
    most = int(Path("/proc/sys/fs/pipe-max-size").read_text())  # noqa: ASYNC240 (procfs)
    pool = WorkerPool(1)
    await pool.start()
    try:
        held = fcntl.fcntl(pool._workers[0].answers, fcntl.F_GETPIPE_SZ)
        assert held >= min(1 << 20, most)
    finally:
        await pool.stop()
