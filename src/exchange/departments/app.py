"""The mock department runtime: a lean ASGI app serving every department under ``/departments``.

Routes (``{code}`` a department, ``{slug}`` one of its topics)::

    GET    /departments                                   departments served
    GET    /departments/{code}                            a department's definition summary
    GET    /departments/{code}/topics/{slug}/records/{key}  one record
    POST   /departments/{code}/topics/{slug}/query        {"keys": [...]} → records, not_found
    GET    /departments/{code}/topics/{slug}/export?offset=&limit=&fields=   NDJSON stream
    GET|PUT|DELETE /departments/_faults/{code}[/{slug}]   fault control (operator key)

Records, queries and exports answer only calls the exchange signed for that department
(:mod:`exchange.provider_auth`; each department's credential derives from the settings'
``provider_secret``); anything else gets 401 (no or a bad signature, a replay) or 403 (an
API key: department and operator keys do not open a provider's data). The descriptions
(``/departments``, ``/departments/{code}``) hold no records and stay open. A benchmark
that measures a department alone sets ``departments_direct_key`` explicitly.

This is a bare ASGI callable rather than FastAPI: the single-lookup path has to serve well
over 8,000 requests a second from one process, and routing plus pydantic response models cost
more than the lookup itself. Error bodies still follow :mod:`exchange.errors` exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import random
import secrets
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any
from urllib.parse import parse_qsl

import orjson
from pydantic import ValidationError

from exchange import __version__
from exchange.config import Settings
from exchange.departments import bulk, noise
from exchange.departments.changes import ChangeEngine, Now, wall_now
from exchange.departments.city import City
from exchange.departments.definitions import (
    DepartmentDefinition,
    TopicDefinition,
    load_definitions,
)
from exchange.departments.exporter import (
    SPAN_CHUNKS,
    ExportWorkers,
    build_chunk,
    project,
    project_lines,
    span_of,
)
from exchange.departments.faults import FaultPatch, FaultProfile, decide, merge
from exchange.departments.overlay import DELETED, splice
from exchange.departments.publisher import Publisher, RemoteClock
from exchange.departments.records import GENERATORS, Generator, key_problem
from exchange.errors import error_body
from exchange.provider_auth import ProviderVerifier, SignatureError, derive_provider_secret

__all__ = ["DepartmentsApp", "create_departments_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREFIX = "departments"
MAX_BATCH = 1000
MAX_BODY = 1 << 20
MAX_EXPORT_LIMIT = 1_000_000
DEFAULT_EXPORT_LIMIT = 10_000
EXPORT_CHUNK = 2048
EXPORT_SEND_BYTES = 256 << 10
EXPORT_CACHE_BYTES = 256 << 20
#: One serialised export chunk: its source rows, their NDJSON lines, the lines joined.
_Chunk = tuple[list[int], list[bytes], bytes]
#: (department, topic, first row, overlay version, fields: () for all of the topic's)
_ChunkKey = tuple[str, str, int, int, tuple[str, ...]]
OVERSHARE_FIELD = "internal_remark"
#: Seconds between two passes of the change engine over the platform clock.
CHANGE_TICK = 0.5
#: Most events one pass applies (the rest wait for the next: the loop keeps answering).
CHANGE_BUDGET = 500
MAX_FEED_LIMIT = 1_000
_log = logging.getLogger(__name__)
_JSON = b"application/json"
_NDJSON = b"application/x-ndjson"


class _Fail(Exception):
    """An error answer (status, code, message, detail) raised inside a handler."""

    def __init__(
        self, status: int, code: str, message: str, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


@dataclass(slots=True)
class _Topic:
    """A served topic with its caches and current fault profile."""

    dept: DepartmentDefinition
    defn: TopicDefinition
    gen: Generator
    fields: tuple[str, ...]
    override: FaultPatch | None = None
    profile: FaultProfile = field(default_factory=FaultProfile)
    lookup: Callable[[str], tuple[str, bytes | str | None]] = field(init=False)

    @property
    def key_code(self) -> str:
        return f"invalid_{self.gen.key_type}"


class _ChunkCache:
    """Serialized export chunks, least recently used evicted past a byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self.items: OrderedDict[_ChunkKey, _Chunk] = OrderedDict()

    def get(self, key: _ChunkKey) -> _Chunk | None:
        hit = self.items.get(key)
        if hit is not None:
            self.items.move_to_end(key)
        return hit

    def put(self, key: _ChunkKey, value: _Chunk) -> None:
        size = len(value[2]) * 2
        if size > self.budget:
            return
        self.items[key] = value
        self.used += size
        while self.used > self.budget:
            _, old = self.items.popitem(last=False)
            self.used -= len(old[2]) * 2

    def drop(self, code: str, slug: str) -> None:
        """Forget every chunk of one topic (its records changed: noise was set)."""
        for key in [k for k in self.items if k[0] == code and k[1] == slug]:
            self.used -= len(self.items.pop(key)[2]) * 2


