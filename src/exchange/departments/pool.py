"""Worker processes that take their calls from the event loop and answer to it directly.

``concurrent.futures.ProcessPoolExecutor`` puts two threads of the calling process between
the loop and its workers: a call goes to the pool's manager thread, then to a queue's
feeder thread and into one pipe all workers read; an answer comes back through the manager
thread, which hands it to the loop. Each step is a thread waking, taking the GIL and
waiting for a free core, and during a cold export both cores run workers. In a traced
cold export of e-licences (2 workers, 6 calls) an answer reached the waiting coroutine
5-9 ms after its worker wrote it, and a worker waited 2.5-9 ms for its next call.

Here each worker has a pipe of its own each way. The loop writes a call straight into the
worker's pipe and reads answers when that pipe is readable (``add_reader``): one wake-up,
of the thread that uses the answer. Each worker is given up to ``depth`` calls, so it holds
its next call when it ends one and never waits for the server between calls; the price is
that a call may wait behind one in its worker while another worker is free (at most one
call's time, at the end of a run of calls).

A worker that dies (killed, out of memory) closes its pipes: every call not answered
fails with :class:`~concurrent.futures.process.BrokenProcessPool`, as with the standard
pool, and so does every later call.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import multiprocessing
import os
import pickle
import struct
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

__all__ = ["BrokenProcessPool", "WorkerPool"]

#: A frame's header: the length of the pickle that follows.
_HEADER = struct.Struct("!Q")
#: A call's serial, before its pickled function and arguments, and an answer's serial and
#: whether it is a value (1) or an exception (0), before the pickle: a frame that cannot
#: be unpickled at the other end fails that one call, under its serial.
_SERIAL = struct.Struct("!q")
_ANSWER = struct.Struct("!q?")
#: The most read from a pipe at once (an answer pipe holds up to :data:`_PIPE`).
_READ = 1 << 20
#: The serial of a worker's first frame: ready (its initializer ran), or why not.
_READY = -1


class _Frames:
    """Length-prefixed frames out of a byte stream read in pieces."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            end = _HEADER.size + size
            if len(self._buf) < end:
                break
            out.append(bytes(self._buf[_HEADER.size : end]))
            del self._buf[:end]
        return out


def _widen(fd: int) -> None:
    """Let a pipe hold :data:`_PIPE` bytes: an answer larger than the default 64 KiB (a
    span of 8,192 rows carries 64 KiB of row numbers) blocked its worker until the server
    read it, often a few ms on a machine whose cores the workers keep busy. Best effort:
    the limit (``/proc/sys/fs/pipe-max-size``, 1 MiB by default) may be lower."""
    with suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE)


#: What a worker's answer pipe is asked to hold
_PIPE = 1 << 20


def _send(fd: int, payload: bytes) -> None:
    """One frame to a blocking pipe."""
    for part in (_HEADER.pack(len(payload)), payload):
        view = memoryview(part)
        while view:  # a write may take less than it is given
            view = view[os.write(fd, view) :]


def _dumps(serial: int, ok: bool, value: Any) -> bytes:
    try:
        return _ANSWER.pack(serial, ok) + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an answer or error that cannot be pickled
        why = RuntimeError(f"{type(value).__name__} could not be sent back: {exc}")
        return _ANSWER.pack(serial, False) + pickle.dumps(why, protocol=pickle.HIGHEST_PROTOCOL)


def _serve(
    calls: Connection,
    answers: Connection,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
) -> None:
    """A worker process's life: ready, then each call read from ``calls`` answered on
    ``answers``, until the server closes its end (or dies)."""
    cfd, afd = calls.fileno(), answers.fileno()
    try:
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:
        _send(afd, _dumps(_READY, False, exc))
        return
    _send(afd, _dumps(_READY, True, os.getpid()))
    frames = _Frames()
    while True:
        data = os.read(cfd, _READ)
        if not data:
            return
        for payload in frames.feed(data):
            (serial,) = _SERIAL.unpack_from(payload)
            try:
                fn, args = pickle.loads(memoryview(payload)[_SERIAL.size :])
                answer = _dumps(serial, True, fn(*args))
            except BaseException as exc:
                answer = _dumps(serial, False, exc)
            try:
                _send(afd, answer)
            except BrokenPipeError:
                return  # the server stopped reading (stopped, or gone): nobody to answer


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    call_end: Connection  # the pipe the server writes calls to
    answer_end: Connection  # and reads answers from (non-blocking)
    #: its initializer ran (the worker's pid), or why not
    ready: asyncio.Future[int]
    frames: _Frames = field(default_factory=_Frames)
    #: serials sent to this worker and not yet answered
    busy: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.calls, self.answers = self.call_end.fileno(), self.answer_end.fileno()


