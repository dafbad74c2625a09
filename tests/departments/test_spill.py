"""Export chunks coming back from the worker processes through shared memory
(``exporter._spill``): the same blocks as through the pipe, the file gone once read or
abandoned, and the pipe again where the file cannot be written."""

from __future__ import annotations

import asyncio
import glob
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from exchange.departments import exporter
from exchange.departments.blocks import Block
from exchange.departments.city import City
from exchange.departments.exporter import ExportWorkers, Spilled, build_span

HOUSEHOLD = "household_registration"


def _blocks() -> list[Block]:
    return [
        Block.of_blob([3, 4], b'{"a":1}\n{"a":22}\n'),
        Block.of_blob([], b""),  # a chunk of rows that hold no record
        Block.of_blob([9], b'{"b":"\xe5\xb9\xbf"}\n'),
    ]


def test_spilled_blocks_read_back_the_same_and_their_file_goes(tmp_path: Path) -> None:
    answer = exporter._spill(_blocks(), f"{tmp_path}/x-", 1)
    assert isinstance(answer, Spilled)
    assert Path(answer.path).read_bytes() == b'{"a":1}\n{"a":22}\n{"b":"\xe5\xb9\xbf"}\n'
    assert exporter._unspill(answer) == _blocks()
    assert list(tmp_path.iterdir()) == []


def test_blocks_take_the_pipe_when_the_file_cannot_be_written(tmp_path: Path) -> None:
    blocks = _blocks()
    assert exporter._spill(blocks, f"{tmp_path}/missing/x-", 1) is blocks
    assert exporter._unspill(blocks) is blocks


def test_a_file_cut_short_is_an_error_not_a_short_chunk(tmp_path: Path) -> None:
    answer = exporter._spill(_blocks(), f"{tmp_path}/x-", 1)
    assert isinstance(answer, Spilled)
    os.truncate(answer.path, 5)
    with pytest.raises(OSError, match="ended early"):
        exporter._unspill(answer)
    assert list(tmp_path.iterdir()) == []  # removed all the same


def test_an_answer_nobody_reads_leaves_no_file(tmp_path: Path) -> None:
    exporter._discard(exporter._spill(_blocks(), f"{tmp_path}/x-", 1))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spill", [True, False])
def test_worker_chunks_are_those_derived_here_either_way(city: City, spill: bool) -> None:
    """A worker process's span, through shared memory or through the pipe, is the span
    derived in this process; nothing is left in the shared memory afterwards."""
    if spill and not os.access(exporter.SPILL_DIR, os.W_OK):
        pytest.skip(f"{exporter.SPILL_DIR} cannot be written here")
    fields = ("id_number", "name", "registered_address")

    async def run() -> list[Block]:
        workers = ExportWorkers(city, 1, spill=spill)
        await workers.start()
        try:
            return await workers.build(HOUSEHOLD, fields, 0.0, 0, 4096, 3, 2048)
        finally:
            await workers.stop()

    there = asyncio.run(run())
    here = build_span(city, HOUSEHOLD, fields, 0.0, 0, 4096, 3, 2048)
    assert there == here
    assert [int(b.rows[0]) for b in there] == [4096, 6144, 8192]
    assert all(np.all(np.diff(b.rows) > 0) for b in there)
    assert glob.glob(glob.escape(exporter._spill_prefix(os.getpid())) + "*") == []
    # Through shared memory the chunks are views of the worker's pages, not copies; they
    # still cut into lines, pages and pickles as bytes do.
    assert all(isinstance(b.blob, memoryview if spill else bytes) for b in there)
    assert there[1].lines == here[1].lines
    assert all(type(line) is bytes for line in there[1].lines)
    assert there[2].between(8200, 8300) == here[2].between(8200, 8300)
    assert pickle.loads(pickle.dumps(there[0])) == here[0]


def test_a_mapped_span_is_read_whole_or_not_at_all(tmp_path: Path) -> None:
    """The chunks of a span mapped from its file are the chunks written, the file gone at
    once; an empty span maps nothing."""
    blocks = _blocks()
    answer = exporter._spill(blocks, f"{tmp_path}/x-", 2)
    assert isinstance(answer, Spilled)
    mapped = exporter._unspill(answer)
    assert mapped == blocks
    assert list(tmp_path.iterdir()) == []
    empty = Block(np.zeros(0, dtype=np.int64), b"", np.zeros(0, dtype=np.int64))
    nothing = exporter._spill([empty], f"{tmp_path}/y-", 3)
    assert isinstance(nothing, Spilled)
    assert exporter._unspill(nothing) == [empty]


def test_files_of_a_killed_process_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    """A departments process killed outright leaves its workers' unread spans; the next
    one to start removes them, and never a file of a process still running."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f"exchange-export-{gone.pid}-77-3"
    live = tmp_path / f"exchange-export-{os.getpid()}-78-4"
    other = tmp_path / "exchange-export-notapid-1-1"
    fresh = tmp_path / f"exchange-export-{gone.pid}-79-5"
    for path in (dead, live, other, fresh):
        path.write_bytes(b"x" * 10)
    old = time.time() - 120
    for path in (dead, live, other):
        os.utime(path, (old, old))
    assert exporter._sweep_dead(str(tmp_path)) == 1
    # A file of a minute ago or less may be a live process's in another pid namespace.
    left = sorted([live.name, other.name, fresh.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == left
