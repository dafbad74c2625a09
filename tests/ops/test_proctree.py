"""Memory and CPU of a process tree, read from /proc (what ``exchange load`` reports)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange import proctree

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

# A parent that starts a child which holds 64 MB, and both then wait to be stopped.
_TREE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import sys, time; block = bytearray(64 << 20); print('ready', flush=True); time.sleep(600)"],
    stdout=sys.stdout)
time.sleep(600)
"""


@pytest.fixture
def tree() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _TREE], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_tree_is_its_root_and_descendants_with_their_memory(
    tree: subprocess.Popen[str],
) -> None:
    pids = proctree.descendants(tree.pid)
    assert pids[0] == tree.pid
    assert len(pids) == 2
    figures = proctree.sample(tree.pid)
    assert figures is not None
    assert [p.pid for p in figures.processes] == pids
    child = figures.processes[1]
    assert child.rss_bytes >= 64 << 20  # the block it holds, written, so resident
    assert child.name.startswith("python")
    assert "bytearray(64 << 20)" in child.command
    assert figures.rss_bytes == sum(p.rss_bytes for p in figures.processes)
    out = figures.as_json()
    assert out["rss_mb"] == round(figures.rss_bytes / 2**20, 1)
    assert len(out["processes"]) == 2  # type: ignore[arg-type]


def test_cpu_time_is_the_process_own() -> None:
    before = proctree.sample(os.getpid())
    assert before is not None
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    after = proctree.sample(os.getpid())
    assert after is not None
    assert after.processes[0].cpu_s - before.processes[0].cpu_s >= 0.25


def test_a_process_that_is_gone_has_no_figures() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert proctree.sample(proc.pid) is None
