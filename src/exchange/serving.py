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
import contextlib
import itertools
import logging
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sized
from typing import Any, cast

import orjson
from starlette.types import Scope
from uvicorn import server as uvicorn_server
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from exchange import busypoll
from exchange.errors import CORRELATION_ID_HEADER, REQUEST_ID_HEADER, ExchangeError, error_body

__all__ = [
    "LARGE_WRITE",
    "CoalescingProtocol",
    "CoalescingTransport",
    "LeanAnswer",
    "LeanHandler",
    "RequestIds",
    "error_answer",
    "json_answer",
    "run",
]

log = logging.getLogger("uvicorn.error")

#: A lean handler's answer: status, headers (``content-length`` included) and body.
LeanAnswer = tuple[int, list[tuple[bytes, bytes]], bytes]
#: Answers one request from its scope and whole body; None hands the request back to the
#: ordinary ASGI path (which then reads the same body).
LeanHandler = Callable[[Scope, bytes], Awaitable[LeanAnswer | None]]

_RID_HEADER = REQUEST_ID_HEADER.lower().encode()
_CID_HEADER = CORRELATION_ID_HEADER.lower().encode()
_JSON_HEADER = (b"content-type", b"application/json")


class RequestIds:
    """The request ids a lean dispatch assigns: a random per-process prefix and a counter,
    unique like uuid4 hex (32 characters) without an ``os.urandom`` call per request."""

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:20]
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):012x}"


def json_answer(
    status: int,
    payload: bytes,
    request_id: str,
    correlation_id: str | None,
    extra: Iterable[tuple[bytes, bytes]] = (),
) -> LeanAnswer:
    """A JSON answer of a lean dispatch: its request id, and the caller's own as the
    correlation id when it sent one."""
    headers = [
        _JSON_HEADER,
        (b"content-length", b"%d" % len(payload)),
        (_RID_HEADER, request_id.encode()),
    ]
    if correlation_id:
        headers.append((_CID_HEADER, correlation_id.encode()))
    headers += extra
    return status, headers, payload


