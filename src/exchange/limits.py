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

import orjson
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.errors import ExchangeError, error_body

__all__ = ["BodyRefused", "RequestLimits"]

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
    """The guards of the requests that started within one tick, and their one timer."""

    __slots__ = ("guards", "loop", "opened")

    def __init__(self, loop: asyncio.AbstractEventLoop, opened: float, timeout: float) -> None:
        self.loop = loop
        self.opened = opened
        self.guards: set[_BodyGuard] = set()
        loop.call_at(opened + TICK + timeout, self._expire)

    def _expire(self) -> None:
        for guard in self.guards:
            guard.expire()
        self.guards.clear()


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
    """The outermost layer: see the module docstring."""

    def __init__(self, app: ASGIApp, *, max_body: int, body_timeout: float) -> None:
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
            await _answer(send, refused)
            return
        if length > self.max_body:
            await _answer(send, too_large(self.max_body))
            return
        if not has_body:
            await self.app(scope, receive, send)
            return
        guard = _BodyGuard(receive, self.max_body, self.body_timeout, self._current_cohort())
        try:
            await self.app(scope, guard.receive, send)
        finally:
            guard.close()


async def _answer(send: Send, exc: ExchangeError) -> None:
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
