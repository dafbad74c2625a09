"""Keep-alive under :class:`exchange.serving.CoalescingProtocol`: uvicorn's rule (an idle
connection is closed ``timeout_keep_alive`` seconds after its last response) with one
timer per idle spell instead of one per request."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.polling import wait_until
from tests.serve import coalescing_server

#: the server's keep-alive timeout in these tests, seconds
KEEP_ALIVE = 1.0


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with coalescing_server(_app, timeout_keep_alive=KEEP_ALIVE) as free:
        yield free


def _ask(sock: socket.socket) -> bytes:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while not data.endswith(b"\r\n\r\nok"):
        chunk = sock.recv(1024)
        assert chunk, f"the server closed the connection: {data!r}"
        data += chunk
    return data


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (EOF), without waiting for it."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    finally:
        sock.setblocking(True)


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert _ask(sock).startswith(b"HTTP/1.1 200")
        answered = time.monotonic()
        wait_until(lambda: _closed_by_server(sock), "the server to close the idle connection")
        # Not before the timeout: the rule counts from the last response.
        assert time.monotonic() - answered >= KEEP_ALIVE * 0.5


def test_a_busy_connection_outlives_the_keep_alive_timeout(port: int) -> None:
    """Requests closer together than the timeout, for longer than it: the timer armed
    after the first response finds the connection busy or freshly idle and is armed
    again for the last response's timeout instead of closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        asked = 0
        while time.monotonic() - started < KEEP_ALIVE * 2.5:
            assert _ask(sock).startswith(b"HTTP/1.1 200")
            asked += 1
            time.sleep(KEEP_ALIVE / 10)
        assert asked > 2
        assert not _closed_by_server(sock)
        # Then idle: closed like any other.
        wait_until(lambda: _closed_by_server(sock), "the server to close the idle connection")
