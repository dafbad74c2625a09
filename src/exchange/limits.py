"""Limits every request meets before any route sees it: body size, body time, NUL bytes.

Pure ASGI, outermost (ahead of the broker's dispatch), so the broker's endpoints, the
FastAPI routes and the mock departments share one rule:

- a body larger than ``max_body`` is refused with 413: at once when ``Content-Length``
  says so, else when the bytes read pass it;
- a body must arrive whole within ``body_timeout`` seconds of the request's start: a client
  trickling bytes (slowloris) is answered 408 and its connection closed, instead of holding
  a worker and a connection open for as long as it likes;
- a path or query string carrying a NUL byte is refused with 422 (PostgreSQL cannot even
  compare text with a NUL; no identifier or filter of the exchange contains one).

Requests without a body (most GETs) pass with one scan of their headers and no timer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.errors import ExchangeError, error_body

__all__ = ["BodyRefused", "ClientGone", "RequestLimits", "answer"]

_CLOSE = {"Connection": "close"}


# The two bases type ``detail`` and ``headers`` differently (mypy misc); the exchange's
# handler (ExchangeError's, first in the MRO) is the one that renders these.
class BodyRefused(ExchangeError, StarletteHTTPException):  # type: ignore[misc]
    """A body refused while it is read (413 too large, 408 too slow).

    Also a Starlette ``HTTPException`` because FastAPI turns any other error raised while
    it reads a body into a 400 "error parsing the body"; it re-raises these as they are,
    and the exchange's handler renders them (an :class:`ExchangeError` first in the MRO).
    The connection is closed afterwards: the rest of the body is never read.
    """

    def __init__(self, status_code: int, code: str, message: str, limit: float) -> None:
        ExchangeError.__init__(
            self,
            message,
            code=code,
            status_code=status_code,
            detail={"limit": limit},
            headers=dict(_CLOSE),
        )

    def __str__(self) -> str:
        return self.message


def too_large(limit: int) -> BodyRefused:
    return BodyRefused(
        413, "body_too_large", f"the request body is larger than {limit:,} bytes", limit
    )


def too_slow(limit: float) -> BodyRefused:
    return BodyRefused(
        408, "body_timeout", f"the request body did not arrive within {limit:g} s", limit
    )


#: Requests whose bodies start within this many seconds share one deadline timer, which
#: fires this much late at most. A timer per request (call_later, cancel) cost ~5 µs of CPU
#: per broker lookup, measured; a shared one costs a set insertion and removal.
TICK = 0.1


class _Cohort:
    """The requests whose bodies started within one tick, and their one timer: guards
    (:meth:`RequestLimits.guarded`) and tasks reading a body themselves
    (:meth:`RequestLimits.read_body`)."""

    __slots__ = ("fired", "guards", "loop", "opened", "tasks")

    def __init__(self, loop: asyncio.AbstractEventLoop, opened: float, timeout: float) -> None:
        self.loop = loop
        self.opened = opened
        self.fired = False
        self.guards: set[_BodyGuard] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        loop.call_at(opened + TICK + timeout, self._expire)

    def _expire(self) -> None:
        self.fired = True
        for guard in self.guards:
            guard.expire()
        self.guards.clear()
        # A task still in the set is waiting for body bytes (it leaves the set as soon as
        # its body is whole): cancel that wait; read_body turns it into a 408.
        for task in self.tasks:
            task.cancel()
        self.tasks.clear()


class _BodyGuard:
    """One request's ``receive``: counts body bytes and enforces the body deadline.

    When its cohort's deadline fires while the app waits for body bytes, the waiting task
    is cancelled and the wait raises :func:`too_slow` instead.
    """

    __slots__ = ("_cohort", "_done", "_expired", "_limit", "_max", "_receive", "_size", "_waiter")

    def __init__(self, receive: Receive, max_body: int, timeout: float, cohort: _Cohort) -> None:
        self._receive = receive
        self._max = max_body
        self._limit = timeout
        self._size = 0
        self._done = False
        self._expired = False
        self._waiter: asyncio.Task[object] | None = None
        self._cohort = cohort
        cohort.guards.add(self)

    def expire(self) -> None:
        if self._done:
            return
        self._expired = True
        if self._waiter is not None:
            self._waiter.cancel()

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._cohort.guards.discard(self)

    async def receive(self) -> Message:
        if self._done:
            return await self._receive()
        if self._expired:
            raise too_slow(self._limit)
        task = asyncio.current_task()
        self._waiter = task
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            # Ours if the deadline fired and nobody else cancelled the task too.
            if self._expired and task is not None and task.uncancel() == 0:
                self.close()
                raise too_slow(self._limit) from None
            raise
        finally:
            self._waiter = None
        if message["type"] != "http.request":
            self.close()  # the client went away; the app sees that itself
            return message
        self._size += len(message.get("body", b""))
        if self._size > self._max:
            self.close()
            raise too_large(self._max)
        if not message.get("more_body", False):
            self.close()
        return message


class RequestLimits:
    """The outermost rules: see the module docstring.

    Usable as an ASGI layer (``RequestLimits(app, …)``), and in pieces by the exchange's
    front (:class:`exchange.front.Front`), which applies them without a layer of its own:
    :meth:`inspect` on the head, then either :meth:`read_body` (the broker's lookups read
    their body in the request's own task, with no wrapped ``receive``) or :meth:`guarded`.
    """

    def __init__(self, app: ASGIApp | None, *, max_body: int, body_timeout: float) -> None:
        self.app = app
        self.max_body = max_body
        self.body_timeout = body_timeout
        self._cohort: _Cohort | None = None

    def _current_cohort(self) -> _Cohort:
        loop = asyncio.get_running_loop()
        now = loop.time()
        cohort = self._cohort
        if cohort is None or cohort.loop is not loop or now - cohort.opened >= TICK:
            cohort = self._cohort = _Cohort(loop, now, self.body_timeout)
        return cohort

    def inspect(self, scope: Scope) -> tuple[ExchangeError | None, bool]:
        """(the error refusing the request from its head alone, or None; whether a body
        follows)."""
        length = 0
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                # The server has parsed it already; a value it let through is digits.
                length = int(value) if value.isdigit() else 0
            elif name == b"transfer-encoding":
                chunked = True
        has_body = length > 0 or chunked
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            refused = ExchangeError(
                "the path or query string contains a NUL byte",
                code="nul_in_url",
                status_code=422,
                headers=dict(_CLOSE) if has_body else None,
            )
            return refused, has_body
        if length > self.max_body:
            return too_large(self.max_body), has_body
        return None, has_body

    async def guarded(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Call ``app`` with a ``receive`` that enforces the body's size and deadline."""
        guard = _BodyGuard(receive, self.max_body, self.body_timeout, self._current_cohort())
        try:
            await app(scope, guard.receive, send)
        finally:
            guard.close()

    async def read_body(
        self, receive: Receive, cap: int, over_cap: Callable[[], Exception]
    ) -> bytes:
        """The whole body, read in the calling task under the same rules as
        :meth:`guarded` (413 past ``max_body``, 408 past the deadline), and ``over_cap()``
        raised once it passes the route's own ``cap``.

        The deadline: the task joins the current cohort while it waits for body bytes,
        and the cohort's timer cancels it if it is still waiting then. Cheaper than a
        guard object wrapping ``receive`` (the broker reads every lookup's body here).
        """
        cohort = self._current_cohort()
        task = asyncio.current_task()
        assert task is not None
        cohort.tasks.add(task)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    raise ClientGone
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    raise too_large(self.max_body)
                if size > cap:
                    raise over_cap()
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError:
            # Ours if the deadline fired and nobody else cancelled the task too.
            if cohort.fired and task.uncancel() == 0:
                raise too_slow(self.body_timeout) from None
            raise
        finally:
            cohort.tasks.discard(task)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused, has_body = self.inspect(scope)
        if refused is not None:
            await answer(send, refused)
        elif has_body:
            await self.guarded(self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)


class ClientGone(Exception):
    """The client went away before its whole body arrived (:meth:`RequestLimits.read_body`)."""


async def answer(send: Send, exc: ExchangeError) -> None:
    """Answer in the error model without calling the app."""
    rid = uuid.uuid4().hex  # the exchange assigns request ids (a caller's is correlation)
    body = orjson.dumps(error_body(exc.code, exc.message, rid, exc.detail))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", rid.encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
