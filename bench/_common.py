"""What the benchmark scripts share: a free loopback port, waiting for a server, reading a
figure out of a tool's report."""

from __future__ import annotations

import re
import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Return once ``url`` answers; exit the script if the server dies or never answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server behind {url} did not start") from None
            time.sleep(0.1)


def figure(pattern: str, text: str, flags: int = 0) -> str:
    """The first group of ``pattern`` in a tool's report (wrk's, /proc's); exit the script
    when the report lacks it."""
    found = re.search(pattern, text, flags)
    if found is None:
        raise SystemExit(f"no {pattern!r} in the report:\n{text[-2000:]}")
    return found.group(1)
