"""Serving an app over HTTP/1.1: uvicorn, with one socket write per small response.

uvicorn's httptools protocol writes a response's status line and headers as soon as the
app sends ``http.response.start``, and the body in a second write when the app sends
``http.response.body``. uvloop sends each write at once, so every small answer costs two
``send`` system calls and two TCP segments, and wakes the client twice. Profiled in the
broker at 64 connections, the second write alone took ~8 % of the exchange's CPU per
lookup. :class:`CoalescingProtocol` hands uvicorn a transport that gathers the writes
made within one turn of the event loop and sends them together at the end of that turn.

Why the end of the turn and not as soon as the body follows the head: under load one turn
answers many connections, and answers written in one burst wake the client once for many.
Measured (bench/broker.py, alternating runs): the end of the turn cost the exchange
117-128 µs and wrk 15-19 µs of CPU per lookup, the eager variant 137-148 µs and 24 µs;
at one connection the two were within noise of each other.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["LARGE_WRITE", "CoalescingProtocol", "CoalescingTransport", "run"]

#: Writes at least this large go out at once (after what is gathered): copying them
#: into a joined buffer would cost more than the system call it saves.
LARGE_WRITE = 64 * 1024


class CoalescingTransport:
    """A transport proxy that sends the small writes of one loop turn as one write.

    Order is kept: a large write, :meth:`close` and :meth:`write_eof` first send what was
    gathered; :meth:`abort` drops it, as the real transport drops its buffer. Everything
    else is the real transport's.
    """

    __slots__ = ("_loop", "_pending", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) >= LARGE_WRITE:
            self.flush()
            self._transport.write(data)
            return
        if not data:
            return
        self._pending.append(bytes(data))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what was gathered, now (a no-op when nothing is)."""
        self._scheduled = False
        pending, self._pending = self._pending, []
        if not pending or self._transport.is_closing():
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)  # type: ignore[arg-type]


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` would fail now (something listens there).

    SO_REUSEADDR as uvicorn sets it: a port left in TIME_WAIT by a stopped exchange is free.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def run(app: Any, *, host: str, port: int, **options: Any) -> None:
    """``uvicorn.run`` with :class:`CoalescingProtocol`, uvloop where installed, no access
    log, no ``Server`` header and no proxy-header layer (nothing here reads the client
    address, and that layer inspected every request)."""
    import uvicorn

    options.setdefault("log_level", "warning")
    options.setdefault("access_log", False)
    options.setdefault("server_header", False)
    options.setdefault("proxy_headers", False)
    uvicorn.run(app, host=host, port=port, loop="auto", http=CoalescingProtocol, **options)
