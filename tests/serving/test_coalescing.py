"""One socket write per small response: the transport proxy, then a real uvicorn server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from tests.serve import coalescing_server

from exchange.serving import LARGE_WRITE, CoalescingTransport, serve_lean


class _Recorder:
    """The parts of a transport the proxy calls, recording what reaches the socket."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"extra:{name}"


def _proxy() -> tuple[CoalescingTransport, _Recorder, asyncio.AbstractEventLoop]:
    loop = asyncio.get_running_loop()
    real = _Recorder()
    return CoalescingTransport(real, loop), real, loop  # type: ignore[arg-type]


def test_writes_of_one_loop_turn_leave_as_one() -> None:
    asyncio.run(_test_writes_of_one_loop_turn_leave_as_one())


async def _test_writes_of_one_loop_turn_leave_as_one() -> None:
    proxy, real, _ = _proxy()
    proxy.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    proxy.write(b"{}")
    assert real.writes == []
    assert proxy.get_write_buffer_size() == 40
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    proxy.write(b"next")  # a later turn gathers again
    await asyncio.sleep(0)
    assert real.writes[1:] == [b"next"]


def test_large_writes_go_out_at_once_after_what_was_gathered() -> None:
    asyncio.run(_test_large_writes_go_out_at_once_after_what_was_gathered())


async def _test_large_writes_go_out_at_once_after_what_was_gathered() -> None:
    proxy, real, _ = _proxy()
    big = b"x" * LARGE_WRITE
    proxy.write(b"headers")
    proxy.write(big)
    assert real.writes == [b"headers", big]
    assert real.writes[1] is big  # not copied
    await asyncio.sleep(0)
    assert len(real.writes) == 2


def test_close_sends_what_was_gathered_and_abort_drops_it() -> None:
    asyncio.run(_test_close_sends_what_was_gathered_and_abort_drops_it())


async def _test_close_sends_what_was_gathered_and_abort_drops_it() -> None:
    proxy, real, _ = _proxy()
    proxy.write(b"last answer")
    proxy.close()
    assert real.writes == [b"last answer"]
    assert real.closed
    await asyncio.sleep(0)
    assert real.writes == [b"last answer"]

    proxy, real, _ = _proxy()
    proxy.write(b"never sent")
    proxy.abort()
    await asyncio.sleep(0)
    assert real.writes == []
    assert real.aborted
    assert proxy.get_extra_info("peername") == "extra:peername"  # the rest is the real one's


def test_write_now_sends_after_what_was_gathered_and_leaves_the_turn_nothing() -> None:
    asyncio.run(_test_write_now_sends_after_what_was_gathered())


async def _test_write_now_sends_after_what_was_gathered() -> None:
    proxy, real, _ = _proxy()
    proxy.write_now(b"alone")
    assert real.writes == [b"alone"]  # before the turn ends
    proxy.write(b"gathered ")
    proxy.write_now(b"then this")
    assert real.writes[1:] == [b"gathered then this"]  # in order, in one write
    await asyncio.sleep(0)
    assert len(real.writes) == 2  # the end-of-turn flush found nothing left
    real.closed = True
    proxy.write_now(b"too late")
    assert len(real.writes) == 2


class _Flow:
    write_paused = False

    def resume_reading(self) -> None:
        pass


def _cycle(transport: CoalescingTransport) -> SimpleNamespace:
    """What :func:`serve_lean` uses of uvicorn's request cycle."""
    return SimpleNamespace(
        more_body=False,
        waiting_for_100_continue=False,
        disconnected=False,
        scope={"type": "http"},
        body=bytearray(b"{}"),
        flow=_Flow(),
        default_headers=[],
        keep_alive=True,
        transport=transport,
        response_started=False,
        response_complete=False,
        message_event=asyncio.Event(),
        on_response=lambda: None,
    )


async def _handler(scope: Any, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return 200, [(b"content-length", b"2")], body


def test_an_answer_alone_leaves_at_once_and_one_among_others_at_the_end_of_the_turn() -> None:
    asyncio.run(_test_an_answer_alone_leaves_at_once())


async def _test_an_answer_alone_leaves_at_once() -> None:
    # Alone (the server's requests under way are this one): sent by the time the handler's
    # task ends, without waiting for the loop turn's end.
    proxy, real, _ = _proxy()
    cycle = _cycle(proxy)
    await serve_lean(cycle, None, _handler, {"this request"})  # type: ignore[arg-type]
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    assert cycle.response_complete
    # Among others: gathered with what the turn's other answers write, sent at its end.
    proxy, real, _ = _proxy()
    await serve_lean(_cycle(proxy), None, _handler, {"this request", "another"})  # type: ignore[arg-type]
    assert real.writes == []
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


# -- a real server ------------------------------------------------------------------------


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for chunk in (b"a" * 10, b"b" * (LARGE_WRITE + 1), b"c" * 10):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with coalescing_server(_app, log_level="warning") as free:
        yield free


def _exchange(sock: socket.socket, request: bytes, until: bytes) -> bytes:
    sock.sendall(request)
    data = b""
    while not data.endswith(until):
        chunk = sock.recv(1 << 20)
        assert chunk, f"connection closed after {data[-80:]!r}"
        data += chunk
    return data


def test_a_real_server_answers_kept_alive_and_streamed_requests(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(3):  # kept alive: each answer whole, nothing left over
            answer = _exchange(sock, get, b'{"ok":true}')
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
            assert answer.count(b"HTTP/1.1") == 1
        streamed = _exchange(sock, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", b"0\r\n\r\n")
        head, _, chunked = streamed.partition(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head
        body = b""
        while True:  # decode the chunked body: order and sizes survive the proxy
            size_line, _, chunked = chunked.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            body, chunked = body + chunked[:size], chunked[size + 2 :]
        assert body == b"a" * 10 + b"b" * (LARGE_WRITE + 1) + b"c" * 10
        closing = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        assert _exchange(sock, closing, b'{"ok":true}').startswith(b"HTTP/1.1 200 OK")
        assert sock.recv(10) == b""  # closed after the answer was sent, not before
