"""Export chunks derived from the city, in this process or in worker processes.

A cold export is bound by deriving its chunks (NumPy over the rows, then one line per
record), all of it holding the GIL: in a thread it used one core of the machine while the
export's pages waited for each chunk in turn. :class:`ExportWorkers` derives chunks in
processes of their own (each holds the same city, made from its seed), so an export's
next chunks are derived on the other cores while the department sends the current one.

The chunk is the same whichever derives it: :func:`build_chunk` is the one function both
run.

A worker's chunks come back through shared memory (:func:`_spill`): the NDJSON written to
a file of ``/dev/shm`` and read from it by the server, only the rows and line ends pickled
through the worker's pipe (:mod:`~exchange.departments.pool`). Through the pipe, a
household export's 41 MB cost the server 30-43 ms of CPU and 50-69 ms of wall time (12
spans of 3.4 MB, two workers, measured on this project's machines, then through the
standard process pool) against 12 ms and 16-18 ms through the file: the pipe moves 64 KB
a read, each a wake-up of the server, and pickles and copies the bytes twice more. Where
``/dev/shm`` cannot be written, the chunks take the pipe as before.
"""

from __future__ import annotations

import asyncio
import functools
import glob
import itertools
import logging
import mmap
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from exchange.children import follow_parent
from exchange.departments import noise, tables
from exchange.departments.blocks import Block
from exchange.departments.city import City
from exchange.departments.ndjson import Record
from exchange.departments.pool import BrokenProcessPool, WorkerPool
from exchange.departments.prng_arrays import I64
from exchange.departments.records import GENERATORS
from exchange.departments.tables import TABLES

__all__ = [
    "SPAN_CHUNKS",
    "ExportWorkers",
    "build_chunk",
    "build_span",
    "project",
    "project_block",
    "span_of",
]
_log = logging.getLogger(__name__)


def project(record: Record, fields: tuple[str, ...]) -> Record:
    """The record cut to ``fields`` (itself when it has just those)."""
    if len(record) == len(fields):
        return record
    return {f: record[f] for f in fields}


