"""Grants and audit for the licence system: the broker's rules on the licence API's calls.

Holders' licences are the e-licence topic of the catalog (电子证照信息, provider ``zsj``,
slug ``e-licences``): a department lists or uses (用证) them only with a grant on that topic,
checked by the same grant cache the broker asks (validity, items, daily quota) and counted
against the same quota. Every call of the licence API that acts or reads for a department
(issue, revoke, list, use), denials included, gets an entry in the same hash-chained audit
log as the broker's exchanges, through the same writer, before it is answered.

Audit entries of the licence system (``kind``): ``licence.issue``, ``licence.revoke``,
``licence.list``, ``licence.use``; ``case`` holds the licence number (issue, revoke, use)
or the business case the caller named (list; the holder's ID is not written to the log).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from fastapi import Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from exchange.audit.deps import audit_writer
from exchange.audit.entry import Entry, escape_text
from exchange.audit.writer import AuditWriter
from exchange.authn import Principal
from exchange.authz.policy import Decision
from exchange.catalog.models import Topic
from exchange.context import AppContext
from exchange.errors import ExchangeError, NotPermitted, TooManyRequests, Unavailable, request_id_of

TOPIC_SLUG = "e-licences"
#: The e-licence topic's items, as :func:`exchange.licences.reading.topic_record` fills them.
TOPIC_ITEMS = (
    "licence_number",
    "licence_type",
    "holder_name",
    "holder_credit_code",
    "issuing_authority",
    "issued_on",
    "valid_until",
    "status",
)
MAX_CASE = 200


@dataclass(slots=True)
class Call:
    """One audited call of the licence API."""

    request_id: str
    correlation_id: str | None
    kind: str
    consumer: str
    started: float = field(default_factory=time.perf_counter)
    provider: str | None = None
    case: str | None = None
    items: list[str] = field(default_factory=list)
    records: int = 0


class Gate:
    """Held in ``ctx.licence_gate``; one per app."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._resource_code: str | None = None

    @property
    def audit(self) -> AuditWriter:
        return audit_writer(self._ctx)

    def resource_code(self) -> str:
        """The e-licence topic's resource code (read once from the catalog)."""
        if self._resource_code is None:
            with self._ctx.db.sessions() as session:
                code = session.scalar(select(Topic.resource_code).where(Topic.slug == TOPIC_SLUG))
            if code is None:
                raise Unavailable(
                    f"the catalog has no {TOPIC_SLUG} topic: seed the exchange",
                    code="licence_topic_missing",
                )
            self._resource_code = code
        return self._resource_code

    def begin(self, request: Request, kind: str, principal: Principal, case: str | None) -> Call:
        self.audit  # noqa: B018 - refuse before acting if nothing could audit the call
        correlation = getattr(request.state, "correlation_id", None)
        return Call(
            request_id=request_id_of(request),
            correlation_id=correlation if isinstance(correlation, str) else None,
            kind=kind,
            consumer=principal.code,
            # Headers are ASCII: a case named in Chinese arrives percent-encoded (UTF-8).
            case=escape_text(unquote(case))[:MAX_CASE] if case else None,
        )

    async def check(self, call: Call, items: Iterable[str] | None, records: int) -> Decision:
        """The caller's grant decision; a denial raises (the caller audits it)."""
        resource = await run_in_threadpool(self.resource_code)
        authz = self._ctx.grants
        decision: Decision = await run_in_threadpool(
            authz.check, call.consumer, resource, items, records=records
        )
        if not decision.allowed:
            error_type = TooManyRequests if decision.reason == "quota_exceeded" else NotPermitted
            raise error_type(
                f"{call.consumer} may not read {resource} (电子证照信息): {decision.reason}",
                code=decision.reason,
                detail={"reason": decision.reason, "grant_id": decision.grant_id},
            )
        call.items = sorted(decision.items)
        return decision

    def consume(self, grant_id: int | None, records: int) -> None:
        if grant_id is not None:
            self._ctx.grants.consume(grant_id, records)

    async def finish(self, call: Call, outcome: str, status: int) -> None:
        """Make the call's entry durable (the answer waits for it, as the broker's)."""
        resource = self._resource_code
        await self.audit.record(
            Entry(
                request_id=call.request_id,
                at=self._ctx.clock.now(),
                kind=call.kind,
                consumer=call.consumer,
                provider=call.provider,
                resource_code=resource,
                items=call.items,
                case=call.case,
                records=call.records,
                outcome=outcome,
                status=status,
                latency_us=int((time.perf_counter() - call.started) * 1_000_000),
                correlation_id=call.correlation_id,
            )
        )

    async def fail(self, call: Call, exc: ExchangeError) -> None:
        await self.finish(call, exc.code, exc.status_code)
