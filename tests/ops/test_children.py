"""Children that end with their parent (``exchange.children``): a parent killed with SIGKILL
runs no cleanup, so without the kernel's help its children would keep their ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")

# A parent that starts a sleeping child (with or without the death signal), prints the
# child's pid, and waits to be killed.
_PARENT = """
import subprocess, sys
from exchange.children import end_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
    preexec_fn=end_with_parent() if sys.argv[1] == "follow" else None)
print(child.pid, flush=True)
child.wait()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status is left to collect


def _child_after_parent_killed(mode: str) -> int:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, mode], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    with parent.stdout:
        child = int(parent.stdout.readline())
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    return child


def test_a_child_ends_when_its_parent_is_killed() -> None:
    child = _child_after_parent_killed("follow")
    deadline = time.monotonic() + 20
    while _alive(child):
        assert time.monotonic() < deadline, f"child {child} outlived its killed parent"
        time.sleep(0.05)


def test_without_it_the_child_would_outlive_its_parent() -> None:
    # The control: what the death signal prevents really happens without it.
    child = _child_after_parent_killed("plain")
    try:
        time.sleep(0.5)
        assert _alive(child)
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_process_whose_parent_is_already_gone_ends_at_once() -> None:
    # Reparented before it could ask: the pid it expected is not its parent any more.
    code = (
        "import os, signal, time\n"
        "from exchange.children import follow_parent\n"
        "follow_parent(os.getppid() + 1_000_000)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=20)
    assert proc.returncode == -signal.SIGTERM
