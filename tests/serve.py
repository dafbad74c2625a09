"""Real servers on a free loopback port, for end-to-end tests: ``exchange up`` as a
process, or an ASGI app served in a thread as the exchange serves its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from tests.polling import wait_until

from exchange.serving import CoalescingProtocol


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def exchange_up(
    tmp_path: Path,
    database_url: str,
    operator_key: str,
    *,
    args: tuple[str, ...] = (),
    start_within: float = 60,
    stop_within: float = 10,
    **env: str,
) -> Iterator[Server]:
    """Start ``exchange up [args]`` and stop it afterwards; fail with its log if it won't
    start within ``start_within`` seconds (seeding the largest catalog takes a while)."""
    port = free_port()
    log = tmp_path / f"exchange-{port}.log"
    environ = {
        **os.environ,
        "EXCHANGE_DATABASE_URL": database_url,
        "EXCHANGE_OPERATOR_KEY": operator_key,
        "EXCHANGE_PORT": str(port),
        "EXCHANGE_HOST": "127.0.0.1",
        **env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exchange.cli", "up", *args],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + start_within
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"exchange up exited {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"exchange up did not start in {start_within:.0f} s:\n{log.read_text()}"
                )
            time.sleep(0.1)
        yield Server(url=url, process=proc, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_within)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def coalescing_server(app: Any, **config: Any) -> Iterator[int]:
    """``app`` served by uvicorn in a thread of this process as :func:`exchange.serving.run`
    serves the exchange (:class:`CoalescingProtocol`, no proxy-headers layer around the
    app), on a free loopback port, for as long as the block: the port. ``config`` adds to
    or overrides uvicorn's settings; no lifespan (the test apps have nothing to start)."""
    port = free_port()
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "http": CoalescingProtocol,
        "proxy_headers": False,
        "lifespan": "off",
        "log_level": "critical",
        **config,
    }
    server = uvicorn.Server(uvicorn.Config(app, **settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "the server to start")
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
