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

from exchange import proctree
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


#: Starts of ``exchange up`` tried when the port it was given was taken meanwhile
PORT_ATTEMPTS = 3


class PortTaken(Exception):
    """Another process took the port between :func:`free_port` and the server's bind."""


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
    start within ``start_within`` seconds (seeding the largest catalog takes a while).

    A free port is only free when :func:`free_port` looks: a server of another test (the
    suite runs in two processes) can take it before ``exchange up``, which seeds first, binds
    it, and then answer this one's health checks while it fails to bind. So the server is up
    when it answers *and* holds the port itself; one that lost its port is started again on
    another, up to :data:`PORT_ATTEMPTS` times."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            started = _start_exchange(
                tmp_path, database_url, operator_key, args, start_within, stop_within, env
            )
        except PortTaken:
            if attempt == PORT_ATTEMPTS:
                raise
            continue
        break
    proc, server = started
    try:
        yield server
    finally:
        _stop(proc, stop_within)


def _start_exchange(
    tmp_path: Path,
    database_url: str,
    operator_key: str,
    args: tuple[str, ...],
    start_within: float,
    stop_within: float,
    env: dict[str, str],
) -> tuple[subprocess.Popen[bytes], Server]:
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
    proc = exchange_cli(("up", *args), environ, tmp_path, log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + start_within
    try:
        while True:
            if proc.poll() is not None:
                text = log.read_text()
                if "address already in use" in text:
                    raise PortTaken(port)
                raise RuntimeError(f"exchange up exited {proc.returncode}:\n{text}")
            try:
                answered = httpx.get(url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                answered = False
            if answered and holds_port(proc.pid, port):
                return proc, Server(url=url, process=proc, log=log)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"exchange up did not start in {start_within:.0f} s:\n{log.read_text()}"
                )
            time.sleep(0.1)
    except BaseException:
        _stop(proc, stop_within)
        raise


def exchange_cli(
    args: tuple[str, ...], env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    """``exchange ARGS`` as a process in ``cwd``, what it prints (stdout and stderr) into
    ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "exchange.cli", *args],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


class ExitedEarly(AssertionError):
    """The process ended before its log showed what was waited for (its log: ``text``)."""

    def __init__(self, returncode: int, text: str) -> None:
        super().__init__(f"exited {returncode}:\n{text}")
        self.text = text


def wait_for_output(
    proc: subprocess.Popen[bytes], log: Path, shown: str, within: float = 120
) -> str:
    """The text of ``proc``'s ``log`` once it shows ``shown`` (read every 10 ms, so that
    what follows it runs as soon as it is printed); :class:`ExitedEarly` if the process
    ends first, an ``AssertionError`` with the log if ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while shown not in (text := log.read_text(errors="replace")):
        if proc.poll() is not None:
            raise ExitedEarly(proc.returncode, text)
        assert time.monotonic() < deadline, f"{shown!r} not printed within {within} s:\n{text}"
        time.sleep(0.01)
    return text


def _stop(proc: subprocess.Popen[bytes], within: float) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def holds_port(pid: int, port: int) -> bool:
    """Whether process ``pid`` or one of its descendants listens on loopback ``port``
    (Linux's /proc; elsewhere this cannot be told, and the answer is yes)."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return True
    listening = set()
    for table in tables:
        try:
            rows = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # local address "ADDR:PORT" in hex, state 0A is LISTEN, then the socket's inode
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                listening.add(f"socket:[{fields[9]}]")
    if not listening:
        return False
    for current in proctree.descendants(pid):
        try:
            fds = list(Path(f"/proc/{current}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in listening:
                    return True
            except OSError:
                continue
    return False


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
