"""``create_app(settings)``: every service of the exchange on one ASGI app."""

from __future__ import annotations

import functools
import gc
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from exchange import __version__, busypoll
from exchange.audit.router import router as audit_router
from exchange.audit.trust import Trust
from exchange.audit.writer import AuditWriter
from exchange.authn import Authenticator
from exchange.authz.cache import GrantCache
from exchange.authz.router import install as install_authz
from exchange.authz.router import router as authz_router
from exchange.authz.router import working_calendar
from exchange.bounds import declare as declare_bounds
from exchange.broker.metrics import router as metrics_router
from exchange.broker.router import ExchangeDispatch
from exchange.broker.router import router as broker_router
from exchange.broker.service import build_broker
from exchange.catalog.router import router as catalog_router
from exchange.catalog.search import CatalogIndex
from exchange.clock import Clock
from exchange.config import Settings
from exchange.context import AppContext
from exchange.credit.router import install as install_credit
from exchange.credit.router import router as credit_router
from exchange.db.engine import Database
from exchange.db.migrate import ensure_current
from exchange.distribution.changes_router import changes_router
from exchange.distribution.feed_router import feed_router
from exchange.distribution.router import router as subscriptions_router
from exchange.distribution.runtime import Runtime as DistributionRuntime
from exchange.distribution.runtime import install as install_distribution
from exchange.errors import (
    install_error_handlers,
)
from exchange.federation.lookup import FederationDispatch
from exchange.federation.peer_router import router as federation_peer_router
from exchange.federation.review_router import router as federation_review_router
from exchange.federation.router import router as federation_router
from exchange.federation.runtime import Federation
from exchange.federation.runtime import install as install_federation
from exchange.front import DepartmentsDispatch, ExchangeApp, Front, RequestIdMiddleware
from exchange.libraries.dispatch import LibraryDispatch
from exchange.libraries.gather import Gatherer
from exchange.libraries.router import install as install_libraries
from exchange.libraries.router import router as libraries_router
from exchange.libraries.service import LibraryService
from exchange.licences.gate import Gate as LicenceGate
from exchange.licences.router import router as licences_router
from exchange.licences.signing import LicenceSigner
from exchange.limits import RequestLimits
from exchange.loadruns.router import router as loadruns_router
from exchange.members import service as members_service
from exchange.members.router import identity_router
from exchange.members.router import router as members_router
from exchange.memory import MemoryCollector
from exchange.openapi import install_openapi
from exchange.ops import router as ops_router
from exchange.security import resolve_operator_key, resolve_provider_secret
from exchange.web.docs import VENDOR_URL, vendor_files
from exchange.web.docs import router as docs_router
from exchange.web.router import router as web_router

DESCRIPTION = """
A simulator of a municipal government information-sharing exchange (政务信息共享平台).

Every call carries `Authorization: Bearer <key>`. Errors share one shape:
`{"error": {"code": "...", "message": "...", "request_id": "..."}}`.
"""


def tune_gc(settings: Settings) -> None:
    """Set the cyclic collector up for serving (``gc_freeze``, ``gc_gen0_threshold``), and
    the event loop's busy-polling budget (``busy_poll_us``, :mod:`exchange.busypoll`).

    Call it once a serving process has built its app, right before serving. The catalog,
    caches and modules are long-lived; measured under load, each full collection over
    them paused the event loop ~150 ms (p99 of 130 ms at 64 connections, 39 ms after), so
    they are frozen. A lookup allocates a few hundred short-lived objects, nearly all freed
    by reference counting, yet at CPython's gen0 threshold of 700 a young collection ran
    every few lookups (measured ~8 µs of ~190 µs exchange CPU per spread lookup); a higher
    threshold, as large Python services set, runs it far less often. Not done in
    ``create_app``: a test process builds many apps and would keep them all, and its
    collector should stay the interpreter's.
    """
    if settings.gc_freeze:
        gc.collect()
        gc.freeze()
    if settings.gc_gen0_threshold:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(settings.gc_gen0_threshold, gen1, gen2)
    busypoll.configure(settings.busy_poll_us)


