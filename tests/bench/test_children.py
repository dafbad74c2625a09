"""A benchmark killed outright (SIGKILL, the OOM killer) takes its servers with it: they
used to live on after it, holding their ports and memory, through later runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.bench.modules import BENCH
from tests.serve import free_port

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state  # a zombie has ended; only its reaping is left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_benchmark_takes_its_departments_with_it() -> None:
    code = (
        f"import os, sys; sys.path.insert(0, {str(BENCH)!r})\n"
        "from _common import start_departments\n"
        f"proc = start_departments({free_port()}, 1000, 'exk_operator_t', 'direct-t')\n"
        "print(proc.pid, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    bench = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert bench.returncode == -9, bench.stderr
    child = int(bench.stdout.split()[0])
    deadline = time.monotonic() + 30
    while _alive(child):
        if time.monotonic() > deadline:
            os.kill(child, 9)
            raise AssertionError(f"the departments ({child}) outlived the killed benchmark")
        time.sleep(0.05)
