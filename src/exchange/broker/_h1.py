"""A minimal pooled HTTP/1.1 client for the broker's lookups (POST, small bodies).

Why not aiohttp here: profiled under load, aiohttp's request machinery (request and
response objects, payload registry, timers, stream readers) cost ~150 µs of CPU per call,
about as much as the rest of the broker together, and a broker lookup needs none of it:
one POST with a known body on a kept-alive connection, one answer read whole. This
client writes the request bytes directly and parses the answer with httptools (the parser
uvicorn uses). aiohttp still serves exports (streaming) and ``https`` providers.

Errors: :class:`ConnectionFailed` (refused, reset, closed early, unparsable answer; the
request may be retried) and :class:`TimeoutError`.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools

from exchange import busypoll

__all__ = ["ConnectionFailed", "H1Pool", "KeepingConn"]


class ConnectionFailed(Exception):
    """The call failed before a complete answer arrived."""


@dataclass(frozen=True, slots=True)
class _Target:
    host: str
    port: int
    path: bytes
    host_header: bytes
    #: when this URL's lone answers come (busy-polling spins only for a URL that answers
    #: within its budget)
    expected: busypoll.Expected = field(default_factory=busypoll.Expected, compare=False)


class _Conn(asyncio.Protocol):
    """One kept-alive connection; serves one request at a time.

    A call's budget is watched by one timer per connection, armed when a call finds none
    and left running when the call ends: when it fires, it expires the call in flight if
    that call's deadline has passed, or is armed again for it. A timer armed and cancelled
    per call cost ~2.5-6 µs under uvloop (each cancelled handle is also closed on the next
    loop iteration), a few percent of a lookup; this costs one timer per connection and
    budget, whatever the number of calls.
    """

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []
        self._status = 0
        self._received = False
        #: loop time by which the call in flight must be answered
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio's.
        self.transport = cast(asyncio.WriteTransport, transport)
        # Kept: in CPython 3.11 every asyncio.get_running_loop() is a getpid system call
        # (it checks for a fork), and a send needs the loop for its future.
        self._loop = asyncio.get_running_loop()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Small requests must leave at once, not wait for the previous answer's ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionFailed(f"unparsable answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._stop_timer()
        self._fail(ConnectionFailed(f"connection closed: {exc or 'by the peer'}"))

    # -- httptools callbacks -------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        if not self._parser.should_keep_alive():
            self.close()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, body))

    # -- use -----------------------------------------------------------------------------

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(
        self, request: bytes, deadline: float, expected: busypoll.Expected | None = None
    ) -> asyncio.Future[tuple[int, bytes]]:
        """Send ``request``; the future of its (status, body), failed with
        :class:`TimeoutError` if no answer came by ``deadline`` (loop time). ``expected``:
        when the target's lone answers come (:func:`exchange.busypoll.poll_while_waiting`)."""
        assert self.transport is not None
        loop = self._loop
        assert loop is not None
        self._received = False
        waiter = self._waiter = loop.create_future()
        self._deadline = deadline
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._check_deadline)
        self.transport.write(request)
        busypoll.poll_while_waiting(loop, waiter, expected)
        return waiter

    def _check_deadline(self) -> None:
        """The connection's timer: expire the call in flight once its deadline has passed."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done() or self.closed:
            return  # nothing in flight: the next call arms the timer again
        loop = self._loop
        assert loop is not None
        if loop.time() >= self._deadline:
            _expire(waiter)
        else:  # a later call than the one the timer was armed for
            self._timer = loop.call_at(self._deadline, self._check_deadline)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def received_any(self) -> bool:
        """Whether any byte of the current answer arrived (a retry is no longer blind)."""
        return self._received

    def close(self) -> None:
        self.closed = True
        self._stop_timer()
        if self.transport is not None:
            self.transport.close()


class KeepingConn(_Conn):
    """A connection that also keeps the answer's ``X-Exchange-*`` headers (a signed
    answer's signature and the request it answers: the federation's peer calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[str, str] = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        if name[:11].lower() == b"x-exchange-":
            self.kept[name.decode("latin-1").lower()] = value.decode("latin-1")

    def send(
        self, request: bytes, deadline: float, expected: busypoll.Expected | None = None
    ) -> asyncio.Future[tuple[int, bytes]]:
        self.kept = {}
        return super().send(request, deadline, expected)


