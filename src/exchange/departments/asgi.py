"""The departments' bare ASGI plumbing: the error answer, reading a body, sending one, and
the checks on a request's method and query parameters.

The runtime is a bare ASGI callable rather than FastAPI (see :mod:`exchange.departments.app`):
these helpers are the little of a framework it needs, shared by every route.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "JSON",
    "MAX_BODY",
    "NDJSON",
    "Fail",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "allow",
    "fields_param",
    "int_param",
    "read_body",
    "send_body",
    "sleep_at_least",
    "sleep_unless_disconnected",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY = 1 << 20
JSON = b"application/json"
NDJSON = b"application/x-ndjson"


class Fail(Exception):
    """An error answer (status, code, message, detail) raised inside a handler."""

    def __init__(
        self, status: int, code: str, message: str, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


def allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise Fail(405, "method_not_allowed", f"{method} is not allowed here; use {allowed[0]}")


def int_param(params: dict[str, str], name: str, default: int, lo: int, hi: int | None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Fail(422, "validation_failed", f"{name}: not an integer", {"field": name}) from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise Fail(422, "validation_failed", f"{name}: must be {bound}", {"field": name})
    return value


def fields_param(params: dict[str, str], served: tuple[str, ...]) -> tuple[str, ...]:
    """An export's ``fields=a,b``: the topic's fields among those, in the topic's order;
    () for all of them (no parameter, or every field named).

    The exchange names the items a grant allows (the parameter is in the path it signs),
    so the department sends no more than the consumer may see and the broker checks and
    forwards the lines instead of cutting every record itself. Names the topic does not
    serve are left out, as the broker's own filter leaves out items a record lacks.
    """
    raw = params.get("fields")
    if raw is None:
        return ()
    if len(raw) > 4096:
        raise Fail(422, "validation_failed", "fields: too long", {"field": "fields"})
    wanted = set(raw.split(","))
    fields = tuple(f for f in served if f in wanted)
    return () if len(fields) == len(served) else fields


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Fail(400, "bad_request", "client disconnected")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise Fail(413, "payload_too_large", f"body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def sleep_at_least(seconds: float) -> None:
    """Sleep ``seconds``, never less (a department's injected latency).

    Why: uvloop keeps its clock in whole milliseconds, read at the start of a loop turn,
    so its timers fire up to a millisecond early while the loop is polling instead of
    sleeping, as the exchange's busy-polling makes the loop of a process that also runs
    the mock departments (``exchange up``): a department set to answer in 4 ms answered
    in 3.5-4. What is left is slept again (under uvloop a timer under half a millisecond
    is a poll).
    """
    until = time.monotonic() + seconds
    left = seconds
    # Usually once: only a timer set while the loop polls fires early, and then what is
    # left is under a millisecond.
    while left > 0:
        await asyncio.sleep(left)
        left = until - time.monotonic()


async def sleep_unless_disconnected(seconds: float, receive: Receive) -> None:
    """Sleep, but stop as soon as the caller hangs up (so hangs are cancellable)."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait_for(asyncio.shield(watcher), timeout=seconds)
    except TimeoutError:
        pass
    finally:
        watcher.cancel()


async def send_body(send: Send, status: int, ctype: bytes, body: bytes, rid: str) -> None:
    """One whole answer: its status, content type and length, the request's id, the body."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", ctype),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", rid.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