def build_context(settings: Settings) -> AppContext:
    """Engine, clock and authenticator for one app.

    The schema is checked first (``exchange.db.migrate.ensure_current``): an embedded
    SQLite database is upgraded to this code's revision, a PostgreSQL one that is not
    current raises ``SchemaNotCurrent`` naming the command to run.
    """
    db = Database(settings.database_url)
    try:
        ensure_current(db)
    except BaseException:
        db.dispose()
        raise
    operator_key, _ = resolve_operator_key(settings)
    provider_secret, _ = resolve_provider_secret(settings)
    clock = Clock(db)
    ctx = AppContext(
        settings=settings,
        db=db,
        clock=clock,
        auth=Authenticator(
            db.freshness, operator_key, functools.partial(members_service.key_owner, db)
        ),
        operator_key=operator_key,
        provider_secret=provider_secret,
        grants=GrantCache(db, clock),
        calendar=working_calendar(settings),
        # kept fresh by the catalog's and departments' announcements
        catalog_index=CatalogIndex(db.freshness),
    )
    install_authz(ctx)  # authorization's reaction to catalog events
    return ctx


#: The parts of the exchange that ``exchange serve PART`` runs alone (the mock departments,
#: the fifth, are their own app: :mod:`exchange.departments.app`). Each part serves
#: ``/healthz`` and the clock besides its own routes.
PARTS: tuple[str, ...] = ("broker", "catalog", "authz", "portal")

_ROUTERS = {
    # The catalog and the registry of its member units: what is offered, and by whom.
    "catalog": (catalog_router, members_router, identity_router),
    # Who may read what (applications, grants, disputes) and who did (the audit log).
    "authz": (authz_router, audit_router, loadruns_router),
    # The platform's own services (credit, licences) are audited by the broker's writer;
    # distribution sits beside the broker too (its audit writer and /metrics live here);
    # the federation's endpoints answer the peer platform with the broker's lookups.
    "broker": (
        broker_router,
        changes_router,
        subscriptions_router,
        feed_router,
        metrics_router,
        credit_router,
        licences_router,
        libraries_router,
        federation_peer_router,
        federation_router,
        federation_review_router,
    ),
    "portal": (web_router,),
}


