"""The end-to-end harness's check that a server it started holds its own port (another
test's server may have taken it between ``free_port`` and the bind)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tests.serve import free_port, holds_port

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc")

LISTEN = (
    "import socket, sys, time\n"
    "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
    "print('up', flush=True); time.sleep(30)\n"
)


def test_a_port_this_process_listens_on_is_held_and_a_free_one_is_not() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert holds_port(os.getpid(), port)
    assert not holds_port(os.getpid(), port)
    assert not holds_port(os.getpid(), free_port())


def test_a_port_a_child_listens_on_is_held_and_not_by_another_process() -> None:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", LISTEN, str(port)], stdout=subprocess.PIPE, text=True
    )
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "up"
        assert holds_port(child.pid, port)
        assert holds_port(os.getpid(), port)  # through its child
        assert not holds_port(other.pid, port)  # another server took it, say
    finally:
        for proc in (child, other):
            proc.kill()
            proc.wait()
        if child.stdout is not None:
            child.stdout.close()
