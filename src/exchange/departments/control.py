"""The operator's routes: fault control (``/departments/_faults``) and the city's change
control (``/departments/_changes``), both behind the operator key."""

from __future__ import annotations

import asyncio
import hmac

import orjson
from pydantic import ValidationError

from exchange.departments.asgi import (
    JSON,
    Fail,
    Receive,
    Scope,
    Send,
    allow,
    read_body,
    send_body,
)
from exchange.departments.changes import ChangeEngine, Now
from exchange.departments.faults import FaultPatch
from exchange.departments.publisher import Publisher
from exchange.departments.topics import Topics

__all__ = ["authorise", "change_control", "fault_control"]


def authorise(scope: Scope, operator_key: str) -> None:
    """Let the call through only with ``Authorization: Bearer <operator key>``."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                token.strip().encode(), operator_key.encode()
            ):
                return
            break
    raise Fail(401, "not_authenticated", "fault control needs Authorization: Bearer <operator key>")


async def fault_control(
    topics: Topics,
    operator_key: str,
    scope: Scope,
    receive: Receive,
    send: Send,
    rest: list[str],
    rid: str,
) -> None:
    """``GET /departments/_faults``: every department's faults; ``GET|PUT|DELETE
    …/_faults/{code}[/{slug}]``: one department's or topic's override."""
    authorise(scope, operator_key)
    method: str = scope["method"]
    rest = [p for p in rest if p]
    if not rest:
        allow(method, "GET")
        body = orjson.dumps({"departments": [topics.faults_view(c) for c in topics.definitions]})
        await send_body(send, 200, JSON, body, rid)
        return
    if len(rest) > 2:
        raise Fail(404, "route_not_found", "no route under /departments/_faults")
    code = rest[0]
    if code not in topics.definitions:
        raise Fail(404, "department_not_found", f"no mock department {code!r}")
    slug = rest[1] if len(rest) == 2 else None
    if slug is not None and (code, slug) not in topics.by_key:
        raise Fail(404, "topic_not_found", f"{code} serves no topic {slug!r}")
    allow(method, "GET", "PUT", "DELETE")
    if method == "PUT":
        raw = await read_body(receive)
        try:
            patch = FaultPatch.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise Fail(
                422, "validation_failed", f"{where}: {first['msg']}", {"field": where}
            ) from None
        topics.set_faults(code, slug, patch)
    elif method == "DELETE":
        topics.set_faults(code, slug, None)
    await send_body(send, 200, JSON, orjson.dumps(topics.faults_view(code, slug)), rid)


async def change_control(
    changes: ChangeEngine,
    now: Now,
    publisher: Publisher | None,
    operator_key: str,
    scope: Scope,
    send: Send,
    rest: list[str],
    rid: str,
) -> None:
    """``GET /departments/_changes``: the engine's state (with the publisher's, if one
    runs); ``POST …/_changes/{kind}``: make one event happen now."""
    authorise(scope, operator_key)
    method: str = scope["method"]
    rest = [p for p in rest if p]
    if not rest:
        allow(method, "GET")
        status = changes.status(now())
        status["publisher"] = None if publisher is None else publisher.status()
        body = orjson.dumps(status)
        await send_body(send, 200, JSON, body, rid)
        return
    if len(rest) != 1:
        raise Fail(404, "route_not_found", "no route under /departments/_changes")
    kind = rest[0]
    if kind not in changes.rates:
        raise Fail(
            404,
            "change_kind_not_found",
            f"no kind of change {kind!r} here; one of {', '.join(changes.rates)}",
            {"kind": kind},
        )
    allow(method, "POST")
    events = await asyncio.to_thread(changes.trigger, kind, now())
    if not events:
        raise Fail(
            409,
            "no_subject",
            f"nobody in the city fits a {kind} now (the city may be too small)",
            {"kind": kind},
        )
    body = orjson.dumps({"kind": kind, "events": [e.as_json() for e in events]})
    await send_body(send, 201, JSON, body, rid)