class DepartmentsApp:
    """The ASGI application; build it with :func:`create_departments_app`."""

    def __init__(
        self,
        settings: Settings,
        definitions: dict[str, DepartmentDefinition],
        city: City,
        now: Now = wall_now,
        remote_clock: RemoteClock | None = None,
    ) -> None:
        self.settings = settings
        self.city = city
        self.definitions = definitions
        #: the platform clock (inside ``exchange up``) or wall time (standalone)
        self.now = now
        self.changes = ChangeEngine(
            city,
            definitions,
            start=now(),
            chunk=EXPORT_CHUNK,
            scale=settings.city_change_scale,
            max_keys=settings.city_change_max_keys,
            retain=settings.city_change_log,
        )
        self._ticker: asyncio.Task[None] | None = None
        self.remote_clock = remote_clock
        self.publisher: Publisher | None = None
        self._publishing: asyncio.Task[None] | None = None
        #: the key the fault endpoints require; generated when the settings have none
        self.operator_key = settings.operator_key or secrets.token_urlsafe(24)
        #: what the departments' credentials derive from; random (nobody can call) when unset
        self.provider_secret = settings.provider_secret or secrets.token_urlsafe(32)
        self.verifiers = {
            code: ProviderVerifier(
                derive_provider_secret(self.provider_secret, code),
                code,
                window=settings.provider_window,
            )
            for code in definitions
        }
        self.direct_key = settings.departments_direct_key
        if self.direct_key is not None and hmac.compare_digest(
            self.direct_key.encode(), self.operator_key.encode()
        ):
            raise ValueError("departments_direct_key must not be the operator key")
        self.dept_overrides: dict[str, FaultPatch] = {}
        self.topics: dict[tuple[str, str], _Topic] = {}
        self.random = random.Random()
        self._chunks = _ChunkCache(EXPORT_CACHE_BYTES)
        #: cold chunks being derived, by (department, topic, first row): callers that
        #: want one meanwhile wait for that derivation instead of starting their own
        self._deriving: dict[tuple[str, str, int], asyncio.Future[_Chunk]] = {}
        #: processes deriving cold chunks (started with the departments, if any)
        self.workers = ExportWorkers(city, settings.departments_export_workers)
        bulk.warm()
        self._summaries: dict[str, bytes] = {}
        for code, dept in definitions.items():
            for t in dept.topics:
                topic = _Topic(dept, t, GENERATORS[t.generator], t.fields)
                topic.lookup = self._make_lookup(topic)
                self.topics[(code, t.slug)] = topic
            self._refresh(code)

    # -- state -------------------------------------------------------------------------

    def _make_lookup(self, topic: _Topic) -> Callable[[str], tuple[str, bytes | str | None]]:
        gen, city, fields = topic.gen, self.city, topic.fields
        rate = topic.profile.noise_rate
        salt = noise.salt_of(topic.dept.code, topic.defn.slug)

        # Cached per key: repeated lookups (the common case under load) cost a dict hit.
        @lru_cache(maxsize=65_536)
        def derived(key: str) -> tuple[str, bytes | str | None]:
            problem = key_problem(gen.key_type, key)
            if problem is not None:
                return "invalid", problem
            rec = gen.lookup(city, key)
            if rec is None:
                return "missing", None
            if rate:
                rec = noise.apply(gen.name, rec, key, salt, rate)
            return "ok", orjson.dumps(project(rec, fields))

        # A changed record wins over the derived one (the cache keeps the derived answer);
        # its serialised form is kept while the record stays the same object.
        changed = self.changes.overlay.layer_keys(gen.name)
        served: dict[str, tuple[dict[str, Any], bytes]] = {}

        def lookup(key: str) -> tuple[str, bytes | str | None]:
            if changed:
                rec = changed.get(key)
                if rec is not None:
                    if rec is DELETED:
                        return "missing", None
                    hit = served.get(key)
                    if hit is None or hit[0] is not rec:
                        hit = served[key] = (rec, orjson.dumps(project(rec, fields)))
                    return "ok", hit[1]
            return derived(key)

        return lookup

    def _refresh(self, code: str) -> None:
        dept = self.definitions[code]
        for t in dept.topics:
            topic = self.topics[(code, t.slug)]
            old_noise = topic.profile.noise_rate
            topic.profile = merge(
                dept.faults, self.dept_overrides.get(code), t.faults, topic.override
            )
            if topic.profile.noise_rate != old_noise:
                # Noise changes the records themselves: cached answers are stale.
                topic.lookup = self._make_lookup(topic)
                self._chunks.drop(code, t.slug)
                for key in [k for k in self._deriving if k[:2] == (code, t.slug)]:
                    # Derived with the old noise: finishes for its waiters, never cached.
                    del self._deriving[key]
        self._summaries.pop(code, None)

    def summary(self, code: str) -> dict[str, Any]:
        """What ``GET /departments/{code}`` returns."""
        dept = self.definitions[code]
        return {
            "code": dept.code,
            "name": dept.name,
            "short_name": dept.short_name,
            "description": dept.description,
            "topics": [
                {
                    "slug": t.slug,
                    "name": t.name,
                    "key": t.key,
                    "key_type": t.key_type,
                    "fields": list(t.fields),
                    "export": t.export,
                    "api_path": f"/topics/{t.slug}",
                    "faults": self.topics[(code, t.slug)].profile.model_dump(),
                }
                for t in dept.topics
            ],
        }

    def faults_view(self, code: str, slug: str | None = None) -> dict[str, Any]:
        """The layers and effective profile(s) of a department or one topic."""
        dept = self.definitions[code]
        if slug is not None:
            topic = self.topics[(code, slug)]
            return {
                "department": code,
                "topic": slug,
                "definition": None if topic.defn.faults is None else topic.defn.faults.given(),
                "override": None if topic.override is None else topic.override.given(),
                "effective": topic.profile.model_dump(),
            }
        override = self.dept_overrides.get(code)
        return {
            "department": code,
            "definition": dept.faults.model_dump(),
            "override": None if override is None else override.given(),
            "topics": {
                t.slug: self.topics[(code, t.slug)].profile.model_dump() for t in dept.topics
            },
        }

    def set_faults(self, code: str, slug: str | None, patch: FaultPatch | None) -> None:
        """Lay ``patch`` over the runtime override (``None`` clears it back to the definition)."""
        if slug is None:
            if patch is None:
                self.dept_overrides.pop(code, None)
            else:
                old = self.dept_overrides.get(code)
                self.dept_overrides[code] = patch if old is None else old.combined(patch)
        else:
            topic = self.topics[(code, slug)]
            if patch is None:
                topic.override = None
            else:
                topic.override = patch if topic.override is None else topic.override.combined(patch)
        self._refresh(code)

    # -- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        headers = scope["headers"]
        # Inside ``exchange up`` the exchange's middleware has named the request already
        # (and echoes its id): the error body must carry the same.
        rid: str = scope.get("state", {}).get("request_id", "")
        for name, value in () if rid else headers:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                if 0 < len(given) <= 64 and given.isascii():
                    rid = given
                break
        if not rid:
            rid = uuid.uuid4().hex
        try:
            await self._route(scope, receive, send, path, rid)
        except _Fail as fail:
            await _send(
                send,
                fail.status,
                _JSON,
                orjson.dumps(error_body(fail.code, fail.message, rid, fail.detail)),
                rid,
            )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- the living city ---------------------------------------------------------------

    async def start(self) -> None:
        """Start the export worker processes; let the city change on the clock (a no-op
        when every rate is 0), and publish the changes to the exchange when
        ``city_publish_url`` names one."""
        await self.workers.start()
        if self._ticker is None and any(self.changes.yearly.values()):
            self._ticker = asyncio.create_task(self._tick(), name="city-changes")
        url = self.settings.city_publish_url
        if self._publishing is None and self.settings.city_publish and url:
            if self.publisher is None:
                # Imported here: the departments alone do not load what it needs (SQLAlchemy).
                from exchange.security import demo_key

                # The keys every seeded department starts with.
                keys = {c: demo_key(self.operator_key, c) for c in self.definitions}
                self.publisher = Publisher(
                    self.changes.log,
                    self.definitions,
                    base_url=url,
                    keys=keys,
                    clock=self.remote_clock,
                )
            self._publishing = asyncio.create_task(self.publisher.run(), name="city-publisher")

    async def stop(self) -> None:
        for task in (self._ticker, self._publishing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._ticker = self._publishing = None
        await asyncio.to_thread(self.workers.stop)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(CHANGE_TICK)
            try:
                # In a thread: a pass derives people and enterprises, which takes a while.
                await asyncio.to_thread(self.changes.advance, self.now(), CHANGE_BUDGET)
            except Exception:  # a bug in one event must not stop the city for good
                _log.exception("the change engine failed; trying again on the next tick")

    async def _route(self, scope: Scope, receive: Receive, send: Send, path: str, rid: str) -> None:
        parts = path.split("/")
        method: str = scope["method"]
        n = len(parts)
        if path == "/healthz":
            # Standalone (``exchange serve departments``), a container's health check and a
            # load balancer need the same liveness answer as every other part.
            _allow(method, "GET")
            health = {"status": "ok", "version": __version__, "departments": len(self.definitions)}
            await _send(send, 200, _JSON, orjson.dumps(health), rid)
            return
        if n < 2 or parts[0] != "" or parts[1] != PREFIX:
            raise _Fail(404, "route_not_found", f"no route {path}")
        if n == 2 or (n == 3 and parts[2] == ""):
            _allow(method, "GET")
            body = orjson.dumps({"departments": [self.summary(c) for c in self.definitions]})
            await _send(send, 200, _JSON, body, rid)
            return
        code = parts[2]
        if code == "_faults":
            await self._faults(scope, receive, send, parts[3:], rid)
            return
        if code == "_changes":
            await self._change_control(scope, send, parts[3:], rid)
            return
        dept = self.definitions.get(code)
        if dept is None:
            raise _Fail(404, "department_not_found", f"no mock department {code!r}")
        if n == 3:
            _allow(method, "GET")
            self._outage_check(code)
            cached = self._summaries.get(code)
            if cached is None:
                cached = self._summaries[code] = orjson.dumps(self.summary(code))
            await _send(send, 200, _JSON, cached, rid)
            return
        # Data from here on: only the exchange's signed calls (the body is signed too).
        body = await _read_body(receive) if method == "POST" else b""
        self._authenticate(scope, code, body)
        if n == 4 and parts[3] == "changes":
            _allow(method, "GET")
            await self._feed(code, scope, send, rid)
            return
        if n < 6 or parts[3] != "topics":
            raise _Fail(404, "route_not_found", f"no route {path}")
        topic = self.topics.get((code, parts[4]))
        if topic is None:
            raise _Fail(404, "topic_not_found", f"{code} serves no topic {parts[4]!r}")
        action = parts[5]
        if action == "records" and n == 7:
            _allow(method, "GET")
            await self._record(topic, parts[6], receive, send, rid)
        elif action == "query" and n == 6:
            _allow(method, "POST")
            await self._query(topic, body, receive, send, rid)
        elif action == "export" and n == 6:
            _allow(method, "GET")
            await self._export(topic, scope, receive, send, rid)
        else:
            raise _Fail(404, "route_not_found", f"no route {path}")

    def _authenticate(self, scope: Scope, code: str, body: bytes) -> None:
        """Let the call through only if the exchange signed it for ``code``."""
        signature = request_id = authorization = None
        for name, value in scope["headers"]:
            if name == b"x-exchange-signature":
                signature = value.decode("latin-1")
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
        if signature is None and authorization is not None and self.direct_key is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                token.strip().encode(), self.direct_key.encode()
            ):
                return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        try:
            self.verifiers[code].verify_values(
                scope["method"],
                raw_path + b"?" + query if query else raw_path,
                body,
                signature=signature,
                request_id=request_id,
                authorization=authorization,
            )
        except SignatureError as exc:
            raise _Fail(exc.status, exc.code, exc.message) from None

    def _outage_check(self, code: str) -> None:
        dept = self.definitions[code]
        if all(self.topics[(code, t.slug)].profile.outage for t in dept.topics):
            raise _Fail(503, "department_unavailable", f"{dept.name} is unavailable")

    async def _apply_faults(self, topic: _Topic, receive: Receive) -> bool:
        """Delay or fail as the profile says; returns True when the answer must be malformed."""
        outcome, delay = decide(topic.profile, self.random)
        if outcome == "hang":
            await _sleep_unless_disconnected(delay, receive)
            raise _Fail(504, "injected_fault", f"injected hang of {delay:g} s ended")
        if delay > 0:
            await asyncio.sleep(delay)
        if outcome == "outage":
            raise _Fail(503, "department_unavailable", f"{topic.dept.name} is unavailable")
        if outcome == "error":
            raise _Fail(
                topic.profile.error_status,
                "injected_fault",
                f"injected fault in {topic.dept.code}/{topic.defn.slug}",
            )
        return outcome == "malformed"

    def _overshared(self, body: bytes) -> bytes:
        # Splice the undeclared field into the already-serialised object.
        extra = orjson.dumps({OVERSHARE_FIELD: "内部核查备注:仅供本部门使用"})
        return body[:-1] + b"," + extra[1:]

    async def _record(
        self, topic: _Topic, key: str, receive: Receive, send: Send, rid: str
    ) -> None:
        malformed = False
        if topic.profile.active:
            malformed = await self._apply_faults(topic, receive)
        status, payload = topic.lookup(key)
        if status == "ok":
            assert isinstance(payload, bytes)
            if topic.profile.overshare:
                payload = self._overshared(payload)
            if malformed:
                payload = payload[: max(1, len(payload) // 2)]
            await _send(send, 200, _JSON, payload, rid)
        elif status == "missing":
            raise _Fail(
                404,
                "record_not_found",
                f"{topic.dept.short_name or topic.dept.name} has no {topic.defn.name} for this key",
                {"key": key, "topic": topic.defn.slug},
            )
        else:
            raise _Fail(
                422,
                topic.key_code,
                f"malformed {topic.defn.key}: {payload!s}",
                {"field": topic.defn.key, "key": key},
            )

    async def _query(
        self, topic: _Topic, raw: bytes, receive: Receive, send: Send, rid: str
    ) -> None:
        malformed = False
        if topic.profile.active:
            malformed = await self._apply_faults(topic, receive)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Fail(400, "invalid_json", "the body is not valid JSON") from None
        keys = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise _Fail(
                422,
                "validation_failed",
                'keys: the body is {"keys": ["...", ...]}',
                {"field": "keys"},
            )
        if not 1 <= len(keys) <= MAX_BATCH:
            raise _Fail(
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
                records.append(self._overshared(payload) if topic.profile.overshare else payload)
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
        await _send(send, 200, _JSON, body, rid)

    # -- export ------------------------------------------------------------------------

    def _build_chunk(self, topic: _Topic, start: int) -> _Chunk:
        """Derive and serialise source rows [start, start + EXPORT_CHUNK) of a topic here."""
        rows, lines = build_chunk(
            self.city,
            topic.gen.name,
            topic.fields,
            topic.profile.noise_rate,
            noise.salt_of(topic.dept.code, topic.defn.slug),
            start,
            start + EXPORT_CHUNK,
        )
        return rows, lines, b"".join(lines)

    async def _build_elsewhere(self, topic: _Topic, starts: list[int]) -> list[_Chunk]:
        """Consecutive chunks derived at once by a worker process (when they run)."""
        try:
            built = await self.workers.build(
                topic.gen.name,
                topic.fields,
                topic.profile.noise_rate,
                noise.salt_of(topic.dept.code, topic.defn.slug),
                starts[0],
                len(starts),
                EXPORT_CHUNK,
            )
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the exports go on without them.
            _log.error("an export worker process died; cold chunks are derived here from now on")
            self.workers.abandon()
            return await asyncio.to_thread(lambda: [self._build_chunk(topic, s) for s in starts])
        return [(rows, lines, b"".join(lines)) for rows, lines in built]

    async def _projected(self, topic: _Topic, start: int, fields: tuple[str, ...]) -> _Chunk:
        """A chunk with each record cut to ``fields`` (an export's ``fields`` parameter).

        Made once from the whole chunk's lines and cached beside it: the exchange asks for
        the granted items of a topic the same way every time, so later exports of that
        grant stream the cut chunk as they would the whole one.
        """
        whole = await self._chunk(topic, start)
        code, slug = topic.dept.code, topic.defn.slug
        version = self.changes.overlay.chunk_version(topic.gen.name, start)
        key = (code, slug, start, version, fields)
        hit = self._chunks.get(key)
        if hit is not None:
            return hit
        lines, blob = project_lines(whole[1], whole[2], fields)
        cut = (whole[0], lines, blob)
        self._chunks.put(key, cut)
        return cut

    async def _chunk(self, topic: _Topic, start: int) -> tuple[list[int], list[bytes], bytes]:
        code, slug, overlay = topic.dept.code, topic.defn.slug, self.changes.overlay
        # Version 0 is the chunk as derived; each change to one of its rows makes a new
        # version, spliced once from the derived chunk and cached like it (older versions
        # age out of the cache).
        version = overlay.chunk_version(topic.gen.name, start)
        if version:
            hit = self._chunks.get((code, slug, start, version, ()))
            if hit is not None:
                return hit
        base = self._chunks.get((code, slug, start, 0, ()))
        if base is None:
            base = await self._derive(topic, start)
        if not version:
            return base
        changed = overlay.changed_rows(topic.gen.name, start) or {}
        dumps, fields = orjson.dumps, topic.fields
        rows, lines = splice(
            base[0], base[1], changed, lambda rec: dumps(project(rec, fields)) + b"\n"
        )
        spliced = (rows, lines, b"".join(lines))
        self._chunks.put((code, slug, start, version, ()), spliced)
        return spliced

    async def _derive(self, topic: _Topic, start: int) -> _Chunk:
        """A cold chunk, derived once however many callers want it at the same time.

        From a fresh exchange a load test's users ask for the same popular pages at once;
        each derived the chunk itself, so N callers cost N derivations (all holding the
        GIL) and every one of them answered N times later. Deriving takes a while: a thread
        keeps the event loop answering. A caller that goes away does not cancel the
        derivation the others wait for (``shield``).
        """
        return await asyncio.shield(self._deriving_of(topic, start))

    def _deriving_of(self, topic: _Topic, start: int) -> asyncio.Future[_Chunk]:
        """The derivation of a cold chunk under way, started now if none is."""
        key = (topic.dept.code, topic.defn.slug, start)
        pending = self._deriving.get(key)
        if pending is None:
            if self.workers.running:
                self._derive_span(topic, [start])
                return self._deriving[key]
            pending = asyncio.ensure_future(asyncio.to_thread(self._build_chunk, topic, start))
            self._deriving[key] = pending
            pending.add_done_callback(lambda done: self._derived(key, done))
        return pending

    def _derive_ahead(self, topic: _Topic, start: int, stop: int) -> None:
        """Start deriving the cold chunks of ``[start, stop)`` that nobody derives yet, so
        worker processes make them while the current one is sent: consecutive ones
        together, up to :func:`span_of` the topic's table a worker call."""
        code, slug = topic.dept.code, topic.defn.slug
        span = span_of(topic.gen.name)
        group: list[int] = []
        for at in range(start, stop, EXPORT_CHUNK):
            if (code, slug, at) in self._deriving or (
                self._chunks.get((code, slug, at, 0, ())) is not None
            ):
                continue
            if group and (at != group[-1] + EXPORT_CHUNK or len(group) == span):
                self._derive_span(topic, group)
                group = []
            group.append(at)
        if group:
            self._derive_span(topic, group)

    def _derive_span(self, topic: _Topic, starts: list[int]) -> None:
        """One worker call for consecutive cold chunks; each chunk's own future (what its
        callers wait for, and what caches it) settles when the call ends."""
        code, slug = topic.dept.code, topic.defn.slug
        loop = asyncio.get_running_loop()
        waiting: list[asyncio.Future[_Chunk]] = []
        for at in starts:
            key = (code, slug, at)
            future: asyncio.Future[_Chunk] = loop.create_future()
            self._deriving[key] = future
            future.add_done_callback(partial(self._derived, key))
            waiting.append(future)

        def settle(done: asyncio.Future[list[_Chunk]]) -> None:
            failed = None if done.cancelled() else done.exception()
            for k, future in enumerate(waiting):
                if future.done():
                    continue
                if done.cancelled():
                    future.cancel()
                elif failed is not None:
                    future.set_exception(failed)
                else:
                    future.set_result(done.result()[k])

        asyncio.ensure_future(self._build_elsewhere(topic, starts)).add_done_callback(settle)

    def _derived(self, key: tuple[str, str, int], done: asyncio.Future[_Chunk]) -> None:
        if self._deriving.get(key) is not done:
            return  # forgotten meanwhile (the topic's noise changed): not cached
        del self._deriving[key]
        # Retrieved here, so a failure nobody waited for is not logged as never retrieved
        # (the waiters, if any, raise it themselves).
        if done.cancelled() or done.exception() is not None:
            return
        self._chunks.put((*key, 0, ()), done.result())

    # -- change feed and control -------------------------------------------------------

    async def _feed(self, code: str, scope: Scope, send: Send, rid: str) -> None:
        """``GET /departments/{code}/changes?after=&limit=``: the department's change log."""
        self._outage_check(code)
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        after = _int_param(params, "after", 0, 0, None)
        limit = _int_param(params, "limit", 100, 1, MAX_FEED_LIMIT)
        log = self.changes.log
        oldest = log.oldest(code)
        if after + 1 < oldest:
            raise _Fail(
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
        await _send(send, 200, _JSON, orjson.dumps(body), rid)

    async def _change_control(self, scope: Scope, send: Send, rest: list[str], rid: str) -> None:
        """``GET /departments/_changes``: the engine's state; ``POST …/_changes/{kind}``:
        make one event happen now (operator key, like fault control)."""
        self._authorise(scope)
        method: str = scope["method"]
        rest = [p for p in rest if p]
        if not rest:
            _allow(method, "GET")
            status = self.changes.status(self.now())
            status["publisher"] = None if self.publisher is None else self.publisher.status()
            body = orjson.dumps(status)
            await _send(send, 200, _JSON, body, rid)
            return
        if len(rest) != 1:
            raise _Fail(404, "route_not_found", "no route under /departments/_changes")
        kind = rest[0]
        if kind not in self.changes.rates:
            raise _Fail(
                404,
                "change_kind_not_found",
                f"no kind of change {kind!r} here; one of {', '.join(self.changes.rates)}",
                {"kind": kind},
            )
        _allow(method, "POST")
        events = await asyncio.to_thread(self.changes.trigger, kind, self.now())
        if not events:
            raise _Fail(
                409,
                "no_subject",
                f"nobody in the city fits a {kind} now (the city may be too small)",
                {"kind": kind},
            )
        body = orjson.dumps({"kind": kind, "events": [e.as_json() for e in events]})
        await _send(send, 201, _JSON, body, rid)

    async def _export(
        self, topic: _Topic, scope: Scope, receive: Receive, send: Send, rid: str
    ) -> None:
        if not topic.defn.export:
            raise _Fail(
                404, "export_not_offered", f"{topic.defn.name} is not offered for bulk export"
            )
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        offset = _int_param(params, "offset", 0, 0, None)
        limit = _int_param(params, "limit", DEFAULT_EXPORT_LIMIT, 1, MAX_EXPORT_LIMIT)
        fields = _fields_param(params, topic.fields)
        malformed = False
        if topic.profile.active:
            malformed = await self._apply_faults(topic, receive)
        total = self.changes.overlay.rows(topic.gen.name)
        stop = min(total, offset + limit)
        headers = [
            (b"content-type", _NDJSON),
            (b"x-request-id", rid.encode()),
            (b"x-total-rows", str(total).encode()),
            (b"x-next-offset", str(stop).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        pending: list[bytes] = []
        size = 0
        overshare = topic.profile.overshare
        start = offset - offset % EXPORT_CHUNK
        # With worker processes, up to two spans a worker are derived ahead of the page.
        ahead = 2 * self.workers.count * SPAN_CHUNKS * EXPORT_CHUNK if self.workers.running else 0
        while start < stop:
            if ahead:
                self._derive_ahead(topic, start, min(stop, start + ahead))
            if fields:
                rows, lines, blob = await self._projected(topic, start, fields)
            else:
                rows, lines, blob = await self._chunk(topic, start)
            if start >= offset and start + EXPORT_CHUNK <= stop:
                piece = blob
            else:
                piece = b"".join(
                    ln for r, ln in zip(rows, lines, strict=True) if offset <= r < stop
                )
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

    # -- fault control -----------------------------------------------------------------

    async def _faults(
        self, scope: Scope, receive: Receive, send: Send, rest: list[str], rid: str
    ) -> None:
        self._authorise(scope)
        method: str = scope["method"]
        rest = [p for p in rest if p]
        if not rest:
            _allow(method, "GET")
            body = orjson.dumps({"departments": [self.faults_view(c) for c in self.definitions]})
            await _send(send, 200, _JSON, body, rid)
            return
        if len(rest) > 2:
            raise _Fail(404, "route_not_found", "no route under /departments/_faults")
        code = rest[0]
        if code not in self.definitions:
            raise _Fail(404, "department_not_found", f"no mock department {code!r}")
        slug = rest[1] if len(rest) == 2 else None
        if slug is not None and (code, slug) not in self.topics:
            raise _Fail(404, "topic_not_found", f"{code} serves no topic {slug!r}")
        _allow(method, "GET", "PUT", "DELETE")
        if method == "PUT":
            raw = await _read_body(receive)
            try:
                patch = FaultPatch.model_validate_json(raw or b"{}")
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "body"
                raise _Fail(
                    422, "validation_failed", f"{where}: {first['msg']}", {"field": where}
                ) from None
            self.set_faults(code, slug, patch)
        elif method == "DELETE":
            self.set_faults(code, slug, None)
        await _send(send, 200, _JSON, orjson.dumps(self.faults_view(code, slug)), rid)

    def _authorise(self, scope: Scope) -> None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and hmac.compare_digest(
                    token.strip().encode(), self.operator_key.encode()
                ):
                    return
                break
        raise _Fail(
            401, "not_authenticated", "fault control needs Authorization: Bearer <operator key>"
        )


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise _Fail(405, "method_not_allowed", f"{method} is not allowed here; use {allowed[0]}")


def _int_param(params: dict[str, str], name: str, default: int, lo: int, hi: int | None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _Fail(422, "validation_failed", f"{name}: not an integer", {"field": name}) from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise _Fail(422, "validation_failed", f"{name}: must be {bound}", {"field": name})
    return value


def _fields_param(params: dict[str, str], served: tuple[str, ...]) -> tuple[str, ...]:
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
        raise _Fail(422, "validation_failed", "fields: too long", {"field": "fields"})
    wanted = set(raw.split(","))
    fields = tuple(f for f in served if f in wanted)
    return () if len(fields) == len(served) else fields


def _overshare_lines(piece: bytes) -> bytes:
    extra = orjson.dumps({OVERSHARE_FIELD: "内部核查备注:仅供本部门使用"})[1:]
    return piece.replace(b"}\n", b"," + extra + b"\n")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Fail(400, "bad_request", "client disconnected")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _Fail(413, "payload_too_large", f"body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _sleep_unless_disconnected(seconds: float, receive: Receive) -> None:
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


async def _send(send: Send, status: int, ctype: bytes, body: bytes, rid: str) -> None:
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


def create_departments_app(
    settings: Settings,
    *,
    definitions: dict[str, DepartmentDefinition] | None = None,
    city: City | None = None,
    now: Now | None = None,
) -> DepartmentsApp:
    """The mock departments as one ASGI app under ``/departments/{code}``.

    ``definitions`` default to the files in ``settings.services_dir``; ``city`` to a city of
    ``settings.seed``, ``settings.population`` and ``settings.enterprises``. ``now`` is the
    clock the city changes on: given inside ``exchange up`` (the platform clock); alone,
    the exchange's clock read over HTTP when ``settings.city_publish_url`` names one, else
    wall time.
    """
    if definitions is None:
        definitions = load_definitions(settings.services_dir)
    if city is None:
        city = City(settings.seed, settings.population, settings.enterprises)
    remote = None
    if now is None:
        if settings.city_publish and settings.city_publish_url:
            now = remote = RemoteClock()
        else:
            now = wall_now
    return DepartmentsApp(settings, definitions, city, now, remote)
