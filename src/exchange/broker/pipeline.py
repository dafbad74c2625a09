"""The steps every broker call goes through, whichever way it came in (lookup, verification,
export): authenticate, route, check the grant, then audit its outcome, denials included.

:class:`exchange.broker.service.Broker` adds the three ways in on top of these steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool

from exchange.audit.entry import Entry, escape_text
from exchange.audit.writer import AuditUnavailable, AuditWriter
from exchange.authn import Authenticator
from exchange.authz.policy import Decision
from exchange.broker.batching import LookupBatcher
from exchange.broker.call import BrokerCall
from exchange.broker.errors import (
    DENIAL_STATUS,
    ProviderUnavailable,
    broker_error,
    client_error,
)
from exchange.broker.inbound import Inbound
from exchange.broker.metrics import BrokerMetrics
from exchange.broker.quota import QuotaHolds
from exchange.broker.routes import NOT_CACHED, Route, RouteCache
from exchange.broker.upstream import Upstream
from exchange.clock import Clock
from exchange.context import AppContext
from exchange.db.engine import Database
from exchange.errors import ExchangeError, NotAuthenticated

log = logging.getLogger(__name__)

MAX_CASE = 200
#: outcome and status audited for an export the consumer abandoned (nginx's 499)
ABANDONED = "client.abandoned"
ABANDONED_STATUS = 499


class GrantChecker(Protocol):
    """What the broker needs of the authorization service (``ctx.grants``)."""

    def check(
        self, consumer: str, resource_code: str, items: Iterable[str] | None, *, records: int = 1
    ) -> Decision: ...

    def check_verification(
        self, consumer: str, resource_code: str, items: Iterable[str], *, records: int = 1
    ) -> Decision: ...

    def consume(self, grant_id: int, records: int) -> None: ...

    @property
    def fresh(self) -> bool:
        """True when :meth:`check` will not read the database."""
        ...


class Pipeline:
    """The broker's state and the steps its calls share."""

    def __init__(
        self,
        *,
        db: Database,
        auth: Authenticator,
        clock: Clock,
        ctx: AppContext,
        upstream: Upstream,
        audit: AuditWriter,
        metrics: BrokerMetrics,
        self_url: str | None = None,
    ) -> None:
        self.auth = auth
        self.clock = clock
        self._ctx = ctx
        #: the authorization service (always running: built with the context)
        self.grants: GrantChecker = ctx.grants
        self.upstream = upstream
        self.lookups = LookupBatcher(upstream)
        self.audit = audit
        self.metrics = metrics
        self.routes = RouteCache(db, self_url=self_url)
        #: quota records reserved by calls in flight
        self.holds = QuotaHolds()

    # -- shared steps -------------------------------------------------------------------

    def _begin(self, inbound: Inbound, kind: str) -> BrokerCall:
        call = BrokerCall(
            request_id=inbound.request_id,
            kind=kind,
            started=time.perf_counter(),
            correlation_id=inbound.correlation_id,
        )
        if inbound.case:
            # Headers are ASCII: a case named in Chinese arrives percent-encoded (UTF-8).
            # Decoded, it may hold a NUL (abc%00def), which PostgreSQL text cannot store:
            # escaped here, so the entry commits like any other.
            call.case = escape_text(unquote(inbound.case))[:MAX_CASE]
        try:
            principal = self.auth.authenticate(inbound.authorization)
        except NotAuthenticated as exc:
            raise client_error(exc.code, exc.message, 401) from None
        if principal.is_operator:
            raise client_error(
                "not_a_department",
                "the operator key cannot exchange data: call with a department's key",
            )
        call.consumer = principal.code
        return call

    async def _route(self, call: BrokerCall, front: str, seq: str) -> Route:
        code = call.resource_code = f"{front}/{seq}"
        routes = self.routes
        # A cached route without a coroutine of its own (the common case).
        route: Route | None = routes.cached(code, NOT_CACHED)
        if route is NOT_CACHED:
            route = await routes.get(front, seq)
        if route is None:
            raise client_error("topic_not_found", f"no topic with resource code {front}/{seq}", 404)
        call.provider = route.provider
        if route.status == "retired":
            raise client_error(
                "topic_retired", f"topic {route.resource_code} is retired (废置)", 410
            )
        return route

    async def _check(self, call: BrokerCall, items: list[str] | None, records: int) -> Decision:
        assert call.resource_code is not None
        grants = self.grants
        if grants.fresh:
            decision = grants.check(call.consumer, call.resource_code, items, records=records)
        else:
            # A poll or reload is due: it reads the database, which must not block the loop.
            decision = await run_in_threadpool(
                grants.check, call.consumer, call.resource_code, items, records=records
            )
        if not decision.allowed:
            raise client_error(
                decision.reason,
                f"{call.consumer} may not receive {call.resource_code}: {decision.reason}",
                DENIAL_STATUS.get(decision.reason, 403),
                {"reason": decision.reason, "grant_id": decision.grant_id},
            )
        return decision

    @staticmethod
    def _endpoint(route: Route) -> None:
        if not route.base_url:
            raise ProviderUnavailable(
                route.provider,
                f"provider {route.provider!r} has registered no API base URL",
                status_code=503,
            )

    async def _finish(self, call: BrokerCall, outcome: str, status: int) -> None:
        """Commit the call's audit entry; returns only once it is durable."""
        try:
            entry = self._entry(call, outcome, status)
            if not self.audit.record_now(entry):
                await self.audit.record(entry)
        finally:
            self.metrics.observe(
                call.kind, outcome, time.perf_counter() - call.started, call.provider
            )

    def _abandoned(self, call: BrokerCall) -> None:
        """Audit an export the consumer walked away from mid-stream.

        Runs while the stream's task is being torn down, where awaiting is no longer
        possible: the entry is handed to the writer (journaled at once in journal mode)
        without waiting; nobody is left to answer anyway.
        """
        try:
            self.audit.submit(self._entry(call, ABANDONED, ABANDONED_STATUS))
        except AuditUnavailable:
            log.error("abandoned export %s could not be audited", call.request_id)
        self.metrics.observe(
            call.kind, ABANDONED, time.perf_counter() - call.started, call.provider
        )

    def _entry(self, call: BrokerCall, outcome: str, status: int) -> Entry:
        elapsed = time.perf_counter() - call.started
        return Entry(
            request_id=call.request_id,
            at=self.clock.now(),
            kind=call.kind,
            consumer=call.consumer,
            provider=call.provider,
            resource_code=call.resource_code,
            items=call.items or [],
            case=call.case,
            records=call.records,
            outcome=outcome,
            status=status,
            latency_us=int(elapsed * 1_000_000),
            correlation_id=call.correlation_id,
            verdicts=call.verdicts,
        )

    async def _fail(self, call: BrokerCall, exc: Exception) -> ExchangeError:
        """Audit a failed call and return the error to raise."""
        error = exc if isinstance(exc, ExchangeError) else None
        if error is None:
            log.exception("broker failure on %s", call.request_id, exc_info=exc)
            error = broker_error("internal", f"internal broker error: {type(exc).__name__}")
        try:
            await self._finish(call, error.code, error.status_code)
        except AuditUnavailable:
            log.error("denial %s could not be audited", call.request_id)
        return error
