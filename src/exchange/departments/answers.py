"""The data routes' answers: one record, a batch query, an NDJSON export, the change feed.

Each answer plays its topic's fault profile first (delay, hang, outage, injected error),
and may come back malformed or over-shared (a field nobody declared, spliced into the
serialised records) when the profile says so: the exchange's own checks are what these
faults exercise.
"""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

import orjson

from exchange.departments.asgi import (
    JSON,
    NDJSON,
    Fail,
    Receive,
    Scope,
    Send,
    fields_param,
    int_param,
    send_body,
    sleep_at_least,
    sleep_unless_disconnected,
)
from exchange.departments.blocks import Blob
from exchange.departments.changes import ChangeLog
from exchange.departments.chunks import EXPORT_CHUNK, ExportChunks
from exchange.departments.exporter import SPAN_CHUNKS, span_of
from exchange.departments.faults import draw_fault
from exchange.departments.served import Topic

__all__ = [
    "DEFAULT_EXPORT_LIMIT",
    "EXPORT_SEND_BYTES",
    "MAX_BATCH",
    "MAX_EXPORT_LIMIT",
    "MAX_FEED_LIMIT",
    "OVERSHARE_FIELD",
    "apply_faults",
    "export",
    "feed",
    "query",
    "record",
]

MAX_BATCH = 1000
MAX_EXPORT_LIMIT = 1_000_000
DEFAULT_EXPORT_LIMIT = 10_000
EXPORT_SEND_BYTES = 256 << 10
#: Spans a worker may derive ahead of the page an export is sending
AHEAD_SPANS = 4
MAX_FEED_LIMIT = 1_000
OVERSHARE_FIELD = "internal_remark"


async def apply_faults(topic: Topic, rng: random.Random, receive: Receive) -> bool:
    """Delay or fail as the profile says; returns True when the answer must be malformed."""
    outcome, delay = draw_fault(topic.profile, rng)
    if outcome == "hang":
        await sleep_unless_disconnected(delay, receive)
        raise Fail(504, "injected_fault", f"injected hang of {delay:g} s ended")
    if delay > 0:
        await sleep_at_least(delay)
    if outcome == "outage":
        raise Fail(503, "department_unavailable", f"{topic.dept.name} is unavailable")
    if outcome == "error":
        raise Fail(
            topic.profile.error_status,
            "injected_fault",
            f"injected fault in {topic.dept.code}/{topic.defn.slug}",
        )
    return outcome == "malformed"


def _overshared(body: bytes) -> bytes:
    # Splice the undeclared field into the already-serialised object.
    extra = orjson.dumps({OVERSHARE_FIELD: "内部核查备注:仅供本部门使用"})
    return body[:-1] + b"," + extra[1:]


def _overshare_lines(piece: Blob) -> bytes:
    extra = orjson.dumps({OVERSHARE_FIELD: "内部核查备注:仅供本部门使用"})[1:]
    return bytes(piece).replace(b"}\n", b"," + extra + b"\n")


