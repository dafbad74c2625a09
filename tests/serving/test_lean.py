"""Lean routes: requests an app claims by ``lean_route`` are answered without ASGI messages,
with uvicorn's keep-alive, pipelining and disconnect handling kept, and everything the lean
path does not take whole served the ordinary way, through the same connection."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from tests.polling import wait_until
from tests.serve import coalescing_server

from exchange.serving import LeanAnswer, LeanHandler


class _App:
    """``/lean/...`` is claimed; ``/lean/slow`` answers after its successor has arrived,
    ``/lean/pass`` hands itself back, ``/lean/boom`` fails. The ordinary path echoes the
    body it reads with a ``via: asgi`` header."""

    def __init__(self) -> None:
        self.lean_served: list[bytes] = []
        self.asgi_served: list[bytes] = []
        #: each body chunk the ordinary path received, as it arrived
        self.asgi_chunks: list[bytes] = []

    def lean_route(self, scope: Any) -> LeanHandler | None:
        if not scope["path"].startswith("/lean/"):
            return None
        return self._lean

    async def _lean(self, scope: Any, body: bytes) -> LeanAnswer | None:
        path = scope["path"]
        if path == "/lean/pass":
            return None
        if path == "/lean/boom":
            raise RuntimeError("boom")
        if path == "/lean/slow":
            await asyncio.sleep(0.05)
        self.lean_served.append(body)
        payload = b"lean:" + path.encode() + b":" + body
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(payload))]
        if path == "/lean/close":
            headers.append((b"connection", b"close"))
        return 200, headers, payload

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            self.asgi_chunks.append(message.get("body", b""))
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.asgi_served.append(body)
        payload = b"asgi:" + scope["path"].encode() + b":" + body
        headers = [(b"via", b"asgi"), (b"content-length", b"%d" % len(payload))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[int, _App]]:
    app = _App()
    with coalescing_server(app) as port:
        yield port, app


def _post(path: str, body: bytes, *extra: bytes, version: bytes = b"1.1") -> bytes:
    head = b"POST %s HTTP/%s\r\nHost: x\r\nContent-Length: %d\r\n" % (
        path.encode(),
        version,
        len(body),
    )
    return head + b"".join(e + b"\r\n" for e in extra) + b"\r\n" + body


def _answers(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """Read ``count`` whole answers (head, body) off ``sock``, by their content-length."""
    data = b""
    out: list[tuple[bytes, bytes]] = []
    while len(out) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            if len(rest) >= length:
                out.append((head, rest[:length]))
                data = rest[length:]
                continue
        chunk = sock.recv(1 << 16)
        assert chunk, f"connection closed after {len(out)} answers: {data[-200:]!r}"
        data += chunk
    assert data == b"", f"more than {count} answers: {data[:200]!r}"
    return out


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def test_claimed_requests_are_answered_lean_and_kept_alive(served: tuple[int, _App]) -> None:
    port, app = served
    before = len(app.lean_served)
    with _connect(port) as sock:
        for n in range(3):
            sock.sendall(_post("/lean/a", b"body%d" % n))
            [(head, body)] = _answers(sock, 1)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert body == b"lean:/lean/a:body%d" % n
            assert b"\r\ndate: " in head  # uvicorn's default headers are kept
            assert b"connection: close" not in head
        sock.sendall(_post("/other", b"x"))  # not claimed: the ordinary path, same socket
        [(head, body)] = _answers(sock, 1)
        assert b"via: asgi" in head
        assert body == b"asgi:/other:x"
    assert app.lean_served[before:] == [b"body0", b"body1", b"body2"]


def test_pipelined_requests_are_answered_in_order(served: tuple[int, _App]) -> None:
    port, _ = served
    with _connect(port) as sock:
        # The first answer is the slowest; the ordinary one in the middle waits its turn.
        sock.sendall(_post("/lean/slow", b"1") + _post("/asgi", b"2") + _post("/lean/fast", b"3"))
        bodies = [body for _, body in _answers(sock, 3)]
    assert bodies == [b"lean:/lean/slow:1", b"asgi:/asgi:2", b"lean:/lean/fast:3"]


def test_what_the_lean_path_does_not_take_goes_the_ordinary_way(
    served: tuple[int, _App],
) -> None:
    port, app = served
    with _connect(port) as sock:
        # Handed back by the handler: the ordinary path still reads the whole body.
        sock.sendall(_post("/lean/pass", b"handed back"))
        [(head, body)] = _answers(sock, 1)
        assert b"via: asgi" in head
        assert body == b"asgi:/lean/pass:handed back"

        # A body that has not all arrived when the request starts.
        head_only = _post("/lean/a", b"0123456789")[:-10]
        sock.sendall(head_only + b"01234")
        # The server has started the request with half its body before the rest is sent.
        wait_until(lambda: b"01234" in app.asgi_chunks, "the request to start with half its body")
        sock.sendall(b"56789")
        [(head, body)] = _answers(sock, 1)
        assert b"via: asgi" in head
        assert body == b"asgi:/lean/a:0123456789"

        # Expect: 100-continue is uvicorn's to answer.
        sock.sendall(_post("/lean/a", b"", b"Expect: 100-continue")[:-2])
        sock.sendall(b"\r\n")
        data = b""
        while b"asgi:/lean/a:" not in data:
            chunk = sock.recv(1 << 16)
            assert chunk
            data += chunk
    assert app.asgi_served[-3:] == [b"handed back", b"0123456789", b""]


def test_connection_close_and_http_1_0_close_after_the_answer(served: tuple[int, _App]) -> None:
    port, _ = served
    with _connect(port) as sock:
        sock.sendall(_post("/lean/a", b"x", b"Connection: close"))
        [(head, body)] = _answers(sock, 1)
        assert b"connection: close" in head
        assert body == b"lean:/lean/a:x"
        assert sock.recv(10) == b""
    with _connect(port) as sock:
        sock.sendall(_post("/lean/a", b"y", version=b"1.0"))
        [(head, body)] = _answers(sock, 1)
        assert b"connection: close" in head
        assert sock.recv(10) == b""
    with _connect(port) as sock:  # the handler's own connection: close ends it too
        sock.sendall(_post("/lean/close", b"z"))
        [(head, body)] = _answers(sock, 1)
        assert head.count(b"connection: close") == 1
        assert sock.recv(10) == b""


def test_a_failing_handler_answers_500_and_the_server_goes_on(served: tuple[int, _App]) -> None:
    port, _ = served
    with _connect(port) as sock:
        sock.sendall(_post("/lean/boom", b""))
        [(head, body)] = _answers(sock, 1)
        assert head.startswith(b"HTTP/1.1 500 ")
        assert body == b"Internal Server Error"
    with _connect(port) as sock:
        sock.sendall(_post("/lean/a", b"after"))
        [(_, body)] = _answers(sock, 1)
        assert body == b"lean:/lean/a:after"


def test_a_client_gone_before_the_answer_leaves_the_server_serving(
    served: tuple[int, _App],
) -> None:
    port, app = served
    with _connect(port) as sock:
        sock.sendall(_post("/lean/slow", b"gone"))
    wait_until(lambda: b"gone" in app.lean_served, "the handler to run to its end")
    with _connect(port) as sock:
        sock.sendall(_post("/lean/a", b"next"))
        [(_, body)] = _answers(sock, 1)
        assert body == b"lean:/lean/a:next"
