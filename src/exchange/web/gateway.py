"""The portal's front door: each API path goes to the part of the exchange that owns it.

``exchange serve portal`` is where people and load generators enter a split deployment
(``compose.yaml``): the page is served here, and ``/api/v1/...`` and ``/departments/...``
are passed to the broker, catalog, authz or departments process named for them (a part
with no URL given stays with the app: ``exchange up --workers`` passes only the
departments on). Several
URLs for one part (brokers on several machines) are used in turn, and a URL that refuses
the connection is skipped for the next, which is safe since nothing was sent. A deployment
with its own load balancer (nginx, a cloud one) routes the same prefixes there instead.

Bodies stream both ways: a bulk export goes through without being held, and a transfer
the part aborts is aborted here too (the connection is dropped, never ended as if whole).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
import orjson
import yarl
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.errors import REQUEST_ID_HEADER, error_body

__all__ = ["ROUTES", "Gateway", "PartUrls", "part_of"]

#: Path prefixes and the part that answers them (longest first is not needed: disjoint).
ROUTES: tuple[tuple[str, str], ...] = (
    ("/api/v1/exchange", "broker"),
    ("/api/v1/credit", "broker"),
    ("/api/v1/libraries", "broker"),
    ("/api/v1/federation", "broker"),
    ("/api/v1/subscriptions", "broker"),
    ("/api/v1/licences", "broker"),
    ("/api/v1/catalog", "catalog"),
    ("/api/v1/departments", "catalog"),
    ("/api/v1/whoami", "catalog"),
    ("/api/v1/applications", "authz"),
    ("/api/v1/disputes", "authz"),
    ("/api/v1/grants", "authz"),
    ("/api/v1/authz", "authz"),
    ("/api/v1/audit", "authz"),
    ("/api/v1/load-runs", "authz"),
    ("/api/v1/clock", "authz"),
    ("/departments", "departments"),
)

#: Request and response headers that describe one connection, not the message.
_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)
#: Larger request bodies are refused here (the exchange's own largest, a batch of 1,000
#: keys, is well under a MiB).
MAX_BODY = 8 << 20
_CHUNK = 64 << 10


def part_of(path: str) -> str | None:
    """The part that owns ``path``, or None for the portal's own (page, docs, health)."""
    for prefix, part in ROUTES:
        if path == prefix or path.startswith(prefix + "/"):
            return part
    return None


@dataclass
class PartUrls:
    """Base URLs per part; each part's list is used in turn."""

    urls: Mapping[str, Sequence[str]]
    _turns: dict[str, Iterator[int]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.urls = {p: [u.rstrip("/") for u in us] for p, us in self.urls.items() if us}
        self._turns = {p: itertools.cycle(range(len(us))) for p, us in self.urls.items()}

    def candidates(self, part: str, *, turn: bool = True) -> list[str]:
        """Every URL of ``part``, starting with the one whose turn it is (``turn``: and
        pass the turn on)."""
        urls = self.urls.get(part, ())
        if not urls:
            return []
        if not turn:
            return list(urls)
        start = next(self._turns[part])
        return [*urls[start:], *urls[:start]]


class _Fail(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Gateway:
    """ASGI: forward the paths of :data:`ROUTES` to their part; the rest to ``app``."""

    def __init__(self, app: ASGIApp, parts: PartUrls, *, timeout: float = 120.0) -> None:
        self.app = app
        self.parts = parts
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":

            async def closing() -> Message:
                # The upstream connections close as the server shuts down, before the app.
                message = await receive()
                if message["type"] == "lifespan.shutdown":
                    await self.close()
                return message

            await self.app(scope, closing, send)
            return
        part = part_of(scope["path"]) if scope["type"] == "http" else None
        if part is None or not self.parts.candidates(part, turn=False):
            # The portal's own paths, and parts this gateway is not given: the app's.
            await self.app(scope, receive, send)
            return
        try:
            await self._forward(part, scope, receive, send)
        except _Fail as fail:
            # The gateway's own answer: an id of its own, as every part assigns one.
            rid = uuid.uuid4().hex
            body = orjson.dumps(
                error_body(fail.code, fail.message, rid, {"side": "gateway", "part": part})
            )
            headers = [(b"content-type", b"application/json")]
            headers.append((REQUEST_ID_HEADER.lower().encode(), rid.encode()))
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": fail.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # auto_decompress off: bodies pass through as the part encoded them.
            self._session = aiohttp.ClientSession(
                timeout=self.timeout,
                auto_decompress=False,
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=60),
            )
        return self._session

    async def _forward(self, part: str, scope: Scope, receive: Receive, send: Send) -> None:
        urls = self.parts.candidates(part)
        body = await _read_body(receive)
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.lower() not in _HOP
        ]
        target = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        session = self._client()
        refused: list[str] = []
        for base in urls:
            try:
                resp = await session.request(
                    scope["method"],
                    # Byte for byte: yarl would requote the target (%2C → ","), and a
                    # signed call (the broker's to a department) would no longer match
                    # its signature.
                    yarl.URL(base + target, encoded=True),
                    headers=headers,
                    data=body or None,
                    allow_redirects=False,
                )
            except aiohttp.ClientConnectorError as exc:
                # Nothing reached the part: the next one may take the call.
                refused.append(f"{base}: {exc.os_error}")
                continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _Fail(502, "gateway.bad_response", f"{part} at {base}: {exc!r}") from exc
            async with resp:
                await _relay(resp, send)
            return
        raise _Fail(503, "gateway.unavailable", f"no {part} answers: {'; '.join(refused)}")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise _Fail(400, "bad_request", "the client went away mid-request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _Fail(413, "body_too_large", f"request bodies are limited to {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _relay(resp: aiohttp.ClientResponse, send: Send) -> None:
    """Send the part's answer on; a failure mid-body propagates, so the server drops the
    connection rather than ending a truncated body as if it were whole."""
    headers = [(k.lower(), v) for k, v in resp.raw_headers if k.lower() not in _HOP]
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
    async for chunk in resp.content.iter_chunked(_CHUNK):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
