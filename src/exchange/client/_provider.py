"""For a department's own API: accept the exchange's signed calls and nothing else.

    from exchange.client import ExchangeSignatureMiddleware

    app = ExchangeSignatureMiddleware(my_asgi_app, secret=CREDENTIAL, audience="swj")

or, in any framework, ``ProviderVerifier(CREDENTIAL, "swj").verify(method, path_with_query,
body, headers)`` before answering. The protocol is in :mod:`exchange.provider_auth`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from exchange.provider_auth import DEFAULT_WINDOW, ProviderVerifier, SignatureError

__all__ = ["ExchangeSignatureMiddleware"]

_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGI = Callable[[MutableMapping[str, Any], _Receive, _Send], Awaitable[None]]


class ExchangeSignatureMiddleware:
    """Pure ASGI middleware: HTTP requests under ``prefix`` must carry the exchange's
    signature for ``audience``; others get 401/403 in the exchange's error shape.

    The body is read whole before the app sees it (the signature covers its digest), up
    to ``max_body`` bytes (413 beyond). The verified :class:`~exchange.provider_auth.
    SignedCall` is put in ``scope["state"]["exchange_call"]``.
    """

    def __init__(
        self,
        app: _ASGI,
        *,
        secret: str,
        audience: str,
        prefix: str = "/",
        window: float = DEFAULT_WINDOW,
        max_body: int = 1 << 20,
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.max_body = max_body
        self.verifier = ProviderVerifier(secret, audience, window=window)

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: _Receive, send: _Send
    ) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _refuse(send, 413, "payload_too_large", "body too large", headers)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        target = raw_path + b"?" + query if query else raw_path
        try:
            call = self.verifier.verify(scope["method"], target, body, headers)
        except SignatureError as exc:
            await _refuse(send, exc.status, exc.code, exc.message, headers)
            return
        scope.setdefault("state", {})["exchange_call"] = call
        replayed = False

        async def replay() -> _Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(
    send: _Send, status: int, code: str, message: str, headers: dict[str, str]
) -> None:
    rid = headers.get("x-request-id") or uuid.uuid4().hex
    body = json.dumps({"error": {"code": code, "message": message, "request_id": rid}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", rid.encode("latin-1", "replace")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