def error_answer(request_id: str, correlation_id: str | None, exc: ExchangeError) -> LeanAnswer:
    """An error answer in the one model (:func:`exchange.errors.error_body`), with the
    error's own headers (``Retry-After``, ...)."""
    body = orjson.dumps(error_body(exc.code, exc.message, request_id, exc.detail))
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    return json_answer(exc.status_code, body, request_id, correlation_id, extra)


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

    def write_now(self, data: bytes) -> None:
        """Send ``data`` at once, after what was gathered (the end-of-turn flush then
        finds nothing to send)."""
        if self._pending:
            self._pending.append(data)
            self.flush()
        elif data and not self._transport.is_closing():
            self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def is_closing(self) -> bool:
        # Asked once per answered request (uvicorn's on_response_complete): spelled out,
        # as the __getattr__ fallback first fails a normal lookup.
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`, with lean routes.

    Lean routes: an app with a ``lean_route(scope)`` method (:class:`exchange.front.ExchangeApp`)
    may claim a request once its head is parsed, with a :data:`LeanHandler` that gets the
    scope and the whole body and returns the answer as bytes. No ASGI ``receive`` or
    ``send`` runs for it: on the broker's lookups (profiled) uvicorn's ``send`` alone, which
    validates every header with two regular expressions and writes head and body
    separately, cost about as much as the provider call's client side, and the ASGI
    layers above it (the request's messages, the front's coroutine, the body reader)
    as much again. Everything else about the request stays uvicorn's: parsing, the cycle
    object (keep-alive, pipelining, disconnects, flow control) and its bookkeeping when
    the answer is written. A request the lean path does not take whole (its body not yet
    all read, ``Expect: 100-continue``) or that its handler hands back goes the ordinary
    way, through the same cycle.

    Keep-alive: uvicorn arms a timer after every response and cancels it when the next
    request arrives, ~2.5-6 µs per request under uvloop (each cancelled timer handle is
    also closed on the next loop iteration). Here one timer per idle spell is armed when
    a response leaves the connection idle and none is armed; when it fires it closes the
    connection if it has been idle ``timeout_keep_alive`` seconds since its last response,
    or is armed again for that moment. Same rule as uvicorn's (an idle connection closes
    that long after its last response), with a timer per ``timeout_keep_alive`` seconds
    instead of per request.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Off with reset_contextvars: that option's tasks run in a fresh context, which
        # the lean path's task does not set up.
        lean = None if self.config.reset_contextvars else getattr(self.app, "lean_route", None)
        self._lean: Callable[[Scope], LeanHandler | None] | None = lean
        #: loop time of the last response that left the connection idle; None while a
        #: request is being read or answered
        self._idle_since: float | None = None
        self._idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self._idle_since = None
        super().data_received(data)

    def on_response_complete(self) -> None:
        # uvicorn's, but for the keep-alive timer (see the class docstring).
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        loop = self.loop
        self._idle_since = now = loop.time()
        if self._idle_timer is None:
            self._idle_timer = loop.call_at(now + self.timeout_keep_alive, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        since = self._idle_since
        if since is None:
            return  # a request came: its response arms the timer again
        due = since + self.timeout_keep_alive
        if self.loop.time() >= due:
            self.timeout_keep_alive_handler()
        else:
            self._idle_timer = self.loop.call_at(due, self._idle_check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # uvicorn calls this for every request it starts, at once or after a pipelined
        # predecessor; ``app`` is not ours when uvicorn answers 503 (concurrency limit).
        lean = self._lean
        if lean is not None and app is self.app:
            handler = lean(cast(Scope, cycle.scope))
            if handler is not None:
                task = self.loop.create_task(serve_lean(cycle, app, handler, self.tasks))
                task.add_done_callback(self.tasks.discard)
                self.tasks.add(task)
                return
        super()._start_asgi_task(cycle, app)


def _no_response() -> None:
    """What a finished cycle's ``on_response`` becomes (as uvicorn's ``run_asgi`` does)."""


async def serve_lean(
    cycle: RequestResponseCycle, app: Any, handler: LeanHandler, tasks: Sized = ()
) -> None:
    """Answer ``cycle``'s request with ``handler``, or the ordinary way when it cannot.

    ``tasks`` are the server's requests being answered (this one among them): an answer
    written while no other request is under way leaves at once rather than at the end of
    the loop turn. The end of the turn gathers the answers of many connections into one
    burst that wakes the client once (see the module docstring); alone, an answer has no
    company to wait for, and waiting for the turn's end put the task's teardown and one
    more loop iteration (~10 µs, traced at one connection) before its system call.

    Errors are treated as uvicorn's ``run_asgi`` treats an app's: logged, then a 500 if
    nothing was sent yet, else the connection closed.
    """
    busypoll.serving(tasks)
    try:
        answer = None
        if not (cycle.more_body or cycle.waiting_for_100_continue or cycle.disconnected):
            answer = await handler(cast(Scope, cycle.scope), bytes(cycle.body))
        if answer is None:
            await cycle.run_asgi(app)
            return
        cycle.body = bytearray()
        # What uvicorn's receive and send would do: reading may have paused on a large
        # body, and writing waits while the client is not reading.
        cycle.flow.resume_reading()
        if cycle.flow.write_paused and not cycle.disconnected:
            await cycle.flow.drain()
        write_answer(cycle, *answer, at_once=len(tasks) <= 1)
    except BaseException as exc:
        log.error("Exception in ASGI application\n", exc_info=exc)
        if not cycle.response_started:
            await cycle.send_500_response()
        else:
            cycle.transport.close()
    finally:
        cycle.on_response = _no_response


def write_answer(
    cycle: RequestResponseCycle,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    at_once: bool = False,
) -> None:
    """Write a whole answer in one piece and complete the cycle, as uvicorn's ``send``
    does for a response with a ``content-length`` (the headers are the handler's own,
    not a caller's: they are not validated again). ``at_once``: sent now, not at the end
    of the loop turn (over a :class:`CoalescingTransport`)."""
    if cycle.disconnected:
        return
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    out = [STATUS_LINE[status]]
    for name, value in cycle.default_headers:
        out += (name, b": ", value, b"\r\n")
    close = False
    for name, value in headers:
        if name == b"connection" and b"close" in value.lower():
            close = True
        out += (name, b": ", value, b"\r\n")
    if close:
        cycle.keep_alive = False
    elif not cycle.keep_alive:
        out.append(b"connection: close\r\n")
    out += (b"\r\n", body)
    transport = cycle.transport
    if at_once and isinstance(transport, CoalescingTransport):
        transport.write_now(b"".join(out))
    else:
        transport.write(b"".join(out))
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    cycle.on_response()


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


def run(
    app: Any,
    *,
    host: str,
    port: int,
    on_ready: Callable[[], None] | None = None,
    **options: Any,
) -> None:
    """``uvicorn.run`` with :class:`CoalescingProtocol`, uvloop where installed, no access
    log, no ``Server`` header and no proxy-header layer (nothing here reads the client
    address, and that layer inspected every request).

    ``on_ready`` is called once the app has started and the port is listening: what is
    printed then (``exchange up``'s banner) can be tried at once. Printed before, its curl
    was refused for about a second while the lifespan started and the port was bound."""
    options.setdefault("log_level", "warning")
    options.setdefault("access_log", False)
    options.setdefault("server_header", False)
    options.setdefault("proxy_headers", False)
    config = Config(app, host=host, port=port, loop="auto", http=CoalescingProtocol, **options)
    serve(config, on_ready)


def serve(config: Config, on_ready: Callable[[], None] | None = None) -> None:
    """Serve one ``uvicorn.Config`` (one process) until stopped, as ``uvicorn.run`` does,
    calling ``on_ready`` once the app has started and the port listens (see :func:`run`)."""
    import sys

    server = _ReadyServer(config, on_ready)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        # As uvicorn.run: a server that could not start (port taken, lifespan failed) exits 3.
        sys.exit(STARTUP_FAILURE)


class _ReadyServer(uvicorn_server.Server):
    """uvicorn's server, calling ``on_ready`` when its startup has bound the port."""

    def __init__(self, config: Config, on_ready: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit and self._on_ready is not None:
            self._on_ready()