class WorkerPool:
    """``count`` spawned processes, each made ready by ``initializer(*initargs)``, running
    the calls :meth:`submit` gives them. ``discard`` receives an answer whose caller
    stopped waiting (to release what it holds); ``on_break`` the reason, once, when a
    worker dies or stops answering (not when the pool is stopped or killed), whether or not
    a call was under way. Used from one event loop's thread."""

    def __init__(
        self,
        count: int,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        depth: int = 2,
        discard: Callable[[Any], None] | None = None,
        on_break: Callable[[str], None] | None = None,
    ) -> None:
        if count < 1 or depth < 1:
            raise ValueError("a pool needs at least one worker and one call a worker")
        self.count = count
        self.depth = depth
        self._initializer = initializer
        self._initargs = initargs
        self._discard = discard
        self._on_break = on_break
        self._workers: list[_Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        #: calls not yet given to a worker: (serial, pickled call)
        self._queued: deque[tuple[int, bytes]] = deque()
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._serials = itertools.count()
        self._broken: str | None = None

    async def start(self) -> None:
        """Start the processes and wait until each has run its initializer (an error there
        is raised here, and no process is left running)."""
        loop = self._loop = asyncio.get_running_loop()
        ctx = multiprocessing.get_context("spawn")
        try:
            for _ in range(self.count):
                call_r, call_w = ctx.Pipe(duplex=False)
                answer_r, answer_w = ctx.Pipe(duplex=False)
                process = ctx.Process(
                    target=_serve,
                    args=(call_r, answer_w, self._initializer, self._initargs),
                    daemon=True,
                )
                try:
                    process.start()
                finally:
                    # The child holds its own ends now: its death must close them.
                    call_r.close()
                    answer_w.close()
                worker = _Worker(process, call_w, answer_r, loop.create_future())
                os.set_blocking(worker.answers, False)
                _widen(worker.answers)
                self._workers.append(worker)
                loop.add_reader(worker.answers, self._readable, worker)
            ready = await asyncio.gather(*(w.ready for w in self._workers), return_exceptions=True)
        except BaseException:
            self.kill()
            raise
        errors = [r for r in ready if isinstance(r, BaseException)]
        # An initializer's own error over "worker ended": a worker that failed its start
        # ends, and its end fails the others' starts too when it is read before their
        # answers are (CI at 4b1bc7a).
        failed = next((e for e in errors if not isinstance(e, BrokenProcessPool)), None)
        failed = failed or next(iter(errors), None)
        if failed is not None:
            self.kill()
            raise failed

    @property
    def broken(self) -> str | None:
        """Why the pool stopped serving (a worker died, or it was stopped), if it did."""
        return self._broken

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """``fn(*args)`` in a worker (both picklable): its answer, or its exception."""
        if self._loop is None:
            raise RuntimeError("the worker pool is not started")
        if self._broken is not None:
            raise BrokenProcessPool(self._broken)
        serial = next(self._serials)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._futures[serial] = future
        payload = _SERIAL.pack(serial) + pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        self._queued.append((serial, payload))
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        """Give queued calls to the workers with room, the least busy first."""
        while self._queued and self._broken is None:
            worker = min(self._workers, key=lambda w: len(w.busy))
            if len(worker.busy) >= self.depth:
                return
            serial, payload = self._queued.popleft()
            future = self._futures.get(serial)
            if future is None or future.cancelled():
                self._futures.pop(serial, None)
                continue  # nobody waits for it any more: never sent
            try:
                _send(worker.calls, payload)
            except OSError as exc:
                self._break(f"export worker {worker.process.pid} cannot take calls: {exc}")
                return
            worker.busy.add(serial)

    def _readable(self, worker: _Worker) -> None:
        while True:
            try:
                data = os.read(worker.answers, _READ)
            except BlockingIOError:
                break
            except OSError as exc:
                self._break(f"export worker {worker.process.pid} failed: {exc}")
                return
            if not data:
                code = worker.process.exitcode
                self._break(f"export worker {worker.process.pid} ended (exit code {code})")
                return
            for payload in worker.frames.feed(data):
                self._answered(worker, payload)
            if len(data) < _READ:
                break
        self._dispatch()

    def _answered(self, worker: _Worker, payload: bytes) -> None:
        serial, ok = _ANSWER.unpack_from(payload)
        try:
            value = pickle.loads(memoryview(payload)[_ANSWER.size :])
        except Exception as exc:  # e.g. an exception class this process cannot import
            ok, value = False, RuntimeError(f"an export worker's answer could not be read: {exc}")
        if serial == _READY:
            _settle(worker.ready, ok, value)
            return
        worker.busy.discard(serial)
        future = self._futures.pop(serial, None)
        if future is None or future.done():
            if ok and self._discard is not None:
                self._discard(value)
            return
        _settle(future, ok, value)

    def _break(self, why: str, failed: bool = True) -> None:
        """Stop serving: every call not answered fails, the workers are ended. ``failed``:
        a worker died or could not take calls (``on_break`` is told), rather than a stop."""
        first = self._broken is None
        if first:
            self._broken = why
        for future in [*self._futures.values(), *(w.ready for w in self._workers)]:
            _settle(future, False, BrokenProcessPool(why))
        self._futures.clear()
        self._queued.clear()
        processes = self._close()
        for process in processes:
            if process.is_alive():
                process.kill()
        if processes:
            # Reaped beside the loop: a killed process is gone at once.
            threading.Thread(target=_join, args=(processes, None), daemon=True).start()
        if first and failed and self._on_break is not None:
            self._on_break(why)

    def _close(self) -> list[BaseProcess]:
        """Stop reading and writing the workers' pipes (a worker reads the end of its
        calls and ends); their processes."""
        workers, self._workers = self._workers, []
        for worker in workers:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(worker.answers)
            for end in (worker.call_end, worker.answer_end):
                with suppress(OSError):
                    end.close()
        return [w.process for w in workers]

    def kill(self) -> None:
        """End the workers at once; calls under way fail."""
        self._break("the export workers were stopped", failed=False)

    async def stop(self, grace: float = 10.0) -> None:
        """End the workers once they finish their current call; calls still waiting fail.
        A worker that does not end within ``grace`` seconds is killed."""
        if self._broken is None:
            self._broken = "the export workers were stopped"
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
        self._queued.clear()
        await asyncio.to_thread(_join, self._close(), grace)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    """A future's value (``ok``) or exception, unless it is settled already."""
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _join(processes: list[BaseProcess], timeout: float | None) -> None:
    """Wait for the processes to end, killing any still running after ``timeout``."""
    for process in processes:
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