def create_app(
    settings: Settings, *, ctx: AppContext | None = None, parts: Collection[str] | None = None
) -> FastAPI:
    """The whole exchange (``parts=None``: every part, with the mock departments inside
    when ``settings.mock_departments``), or only the named :data:`PARTS` (``exchange
    serve``; never the mock departments, which are then a process of their own).

    Every part is built on the same context (database, clock, authenticator, grant cache),
    so a part alone answers exactly as the same routes inside the whole exchange.
    """
    context = ctx or build_context(settings)
    serving = PARTS if parts is None else tuple(p for p in PARTS if p in parts)
    unknown = set(parts or ()) - set(PARTS)
    if unknown or not serving:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    context.serving = serving
    has_broker = "broker" in serving

    broker = None
    distribution: DistributionRuntime | None = None
    libraries: Gatherer | None = None
    library_service: LibraryService | None = None
    federation: Federation | None = None
    audit: AuditWriter | None = None
    trust: Trust | None = None
    if has_broker or "authz" in serving:
        # The audit's signing key (kept outside the database, see audit.checkpoint): the
        # broker signs checkpoints with it, authz verifies and publishes its public half.
        if context.trust is None:
            context.trust = Trust.of(settings)
        trust = context.trust
    if has_broker:
        assert trust is not None
        # The audit writer commits the broker's entries in groups from its own thread; with
        # a SQLite file the broker's durable point is a local journal write (audit.writer).
        if context.audit is None:
            context.audit = AuditWriter(
                context.db,
                journal=trust.journal,
                signer=trust.signer,
                mirror=trust.mirror,
                checkpoint_every=settings.audit_checkpoint_every,
                checkpoint_seconds=settings.audit_checkpoint_seconds,
            )
        audit = context.audit
        context.broker = broker = build_broker(context, audit)
        if context.licence_signer is None:  # the licence signing key, its grant/audit gate
            context.licence_signer = LicenceSigner.of(settings)
            context.licence_gate = LicenceGate(context)
        install_credit(context)  # the tax ratings behind the red list, rated in the background
        context.distribution = distribution = install_distribution(
            context, audit=audit, registry=broker.metrics.registry
        )
        # The base information libraries gather through this broker and serve beside it.
        libraries, library_service = install_libraries(context, broker)
        context.libraries, context.library_service = libraries, library_service
        # The peer platform's way in and this platform's client of it (city ⇄ province).
        context.federation = federation = install_federation(context)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if audit is not None:
            audit.start()
        # PostgreSQL: listen for other processes' changes before serving (no-op on SQLite).
        await run_in_threadpool(context.db.freshness.start)
        if broker is not None:
            # The upstream session needs the running loop, so it opens here, not at build.
            await broker.upstream.start()
            if libraries is not None and settings.library_gather_seconds > 0:
                libraries.start(settings.library_gather_seconds)
        departments = context.departments
        if departments is not None:
            await departments.start()
        if distribution is not None:
            await distribution.start()  # push delivery runs in this process
        if federation is not None:
            await federation.start()
        try:
            yield
        finally:
            if libraries is not None and library_service is not None:
                await libraries.stop()
                library_service.close()
            if federation is not None:
                await federation.stop()
            if distribution is not None:
                await distribution.stop()
            if departments is not None:
                await departments.stop()
            if broker is not None:
                await broker.upstream.close()
            if audit is not None:
                audit.stop()
            if trust is not None:
                trust.close()
            context.grants.close()  # flush quota usage before the engine goes
            context.db.dispose()

    app = ExchangeApp(
        title="exchange — 政务信息共享平台 simulator",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by exchange.web.docs from the package, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = context
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(ops_router)
    # Routers in the order the whole exchange always had them (OpenAPI lists them so).
    for router in (
        members_router,
        identity_router,
        catalog_router,
        audit_router,
        broker_router,
        changes_router,
        subscriptions_router,
        feed_router,
        metrics_router,
        libraries_router,
        federation_peer_router,
        federation_router,
        federation_review_router,
        authz_router,
        credit_router,
        loadruns_router,
        licences_router,
        web_router,
    ):
        if any(router in _ROUTERS[p] for p in serving):
            app.include_router(router)
    # Every part documents its own API, with the page assets served from the package.
    app.include_router(docs_router)
    app.mount(VENDOR_URL, vendor_files(), name="vendor")
    inner: ASGIApp = app.core
    if parts is None and settings.mock_departments:
        from exchange.departments.app import create_departments_app

        dept_settings = settings.model_copy(
            update={
                "operator_key": context.operator_key,
                "provider_secret": context.provider_secret,
                # The departments publish their changes to this very exchange, over HTTP
                # and with their keys, exactly as a department's own system would.
                "city_publish_url": settings.city_publish_url or settings.self_url,
            }
        )
        # The city changes on the platform clock, so a demo's `clock advance` ages it too.
        departments = create_departments_app(dept_settings, now=context.clock.now)
        context.departments = departments
        inner = DepartmentsDispatch(inner, departments=departments)
    # What this process keeps with a bound, beside its resident memory in /metrics.
    context.memory = bounds = declare_bounds(context)
    if broker is not None:
        broker.metrics.registry.register(MemoryCollector(bounds))
    # Limits on every request, the freshness gate, the broker's endpoints (in a part that
    # has the broker), the libraries' (likewise), then request ids for everything else:
    # see Front.
    rest: ASGIApp = RequestIdMiddleware(inner)
    app.front = Front(
        rest,
        limits=RequestLimits(
            None, max_body=settings.max_body_bytes, body_timeout=settings.body_timeout
        ),
        freshness=context.db.freshness,
        exchange=None if broker is None else ExchangeDispatch(broker),
        libraries=None if broker is None else LibraryDispatch(context),
        federation=None if federation is None else FederationDispatch(context),
    )
    return app
