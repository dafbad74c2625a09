"""What the broker reads of an incoming call: its request id, three headers and the body."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import Receive, Scope

from exchange.broker.errors import client_error
from exchange.broker.schemas import MAX_KEYS
from exchange.errors import sane_correlation_id

CASE_HEADER = "x-exchange-case"
CASE_HEADER_RAW = CASE_HEADER.encode()

#: Largest lookup body read (1,000 keys of 64 characters take ~70 KB).
MAX_QUERY_BODY = 1024 * 1024


@dataclass(slots=True)
class Inbound:
    """What the broker reads of a call: its request id, three headers and the body.

    Built from the ASGI scope in one pass over the headers, so the lookup path needs no
    Starlette ``Request`` (whose header view is rebuilt and scanned per ``get``).
    """

    request_id: str
    authorization: str | None = None
    case: str | None = None
    body: bytes = b""
    correlation_id: str | None = None

    @classmethod
    def of_scope(cls, scope: Scope) -> Inbound:
        """Both ways in (the broker's dispatch and FastAPI's routes, behind the request-id
        middleware) have set the request id in the scope's state."""
        state = scope.get("state", {})
        inbound = cls(str(state.get("request_id", "")), correlation_id=state.get("correlation_id"))
        for name, value in scope["headers"]:
            if name == b"authorization":
                inbound.authorization = value.decode("latin-1")
            elif name == CASE_HEADER_RAW:
                inbound.case = value.decode("latin-1")
        return inbound

    @classmethod
    def of_headers(cls, headers: Iterable[tuple[bytes, bytes]], request_id: str) -> Inbound:
        """The broker's fast path: its own request id and one pass over the headers for the
        key, the case and the caller's ``X-Request-Id`` (kept as the correlation id, as
        :func:`exchange.errors.caller_correlation_id` reads it: the first one, if sane)."""
        inbound = cls(request_id)
        correlation: str | None = None
        for name, value in headers:
            if name == b"authorization":
                inbound.authorization = value.decode("latin-1")
            elif name == CASE_HEADER_RAW:
                inbound.case = value.decode("latin-1")
            elif name == b"x-request-id" and correlation is None:
                correlation = sane_correlation_id(value.decode("latin-1"))
        inbound.correlation_id = correlation or None
        return inbound

    async def read_body(self, receive: Receive) -> None:
        """The whole request body, refused past :data:`MAX_QUERY_BODY`."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise client_error("bad_input", "the client went away before its body arrived")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_QUERY_BODY:
                raise client_error(
                    "bad_input",
                    f"the body is larger than {MAX_QUERY_BODY:,} bytes: send at most "
                    f"{MAX_KEYS:,} keys per call",
                    413,
                    {"limit_bytes": MAX_QUERY_BODY},
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