def _expire(waiter: asyncio.Future[tuple[int, bytes]]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class H1Pool:
    """Kept-alive connections per (host, port), at most ``size`` per host in use at once."""

    def __init__(self, size: int, conn: type[_Conn] = _Conn) -> None:
        self._size = size
        self._conn = conn
        self._idle: dict[tuple[str, int], deque[_Conn]] = {}
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._targets: dict[str, _Target] = {}
        #: the loop of the pool's calls (its connections and semaphores belong to it);
        #: kept, as a getpid system call per asyncio.get_running_loop() is not free
        self._loop: asyncio.AbstractEventLoop | None = None

    def target(self, url: str) -> _Target | None:
        """The parsed ``http://`` URL, or None for anything this client does not serve."""
        found = self._targets.get(url)
        if found is None:
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                return None
            port = parts.port or 80
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            host = parts.hostname if port == 80 else f"{parts.hostname}:{port}"
            found = _Target(parts.hostname, port, path.encode(), host.encode("idna"))
            if len(self._targets) > 10_000:
                self._targets.clear()
            self._targets[url] = found
        return found

    async def post(
        self,
        target: _Target,
        body: bytes,
        headers: bytes,
        *,
        budget: float,
        connect_budget: float,
        kept: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """POST ``body``; ``headers`` are extra ``Name: value\\r\\n`` lines. Returns
        (status, body) within ``budget`` seconds (connecting within ``connect_budget``);
        with a pool of :class:`KeepingConn`, the answer's kept headers go into ``kept``.
        Raises :class:`ConnectionFailed` or :class:`TimeoutError`."""
        request = b"".join(
            (
                b"POST ",
                target.path,
                b" HTTP/1.1\r\nHost: ",
                target.host_header,
                b"\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\n",
                headers,
                b"\r\n",
                body,
            )
        )
        key = (target.host, target.port)
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = asyncio.Semaphore(self._size)
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        if slots.locked():
            # Every connection to the host is busy: the wait for one counts against the
            # budget (rare; the common path below sets no asyncio.timeout, whose
            # Timeout object cost ~4x a bare timer per call, measured under uvloop).
            async with asyncio.timeout_at(deadline):
                await slots.acquire()
        else:
            await slots.acquire()
        try:
            idle = self._idle.get(key)
            if idle is None:
                idle = self._idle[key] = deque()
            conn: _Conn | None = None
            while idle and conn is None:
                candidate = idle.pop()
                if not candidate.closed:
                    conn = candidate
            reused = conn is not None
            try:
                if conn is None:
                    conn = await self._connect(
                        target, min(connect_budget, max(deadline - loop.time(), 0.0))
                    )
                try:
                    answer = await conn.send(request, deadline, target.expected)
                except ConnectionFailed:
                    # A kept-alive connection the peer closed while it sat idle fails on
                    # first use, before any answer: once more, on a new connection.
                    if not reused or conn.received_any:
                        raise
                    conn = await self._connect(
                        target, min(connect_budget, max(deadline - loop.time(), 0.0))
                    )
                    answer = await conn.send(request, deadline, target.expected)
            except BaseException:
                if conn is not None:
                    conn.close()  # a timeout or cancellation leaves the answer unread
                raise
            if kept is not None and isinstance(conn, KeepingConn):
                kept.update(conn.kept)
            if not conn.closed and len(idle) < self._size:
                idle.append(conn)
            return answer
        finally:
            slots.release()

    async def _connect(self, target: _Target, budget: float) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(budget):
                _, conn = await loop.create_connection(self._conn, target.host, target.port)
        except OSError as exc:
            raise ConnectionFailed(f"cannot connect: {exc}") from None
        return conn

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        self._loop = None