@functools.lru_cache(maxsize=256)
def _cutter(fields: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
    # Values typed Raw: checked as JSON and kept as their bytes, never built. The struct's
    # fields are in ``fields``' order, which encoding keeps; f0, f1 … renamed to the
    # items, since an item's name need not be a Python identifier.
    struct = msgspec.defstruct(
        "Projected",
        [(f"f{i}", msgspec.Raw) for i in range(len(fields))],
        rename={f"f{i}": name for i, name in enumerate(fields)},
    )
    return msgspec.json.Decoder(struct)


_ENCODER = msgspec.json.Encoder()


def project_block(block: Block, fields: tuple[str, ...]) -> Block:
    """The block with each record cut to ``fields``: byte for byte
    ``orjson.dumps(project(orjson.loads(line), fields))`` of each line.

    All lines are decoded and encoded in one call each, the kept values copied as they
    are: a third of the per-line loads and dumps, which held the departments' event loop
    for a whole chunk whenever an export asked for a grant's items (measured in process,
    2,048 household records cut to 8 of 12 fields: 3.2 against 9.8 µs a record). A line
    that lacks one of ``fields`` (no table record does) takes the per-line way, which
    raises for it as it always did.
    """
    if not len(block):
        return block
    try:
        cut = _ENCODER.encode_lines(_cutter(fields).decode_lines(block.blob))
    except msgspec.DecodeError:
        loads, dumps = orjson.loads, orjson.dumps
        out = [dumps(project(loads(ln), fields)) + b"\n" for ln in block.lines]
        return Block.of_lines(block.row_list, out)
    return Block.of_blob(block.rows, cut)


def build_chunk(
    city: City,
    generator: str,
    fields: tuple[str, ...],
    noise_rate: float,
    salt: int,
    start: int,
    stop: int,
) -> Block:
    """Derive and serialise the source rows ``[start, stop)`` of a topic."""
    gen = GENERATORS[generator]
    table = TABLES.get(gen.name)
    if table is not None:
        # Derived as columns (:mod:`exchange.departments.tables`): tens of times faster
        # than record by record, so a fresh exchange exports near its warm rate.
        built = table(city, start, stop)
        if not noise_rate:
            return built.block(fields)
        source = built.records()
    else:
        source = gen.export_rows(city, start, stop)
    rows: list[int] = []
    lines: list[bytes] = []
    dumps = orjson.dumps
    for row, rec in source:
        if noise_rate:
            rec = noise.apply(gen.name, rec, rec[gen.key_field], salt, noise_rate)
        rows.append(row)
        lines.append(dumps(project(rec, fields)) + b"\n")
    return Block.of_lines(rows, lines)


#: Chunks a worker process derives in one call for a table derived as columns.
SPAN_CHUNKS = 4


def span_of(generator: str) -> int:
    """Chunks to derive in one call: a span pays NumPy's per-call cost and finds a block's
    employers once for several chunks (in process, one core, 8,192 rows at once against
    2,048: household 177 k against 150 k records per CPU second, social insurance 114 k
    against 72 k). The enterprise tables measured slower so until their legal
    representatives' scan went one position at a time (2026-12-04: enterprise
    registration 79 → 63 ms per 20,000 records, e-licences 30 → 25, credit publicity
    26 → 23). A table derived record by record keeps one chunk a call."""
    return 1 if TABLES.get(generator) is None else SPAN_CHUNKS


def build_span(
    city: City,
    generator: str,
    fields: tuple[str, ...],
    noise_rate: float,
    salt: int,
    start: int,
    count: int,
    chunk: int,
) -> list[Block]:
    """The ``count`` chunks of ``chunk`` rows from ``start``, derived at once and then cut
    at their first rows (a table's columns, before each chunk's NDJSON is written): each
    the same as :func:`build_chunk` of its rows alone (every table's records are in row
    order). NumPy's cost per call, which a chunk of 2,048 rows pays a few hundred times, is
    then paid once for the span."""
    table = TABLES.get(GENERATORS[generator].name)
    if table is not None and not noise_rate:
        return table(city, start, start + count * chunk).blocks(fields, start, count, chunk)
    block = build_chunk(city, generator, fields, noise_rate, salt, start, start + count * chunk)
    return block.cut(start, count, chunk)


# -- the way back: chunks through shared memory ------------------------------------------

#: Where workers leave their chunks' bytes for the server (a memory file system)
SPILL_DIR = "/dev/shm"


def _spill_prefix(server: int) -> str:
    """The names of the files a server's workers leave (the server's pid in them, so that
    it can remove what a call it stopped waiting for left behind)."""
    return os.path.join(SPILL_DIR, f"exchange-export-{server}-")


def _sweep_dead(spill_dir: str = SPILL_DIR, older: float = 60.0) -> int:
    """Remove the files left by departments processes that are gone (killed outright, so
    that nothing of theirs removed them); their pid is in the name. A file of a live
    process (this one or another) is left alone, and so is one written in the last
    ``older`` seconds: a live process's file is read within milliseconds, and one in
    another pid namespace sharing ``/dev/shm`` would look gone. The files removed."""
    removed = 0
    recent = time.time() - older
    for path in glob.glob(os.path.join(glob.escape(spill_dir), "exchange-export-*-*")):
        owner = os.path.basename(path).split("-")[2]
        if not owner.isdigit() or _alive(int(owner)):
            continue
        with suppress(OSError):
            if os.stat(path).st_mtime > recent:
                continue
            os.unlink(path)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@dataclass(frozen=True, slots=True)
class Spilled:
    """A worker's chunks whose bytes wait in the file ``path``, one after the other: each
    chunk's source rows, line ends and size (its bytes follow the previous chunk's)."""

    path: str
    parts: list[tuple[I64, I64 | None, int]]


def _spill(blocks: list[Block], prefix: str, serial: int) -> list[Block] | Spilled:
    """``blocks`` as a file for the server to read (or as they are, to go through the
    pipe, when the file cannot be written: no ``/dev/shm``, or it is full)."""
    path = f"{prefix}{os.getpid()}-{serial}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return blocks
    try:
        with os.fdopen(fd, "wb", buffering=0) as file:
            for block in blocks:
                view = memoryview(block.blob)
                while view:  # a write may take less than it is given
                    view = view[file.write(view) :]
    except OSError:
        with suppress(OSError):
            os.unlink(path)
        return blocks
    return Spilled(path, [(b.rows, b.found_ends, len(b.blob)) for b in blocks])


def _unspill(answer: list[Block] | Spilled) -> list[Block]:
    """A worker's chunks, when spilled: their file mapped into this process (and removed at
    once; its memory lives as long as a chunk of it is used). Nothing is copied: reading
    the bytes into new ``bytes`` cost the server a copy and a page fault for every 4 KiB
    of fresh memory (11,700 faults for a household export, about a third of the server's
    CPU for it), where mapping the worker's pages in costs one call a span."""
    if not isinstance(answer, Spilled):
        return answer
    fd = os.open(answer.path, os.O_RDONLY)
    try:
        os.unlink(answer.path)
        total = sum(size for _, _, size in answer.parts)
        if os.fstat(fd).st_size < total:
            raise OSError(f"export chunk file {answer.path} ended early")
        if not total:
            return [Block(rows, b"", ends) for rows, ends, _ in answer.parts]
        shared = mmap.mmap(fd, total, flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    view = memoryview(shared)
    blocks: list[Block] = []
    at = 0
    for rows, ends, size in answer.parts:
        blocks.append(Block(rows, view[at : at + size], ends))
        at += size
    return blocks


#: Map the pages in at once (one call, not a fault for each page as it is first read).
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


def _discard(answer: list[Block] | Spilled) -> None:
    """A worker's answer nobody will read: its file removed."""
    if isinstance(answer, Spilled):
        with suppress(OSError):
            os.unlink(answer.path)


# -- inside a worker process -----------------------------------------------------------------

#: The worker process's city, made once by :func:`_start_worker` (never set in the server).
_city: City | None = None
#: Where the worker spills its chunks (``None``: through the pipe), and its calls' count
_spill_to: str | None = None
_serials = itertools.count()


def _start_worker(
    parent: int, seed: int, population: int, enterprises: int, spill: bool = True
) -> None:
    global _city, _spill_to  # the worker process's one city, made at its start
    # A departments process killed outright (SIGKILL, OOM) runs no shutdown: its workers
    # would live on, idle, holding a city each; the kernel ends them with it instead.
    follow_parent(parent)
    _city = City(seed, population, enterprises)
    tables.warm(_city)
    if spill and os.access(SPILL_DIR, os.W_OK):
        _spill_to = _spill_prefix(parent)


def _build_in_worker(
    generator: str,
    fields: tuple[str, ...],
    noise_rate: float,
    salt: int,
    start: int,
    count: int,
    chunk: int,
) -> list[Block] | Spilled:
    if _city is None:
        raise RuntimeError("export worker started without its city")
    blocks = build_span(_city, generator, fields, noise_rate, salt, start, count, chunk)
    if _spill_to is None:
        return blocks
    return _spill(blocks, _spill_to, next(_serials))


# -- in the server ---------------------------------------------------------------------------


#: The first wait before export workers that died are started again, seconds; it doubles
#: with each death up to :data:`RESTART_MAX_S` and starts over once a pool has served for
#: :data:`HEALTHY_S` (a worker that dies at every start, out of memory say, is retried
#: every five minutes, not in a loop).
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 300.0
HEALTHY_S = 60.0


class ExportWorkers:
    """``count`` worker processes deriving export chunks from a city like ``city``.

    Started (and waited for) with the departments: a fresh process's first export then
    finds them ready. Processes are spawned, not forked: the server has an event loop and
    threads running, which a fork would copy half-way. Calls and answers go straight
    between the event loop and each worker (:class:`~exchange.departments.pool.WorkerPool`).

    A worker that dies (killed, out of memory) ends the pool: its calls fail (the callers
    derive those chunks in a thread), cold chunks are derived in this process meanwhile,
    and a new pool is started after a back-off (:data:`RESTART_FIRST_S`); ``restarts``
    counts the pools started so.
    """

    def __init__(self, city: City, count: int, spill: bool = True) -> None:
        self.city = city
        self.count = count
        #: whether the chunks come back through shared memory (else through the pipe)
        self.spill = spill
        self.restarts = 0
        self._pool: WorkerPool | None = None
        self._restart: asyncio.Task[None] | None = None
        self._stopped = False
        self._started_at = 0.0
        self._delay = RESTART_FIRST_S

    @property
    def running(self) -> bool:
        return self._pool is not None

    async def start(self) -> None:
        self._stopped = False
        if self._pool is not None or self.count < 1:
            return
        if self.spill:
            # A departments process killed with SIGKILL leaves the spans its workers had
            # written and it had not read (3.4 MB each) in memory until reboot.
            swept = await asyncio.to_thread(_sweep_dead)
            if swept:
                _log.info(
                    "removed %d export files left in %s by a killed process", swept, SPILL_DIR
                )
        pool = WorkerPool(
            self.count,
            _start_worker,
            (
                os.getpid(),
                self.city.seed,
                self.city.population,
                self.city.enterprises,
                self.spill,
            ),
            discard=_discard,
            on_break=self._broke,
        )
        await pool.start()
        self._pool = pool
        self._started_at = time.monotonic()

    def _broke(self, why: str) -> None:
        """The running pool lost a worker (called by it, on the loop): derive here until a
        new pool is started."""
        if self._stopped or self._pool is None:
            return  # a pool still starting: its start raises
        self._pool = None
        if time.monotonic() - self._started_at >= HEALTHY_S:
            self._delay = RESTART_FIRST_S
        _log.error(
            "%s; cold export chunks are derived in this process until the workers are "
            "started again, in %g s",
            why,
            self._delay,
        )
        self._schedule()

    def _schedule(self) -> None:
        delay, self._delay = self._delay, min(self._delay * 2, RESTART_MAX_S)
        self._restart = asyncio.get_running_loop().create_task(self._start_after(delay))

    async def _start_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        # What the dead pool's calls left (their answers' files): nobody will read them.
        self._remove_spills()
        try:
            await self.start()
        except Exception as exc:  # spawning failed, or a worker died while starting
            _log.error(
                "export workers did not start again (%s); next try in %g s", exc, self._delay
            )
            self._schedule()
            return
        self.restarts += 1
        _log.warning("export workers started again (%d processes)", self.count)

    async def build(
        self,
        generator: str,
        fields: tuple[str, ...],
        noise_rate: float,
        salt: int,
        start: int,
        count: int,
        chunk: int,
    ) -> list[Block]:
        """:func:`build_span` in a worker process."""
        if self._pool is None:
            # Stopped, or one died (and a new pool is not started yet) while this call's
            # span waited to start.
            raise BrokenProcessPool("export workers are not running")
        answer: list[Block] | Spilled = await self._pool.submit(
            _build_in_worker, generator, fields, noise_rate, salt, start, count, chunk
        )
        # Read on the loop: one pread of a span (1-3.4 MB) costs less than the hand-off to
        # a thread and back, which waits for a core while the workers hold both (cold
        # exports of the enterprise topics, 6 fresh processes each: 3 ms less wall time).
        return _unspill(answer)

    async def stop(self) -> None:
        self._stopped = True
        restart, self._restart = self._restart, None
        if restart is not None:
            restart.cancel()
            with suppress(asyncio.CancelledError):
                await restart
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.stop()
        # What calls abandoned mid-way left (their answers' files); none in the normal run.
        self._remove_spills()

    @staticmethod
    def _remove_spills() -> None:
        for path in glob.glob(glob.escape(_spill_prefix(os.getpid())) + "*"):
            with suppress(OSError):
                os.unlink(path)
