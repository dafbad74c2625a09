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
Each part has its module: :mod:`~.asgi` (the plumbing and the error answer),
:mod:`~.topics` (the served topics and their fault layers), :mod:`~.answers` (records,
queries, exports, the change feed), :mod:`~.chunks` (export chunks, cached and derived
once), :mod:`~.control` (the operator's fault and change control). This module assembles
them: routing, authentication and the city's life on the clock.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import secrets
import uuid

import orjson

from exchange import __version__
from exchange.config import Settings
from exchange.departments import answers, bulk, control
from exchange.departments.asgi import JSON, Fail, Receive, Scope, Send, allow, read_body, send_body
from exchange.departments.changes import ChangeEngine, Now, wall_now
from exchange.departments.chunks import EXPORT_CHUNK, ExportChunks
from exchange.departments.city import City
from exchange.departments.definitions import DepartmentDefinition, load_definitions
from exchange.departments.exporter import ExportWorkers
from exchange.departments.publisher import Publisher, RemoteClock
from exchange.departments.topics import Topics
from exchange.errors import error_body
from exchange.provider_auth import ProviderVerifier, SignatureError, derive_provider_secret
from exchange.tasks import cancel_and_wait

__all__ = ["EXPORT_CHUNK", "DepartmentsApp", "create_departments_app"]

PREFIX = "departments"
#: Seconds between two passes of the change engine over the platform clock.
CHANGE_TICK = 0.5
#: Most events one pass applies (the rest wait for the next: the loop keeps answering).
CHANGE_BUDGET = 500
_log = logging.getLogger(__name__)


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
        self.random = random.Random()
        #: processes deriving cold chunks (started with the departments, if any)
        self.workers = ExportWorkers(city, settings.departments_export_workers)
        self.exports = ExportChunks(
            city,
            self.changes.overlay,
            self.workers,
            budget=settings.departments_export_cache_mib << 20,
        )
        bulk.warm()
        if settings.departments_export_workers < 1:
            # This process derives every cold chunk itself, as a worker would.
            bulk.keep_register(city)
        self.served = Topics(definitions, city, self.changes.overlay, self.exports.forget)
        #: every served topic by (department, slug)
        self.topics = self.served.by_key

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
        except Fail as fail:
            await send_body(
                send,
                fail.status,
                JSON,
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
        await cancel_and_wait(self._ticker, self._publishing)
        self._ticker = self._publishing = None
        await self.workers.stop()

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
            allow(method, "GET")
            workers = self.workers
            health = {
                "status": "ok",
                "version": __version__,
                "departments": len(self.definitions),
                # Down (restarting after one died), cold exports are derived in this
                # process: slower, still whole.
                "export_workers": {
                    "processes": workers.count,
                    "running": workers.running,
                    "restarts": workers.restarts,
                },
            }
            await send_body(send, 200, JSON, orjson.dumps(health), rid)
            return
        if n < 2 or parts[0] != "" or parts[1] != PREFIX:
            raise Fail(404, "route_not_found", f"no route {path}")
        if n == 2 or (n == 3 and parts[2] == ""):
            allow(method, "GET")
            body = orjson.dumps({"departments": [self.served.summary(c) for c in self.definitions]})
            await send_body(send, 200, JSON, body, rid)
            return
        code = parts[2]
        if code == "_faults":
            await control.fault_control(
                self.served, self.operator_key, scope, receive, send, parts[3:], rid
            )
            return
        if code == "_changes":
            await control.change_control(
                self.changes,
                self.now,
                self.publisher,
                self.operator_key,
                scope,
                send,
                parts[3:],
                rid,
            )
            return
        dept = self.definitions.get(code)
        if dept is None:
            raise Fail(404, "department_not_found", f"no mock department {code!r}")
        if n == 3:
            allow(method, "GET")
            self.served.outage_check(code)
            await send_body(send, 200, JSON, self.served.summary_json(code), rid)
            return
        # Data from here on: only the exchange's signed calls (the body is signed too).
        body = await read_body(receive) if method == "POST" else b""
        self._authenticate(scope, code, body)
        if n == 4 and parts[3] == "changes":
            allow(method, "GET")
            self.served.outage_check(code)
            await answers.feed(self.changes.log, code, scope, send, rid)
            return
        if n < 6 or parts[3] != "topics":
            raise Fail(404, "route_not_found", f"no route {path}")
        topic = self.topics.get((code, parts[4]))
        if topic is None:
            raise Fail(404, "topic_not_found", f"{code} serves no topic {parts[4]!r}")
        action = parts[5]
        if action == "records" and n == 7:
            allow(method, "GET")
            await answers.record(topic, parts[6], self.random, receive, send, rid)
        elif action == "query" and n == 6:
            allow(method, "POST")
            await answers.query(topic, body, self.random, receive, send, rid)
        elif action == "export" and n == 6:
            allow(method, "GET")
            await answers.export(topic, self.exports, scope, self.random, receive, send, rid)
        else:
            raise Fail(404, "route_not_found", f"no route {path}")

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
            raise Fail(exc.status, exc.code, exc.message) from None


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
