"""The two lookup endpoints served ahead of FastAPI (:class:`LibraryDispatch`), and the
lookup both they and the documented routes in :mod:`exchange.libraries.router` answer with:
authenticate, assemble, audit."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from exchange.broker.service import MAX_QUERY_BODY, Inbound
from exchange.context import AppContext, present
from exchange.errors import ExchangeError, ValidationFailed
from exchange.libraries.schemas import LookupRequest
from exchange.libraries.service import MAX_KEYS, LibraryService
from exchange.limits import ClientGone, RequestLimits
from exchange.serving import LeanAnswer, RequestIds, error_answer, json_answer

__all__ = ["ABSENT", "LibraryDispatch", "library_service", "lookup"]

#: the message of the 503 ``unavailable`` answered where the libraries do not run
ABSENT = "the libraries do not run in this part"


def library_service(ctx: AppContext) -> LibraryService:
    """The lookup service, or 503 ``unavailable`` in a part that does not run it."""
    return present(ctx.library_service, ABSENT)


_KEY = re.compile(r"[0-9A-Za-z]{1,64}")


def _keys_of(body: bytes) -> list[str]:
    """The keys of a ``{"keys": [...]}`` body. The common, well-formed body is checked
    here (orjson and a regular expression: a fifth of pydantic's cost per call); anything
    else goes to :class:`LookupRequest`, whose errors the answer details."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and len(data) == 1:
        keys = data.get("keys")
        if (
            isinstance(keys, list)
            and 1 <= len(keys) <= MAX_KEYS
            and all(isinstance(k, str) and _KEY.fullmatch(k) for k in keys)
        ):
            return keys
    try:
        return LookupRequest.model_validate_json(body).keys
    except ValidationError as exc:
        raise ValidationFailed(
            'the body is {"keys": [...]}: 1 to 100 ID numbers or credit codes',
            field="keys",
            code="bad_input",
            errors=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()],
        ) from None


async def lookup(ctx: AppContext, inbound: Inbound, library: str, keys: list[str] | None) -> bytes:
    """Authenticate, assemble, audit; the JSON answer (errors raised, audited too)."""
    # Served ahead of FastAPI (LibraryDispatch): no dependencies here.
    svc = library_service(ctx)
    started = time.perf_counter()
    consumer = "anonymous"
    answer: dict[str, Any] | None = None
    try:
        principal = ctx.auth.authenticate(inbound.authorization)
        consumer = principal.code
        if keys is None:
            keys = _keys_of(inbound.body)
        answer = svc.lookup(principal, library, keys)
    except ExchangeError as exc:
        await svc.audit(
            svc.audit_entry(
                inbound.request_id, consumer, library, None, exc.code, exc.status_code, started
            )
        )
        raise
    answer = {"request_id": inbound.request_id, **answer}
    await svc.audit(
        svc.audit_entry(inbound.request_id, consumer, library, answer, "ok", 200, started)
    )
    return orjson.dumps(answer)


_PATH = re.compile(r"^/api/v1/libraries/(person|enterprise)/(query|records/([0-9A-Za-z]{1,64}))$")


def _too_many_keys() -> ExchangeError:
    return ValidationFailed(
        f"the body is larger than {MAX_QUERY_BODY:,} bytes: send at most {MAX_KEYS} keys",
        field="keys",
        code="bad_input",
    )


class LibraryDispatch:
    """Serve the two lookup endpoints straight from the ASGI scope, ahead of FastAPI (as
    :class:`exchange.broker.router.ExchangeDispatch` does for the broker): routing and
    dependency solving would cost more than the lookup. The app's front
    (:class:`exchange.front.Front`) asks :meth:`match` and hands matching calls to
    :meth:`serve` after the request limits and the freshness check; the body is read under
    the limits in the request's own task (no wrapped ``receive``). Anything else,
    including a malformed path or method, goes on to FastAPI, which documents both
    routes."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        #: request ids, made as the broker's dispatch makes them
        self.request_id = RequestIds()
        #: lookups answered on the lean path (the tests tell the two paths apart by it)
        self.lean_served = 0

    @staticmethod
    def match(scope: Scope) -> tuple[str, str | None] | None:
        """(library, key or None for a query) when this serves the request."""
        path: str = scope["path"]
        if not path.startswith("/api/v1/libraries/"):
            return None
        match = _PATH.match(path)
        if match is None:
            return None
        library, action, key = match.groups()
        if scope["method"] != ("POST" if action == "query" else "GET"):
            return None
        return library, key

    async def serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        target: tuple[str, str | None],
        limits: RequestLimits,
    ) -> None:
        library, key = target
        rid = self.request_id()
        inbound = Inbound.of_headers(scope["headers"], rid)
        if key is None:
            try:
                inbound.body = await limits.read_body(receive, MAX_QUERY_BODY, _too_many_keys)
            except ClientGone:
                error = ValidationFailed(
                    "the client went away before its body arrived", code="bad_input"
                )
                status_code, headers, payload = error_answer(rid, inbound.correlation_id, error)
            except ExchangeError as exc:
                status_code, headers, payload = error_answer(rid, inbound.correlation_id, exc)
            else:
                status_code, headers, payload = await self._answer(inbound, library, key)
        else:
            status_code, headers, payload = await self._answer(inbound, library, key)
        await send({"type": "http.response.start", "status": status_code, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def lean(
        self,
        target: tuple[str, str | None],
        admits: Callable[[Scope, int], bool],
        scope: Scope,
        body: bytes,
    ) -> LeanAnswer | None:
        """A lookup whose body has arrived whole, answered as bytes on the HTTP protocol's
        lean path (:class:`exchange.serving.CoalescingProtocol`, as the broker's lookups
        are): the same answers, request ids, errors and audit as :meth:`serve`, without
        the ASGI messages, which cost about as much as the lookup itself. None when the
        front's rules (``admits``) refuse the request: the ordinary path words that."""
        if not admits(scope, len(body)):
            return None
        rid = self.request_id()
        inbound = Inbound.of_headers(scope["headers"], rid)
        library, key = target
        if key is None:
            if len(body) > MAX_QUERY_BODY:
                return error_answer(rid, inbound.correlation_id, _too_many_keys())
            inbound.body = body
        self.lean_served += 1
        return await self._answer(inbound, library, key)

    async def _answer(self, inbound: Inbound, library: str, key: str | None) -> LeanAnswer:
        """A lookup's answer with its body read: status, headers, body."""
        rid = inbound.request_id
        try:
            payload = await lookup(self.ctx, inbound, library, None if key is None else [key])
        except ExchangeError as exc:
            return error_answer(rid, inbound.correlation_id, exc)
        return json_answer(200, payload, rid, inbound.correlation_id)
