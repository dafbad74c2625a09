"""What every request of the exchange passes before (or instead of) FastAPI's routers:
the request limits, the freshness gate, the lean dispatches of the broker's, the
libraries' and the federation's lookups, the request id, and the mock departments mounted
inside ``exchange up``. :func:`exchange.app.create_app` assembles them."""

from __future__ import annotations

import functools
import uuid

from fastapi import FastAPI
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.broker.router import ExchangeDispatch
from exchange.db.freshness import Freshness, Resyncing
from exchange.errors import (
    CORRELATION_ID_HEADER,
    REQUEST_ID_HEADER,
    caller_correlation_id,
    error_body,
)
from exchange.federation.lookup import FederationDispatch
from exchange.libraries.dispatch import LibraryDispatch
from exchange.limits import RequestLimits, answer
from exchange.serving import LeanHandler


class RequestIdMiddleware:
    """Give every request an id of the exchange's own and echo it back; a caller's own
    ``X-Request-Id`` (if sane) is kept as its correlation id and echoed in
    ``X-Correlation-Id``.

    Pure ASGI rather than BaseHTTPMiddleware: it sits on the broker's hot path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        correlation = caller_correlation_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        ids = [(REQUEST_ID_HEADER.lower().encode(), rid.encode())]
        if correlation:
            state["correlation_id"] = correlation
            ids.append((CORRELATION_ID_HEADER.lower().encode(), correlation.encode()))
        names = {name for name, _ in ids}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] not in names]
                headers.extend(ids)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


class Front:
    """What every HTTP request meets first, in one coroutine: the request limits
    (:mod:`exchange.limits`), then the freshness check (before a call reads any cache,
    apply the changes other processes announced, or answer 503 while this process cannot
    know whether its caches are current: :mod:`exchange.db.freshness`), then the broker's
    endpoints and the libraries' lookups (in a part that has the broker), then everything
    else behind the request-id middleware.

    One layer rather than a stack of pure-ASGI layers: each layer was a coroutine and a
    pass over the headers per call, and the limits' guard wrapped ``receive``; on the
    broker's lookups (profiled) that was ~5 µs of the exchange's CPU per call. The rules
    each part keeps stay in its own module.
    """

    def __init__(
        self,
        rest: ASGIApp,
        *,
        limits: RequestLimits,
        freshness: Freshness,
        exchange: ExchangeDispatch | None = None,
        libraries: LibraryDispatch | None = None,
        federation: FederationDispatch | None = None,
    ) -> None:
        self.rest = rest
        self.limits = limits
        self.check = freshness.check
        self.exchange = exchange
        self.libraries = libraries
        self.federation = federation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.rest(scope, receive, send)
            return
        limits = self.limits
        refused, has_body = limits.inspect(scope)
        if refused is not None:
            await answer(send, refused)
            return
        try:
            self.check()
        except Resyncing as exc:
            await _resyncing(scope, receive, send, exc)
            return
        exchange = self.exchange
        if exchange is not None and (target := exchange.match(scope)) is not None:
            if target[2] == "query" or not has_body:
                # A lookup reads its own body under the limits (no wrapped receive).
                await exchange.serve(scope, receive, send, target, limits)
            else:
                await limits.guarded(
                    functools.partial(exchange.serve, target=target, limits=limits),
                    scope,
                    receive,
                    send,
                )
        elif self.libraries is not None and (lib := self.libraries.match(scope)) is not None:
            await self.libraries.serve(scope, receive, send, lib, limits)
        elif has_body:
            await limits.guarded(self.rest, scope, receive, send)
        else:
            await self.rest(scope, receive, send)

    def lean_route(self, scope: Scope) -> LeanHandler | None:
        """The lean handler of a broker lookup or verification, a library lookup or the
        peer platform's lookup (served by :class:`exchange.serving.CoalescingProtocol`
        without ASGI messages), or None."""
        exchange = self.exchange
        if exchange is None:
            return None
        target = exchange.match(scope)
        if target is None:
            if self.libraries is not None and (lib := self.libraries.match(scope)) is not None:
                return functools.partial(self.libraries.lean, lib, self.admits)
            # The peer platform's lookups (city ⇄ province) take the same lean path.
            federation = self.federation
            if federation is not None and (code := federation.match(scope)) is not None:
                return functools.partial(federation.lean, code, self.admits)
            return None
        if target[2] == "export":
            return None
        return functools.partial(exchange.lean, target, self.admits)

    def admits(self, scope: Scope, size: int) -> bool:
        """Whether the rules of :meth:`__call__` let a request whose ``size``-byte body has
        arrived whole through; what they refuse goes the ordinary way, which words the
        refusal in the one place that does."""
        if self.limits.inspect(scope)[0] is not None or size > self.limits.max_body:
            return False
        try:
            self.check()
        except Resyncing:
            return False
        return True


async def _resyncing(scope: Scope, receive: Receive, send: Send, exc: Resyncing) -> None:
    # The exchange's own request id; the caller's is its correlation id.
    rid = uuid.uuid4().hex
    headers = {REQUEST_ID_HEADER: rid, "Retry-After": "1"}
    if correlation := caller_correlation_id(scope):
        headers[CORRELATION_ID_HEADER] = correlation
    response = JSONResponse(
        error_body(exc.code, exc.message, rid, exc.detail),
        status_code=exc.status_code,
        headers=headers,
    )
    await response(scope, receive, send)


class DepartmentsDispatch:
    """Send ``/departments/…`` straight to the mock department app.

    The department app routes on the full path, so the same base URL shape
    (``http://host:port/departments/{code}``) holds inside ``exchange up`` and standalone;
    dispatching before FastAPI's router also keeps the broker's upstream calls cheap.
    """

    def __init__(self, app: ASGIApp, departments: ASGIApp) -> None:
        self.app = app
        self.departments = departments

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/departments/"):
            await self.departments(scope, receive, send)
            return
        await self.app(scope, receive, send)


class ExchangeApp(FastAPI):
    """FastAPI with pure-ASGI layers (``front``) that see HTTP requests before FastAPI's
    own middleware stack does.

    The broker's endpoints and the mock departments are answered there: FastAPI's stack
    (error and telemetry middleware, body limit, routing across every router) costs more
    per call than the broker's whole pipeline, and ``add_middleware`` can only place a
    layer inside that stack.
    """

    front: ASGIApp | None = None

    def lean_route(self, scope: Scope) -> LeanHandler | None:
        """A handler answering this request without ASGI messages (see
        :class:`exchange.serving.CoalescingProtocol`), or None."""
        front = self.front
        return front.lean_route(scope) if isinstance(front, Front) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None and scope["type"] == "http":
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def core(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI itself (the innermost layer of ``front``)."""
        await super().__call__(scope, receive, send)
