"""Receive a subscription's pushes: check the exchange's signature, skip events seen
before (the event id is the idempotency key), hand each new event to your function.

    from exchange.client import PushReceiver

    def on_event(event: dict) -> None:
        print(event["id"], event["kind"], event["key"], event["record"])

    receiver = PushReceiver(on_event, secret=CREDENTIAL, audience="wjw")
    app = receiver.asgi()                   # mount in any ASGI server, or:
    with receiver.serve("127.0.0.1", 9000):  # a small threaded server for prototyping
        ...

``CREDENTIAL`` is the department's provider credential (the operator hands it out; the
exchange signs pushes to a department with it, as it signs calls to its API). Answering
2xx acknowledges the whole batch; raise from your function to have the exchange retry it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from exchange.provider_auth import DEFAULT_WINDOW, ProviderVerifier, SignatureError

__all__ = ["PushReceiver"]

Handler = Callable[[dict[str, Any]], None]

_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]


class PushReceiver:
    """Verify, de-duplicate and dispatch pushed events (framework-free core)."""

    def __init__(
        self,
        handler: Handler,
        *,
        secret: str,
        audience: str,
        window: float = DEFAULT_WINDOW,
        remember: int = 100_000,
        max_body: int = 64 << 20,
    ) -> None:
        self.handler = handler
        self.verifier = ProviderVerifier(secret, audience, window=window)
        self.max_body = max_body
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()
        #: events handed to the handler, and duplicates skipped
        self.received = 0
        self.duplicates = 0

    def handle(
        self, method: str, target: str | bytes, body: bytes, headers: MutableMapping[str, str]
    ) -> tuple[int, bytes]:
        """One push: the HTTP status and body to answer with."""
        if method.upper() != "POST":
            return 405, _error("method_not_allowed", "pushes are POSTs")
        try:
            self.verifier.verify(method, target, body, headers)
        except SignatureError as exc:
            return exc.status, _error(exc.code, exc.message)
        try:
            batch = json.loads(body)
            events = batch["events"]
            if not isinstance(events, list):
                raise TypeError("events is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            return 400, _error("bad_push", f"not a push batch: {exc}")
        fresh = 0
        for event in events:
            with self._lock:
                event_id = int(event["id"])
                if event_id in self._seen:
                    self.duplicates += 1
                    continue
            self.handler(event)  # an exception here fails the batch: it is pushed again
            with self._lock:
                self._seen[event_id] = None
                if len(self._seen) > self._remember:
                    self._seen.popitem(last=False)
                self.received += 1
            fresh += 1
        return 200, json.dumps({"received": fresh}).encode()

    def asgi(self) -> Callable[[_Message, _Receive, _Send], Awaitable[None]]:
        """The receiver as an ASGI app (the handler runs on the event loop)."""

        async def app(scope: _Message, receive: _Receive, send: _Send) -> None:
            if scope["type"] != "http":
                return
            chunks: list[bytes] = []
            more = True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            target = scope.get("raw_path") or scope["path"].encode()
            if scope.get("query_string"):
                target = target + b"?" + scope["query_string"]
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            status, payload = self.handle(scope["method"], target, b"".join(chunks), headers)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": payload})

        return app

    @contextlib.contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Run a small threaded HTTP server for prototyping; yields its base URL."""
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > receiver.max_body:
                    self._answer(413, _error("body_too_large", "push too large"))
                    return
                try:
                    body = self.rfile.read(length)
                except (ConnectionResetError, BrokenPipeError):
                    return  # the exchange went away mid-push; it will push again
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    status, payload = receiver.handle("POST", self.path, body, headers)
                except Exception as exc:  # the handler failed: ask for the batch again
                    status, payload = 500, _error("handler_failed", type(exc).__name__)
                self._answer(status, payload)

            def _answer(self, status: int, payload: bytes) -> None:
                # The exchange may have given up waiting (its push timeout): nobody to answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer((host, port), _Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="push-receiver", daemon=True)
        thread.start()
        try:
            yield f"http://{host}:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()