async def record(
    topic: Topic, key: str, rng: random.Random, receive: Receive, send: Send, rid: str
) -> None:
    """``GET …/topics/{slug}/records/{key}``: one record."""
    malformed = False
    if topic.profile.active:
        malformed = await apply_faults(topic, rng, receive)
    status, payload = topic.lookup(key)
    if status == "ok":
        assert isinstance(payload, bytes)
        if topic.profile.overshare:
            payload = _overshared(payload)
        if malformed:
            payload = payload[: max(1, len(payload) // 2)]
        await send_body(send, 200, JSON, payload, rid)
    elif status == "missing":
        raise Fail(
            404,
            "record_not_found",
            f"{topic.dept.short_name or topic.dept.name} has no {topic.defn.name} for this key",
            {"key": key, "topic": topic.defn.slug},
        )
    else:
        raise Fail(
            422,
            topic.key_code,
            f"malformed {topic.defn.key}: {payload!s}",
            {"field": topic.defn.key, "key": key},
        )


async def query(
    topic: Topic, raw: bytes, rng: random.Random, receive: Receive, send: Send, rid: str
) -> None:
    """``POST …/topics/{slug}/query``: the records of up to :data:`MAX_BATCH` keys."""
    malformed = False
    if topic.profile.active:
        malformed = await apply_faults(topic, rng, receive)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Fail(400, "invalid_json", "the body is not valid JSON") from None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise Fail(
            422,
            "validation_failed",
            'keys: the body is {"keys": ["...", ...]}',
            {"field": "keys"},
        )
    if not 1 <= len(keys) <= MAX_BATCH:
        raise Fail(
            422,
            "batch_size",
            f"keys: between 1 and {MAX_BATCH} keys per query",
            {"field": "keys", "count": len(keys)},
        )
    records: list[bytes] = []
    not_found: list[str] = []
    invalid: list[dict[str, str]] = []
    for key in keys:
        status, payload = topic.lookup(key)
        if status == "ok":
            assert isinstance(payload, bytes)
            records.append(_overshared(payload) if topic.profile.overshare else payload)
        elif status == "missing":
            not_found.append(key)
        else:
            invalid.append({"key": key, "code": topic.key_code, "message": str(payload)})
    body = b"".join(
        (
            b'{"records":[',
            b",".join(records),
            b'],"not_found":',
            orjson.dumps(not_found),
            b',"invalid":',
            orjson.dumps(invalid),
            b"}",
        )
    )
    if malformed:
        body = body[: max(1, len(body) // 2)]
    await send_body(send, 200, JSON, body, rid)


async def export(
    topic: Topic,
    chunks: ExportChunks,
    scope: Scope,
    rng: random.Random,
    receive: Receive,
    send: Send,
    rid: str,
) -> None:
    """``GET …/topics/{slug}/export?offset=&limit=&fields=``: rows as NDJSON, streamed."""
    if not topic.defn.export:
        raise Fail(404, "export_not_offered", f"{topic.defn.name} is not offered for bulk export")
    params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    offset = int_param(params, "offset", 0, 0, None)
    limit = int_param(params, "limit", DEFAULT_EXPORT_LIMIT, 1, MAX_EXPORT_LIMIT)
    fields = fields_param(params, topic.fields)
    total = chunks.overlay.rows(topic.gen.name)
    stop = min(total, offset + limit)
    start = offset - offset % EXPORT_CHUNK
    # With worker processes, up to four spans a worker are derived ahead of the page. With
    # two, a worker that fell behind held the page, and the window with it, while the other
    # waited for calls: a traced cold household export, its workers idle 32 ms of 117; 8
    # with four (and a larger answer pipe, see pool.py).
    workers = chunks.workers
    ahead = AHEAD_SPANS * workers.count * SPAN_CHUNKS * EXPORT_CHUNK if workers.running else 0
    # The window ends on a whole span (source rows from 0): as the page moves on by one
    # chunk, the window took in one chunk, and every worker call after the first window's
    # derived a single chunk, paying NumPy's per-call cost four times as often (birth
    # certificates: 9 of 13 calls); now each call is a span again.
    span = span_of(topic.gen.name) * EXPORT_CHUNK

    def derive_window(at: int) -> None:
        """Start deriving the cold chunks of the window ahead of the page at ``at``."""
        if ahead:
            chunks.derive_ahead(topic, at, min(stop, -(-(at + ahead) // span) * span), fields)

    # The first window is under way during the department's latency: a department works
    # while it keeps its caller waiting, and a cold export's first chunks then wait that
    # much less (a warm one has nothing to derive).
    derive_window(start)
    malformed = False
    if topic.profile.active:
        malformed = await apply_faults(topic, rng, receive)
    headers = [
        (b"content-type", NDJSON),
        (b"x-request-id", rid.encode()),
        (b"x-total-rows", str(total).encode()),
        (b"x-next-offset", str(stop).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    pending: list[Blob] = []
    size = 0
    overshare = topic.profile.overshare
    while start < stop:
        derive_window(start)
        if fields:
            block = await chunks.projected(topic, start, fields)
        else:
            block = await chunks.chunk(topic, start)
        if start >= offset and start + EXPORT_CHUNK <= stop:
            piece = block.blob
        else:
            piece = block.between(offset, stop)
        start += EXPORT_CHUNK
        if overshare:
            piece = _overshare_lines(piece)
        pending.append(piece)
        size += len(piece)
        if size >= EXPORT_SEND_BYTES or start >= stop:
            # A cached chunk is already large: send it as is rather than copy it.
            body = pending[0] if len(pending) == 1 else b"".join(pending)
            pending, size = [], 0
            if malformed:
                # Cut the stream mid-record: the caller sees invalid NDJSON and no more.
                await send({"type": "http.response.body", "body": body[: len(body) // 2 + 1]})
                return
            await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def feed(log: ChangeLog, code: str, scope: Scope, send: Send, rid: str) -> None:
    """``GET /departments/{code}/changes?after=&limit=``: the department's change log."""
    params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    after = int_param(params, "after", 0, 0, None)
    limit = int_param(params, "limit", 100, 1, MAX_FEED_LIMIT)
    oldest = log.oldest(code)
    if after + 1 < oldest:
        raise Fail(
            410,
            "cursor_expired",
            f"events before {oldest} are no longer held; start from after={oldest - 1}",
            {"oldest": oldest},
        )
    events = log.after(code, after, limit)
    body = {
        "events": [e.as_json() for e in events],
        "next": events[-1].seq if events else after,
        "last": log.last(code),
    }
    await send_body(send, 200, JSON, orjson.dumps(body), rid)
