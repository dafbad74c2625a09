"""``POST /api/v1/exchange/{front}/{seq}/changes`` (a provider publishes its changes) and
``/api/v1/subscriptions`` (a consumer subscribes, reads its feed, handles dead letters)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from starlette.concurrency import run_in_threadpool

from exchange.audit.writer import AuditWriter
from exchange.context import Caller, Ctx
from exchange.distribution import audit, service
from exchange.distribution.schemas import ChangesAccepted, ChangesIn
from exchange.errors import ExchangeError, NotPermitted, Unavailable, request_id_of

changes_router = APIRouter(prefix="/api/v1/exchange", tags=["distribution"])

Front = Annotated[str, Path(pattern=r"^[123]\d{8}$", description="e.g. 101001001")]
Seq = Annotated[str, Path(pattern=r"^\d{6}$", description="e.g. 000001")]


def _writer(ctx: Ctx) -> AuditWriter:
    writer: AuditWriter | None = ctx.parts.get("audit")
    if writer is None:
        raise Unavailable(
            "the audit writer is not running in this part", code="broker.audit_unavailable"
        )
    return writer


@changes_router.post(
    "/{front}/{seq}/changes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ChangesAccepted,
)
async def publish_changes(
    request: Request, body: ChangesIn, front: Front, seq: Seq, caller: Caller, ctx: Ctx
) -> ChangesAccepted:
    """Publish up to 1,000 record-level changes of a topic you are the source of.

    Only the topic's provider may publish (一数一源; 403 ``not_the_source``). Each event
    names the record's key, the kind of change (created / updated / deleted or a domain
    kind such as ``birth``), when it happened at the source, and the record after the
    change (items of the topic only, of their catalog types). The events are written to
    the durable outbox in one transaction and audited before the answer; subscribers
    receive them from then on, each only its granted items.

    Errors: 401, 403 ``not_the_source`` / ``not_a_department``, 404 ``topic_not_found``,
    409 ``topic_retired``, 422 ``unknown_item`` / ``bad_item_value`` / ``key_mismatch`` /
    ``record_required`` and schema errors, 503 ``broker.audit_unavailable``.
    """
    started = time.perf_counter()
    writer = _writer(ctx)
    code = f"{front}/{seq}"
    rid = request_id_of(request)
    items = sorted({k for e in body.events if e.record for k in e.record})

    def write() -> list[int]:
        if caller.is_operator:
            raise NotPermitted(
                "the operator key cannot publish changes: call with the provider's key",
                code="not_a_department",
            )
        with ctx.db.session() as session:
            return service.accept_changes(
                session,
                provider=caller.code,
                resource_code=code,
                events=body.events,
                request_id=rid,
            )

    def record(outcome: str, status_code: int, records: int, provider: str | None) -> audit.Entry:
        return audit.entry(
            kind=audit.PUBLISH,
            at=ctx.clock.now(),
            request_id=rid,
            consumer=caller.code,
            provider=provider,
            resource_code=code,
            items=items,
            records=records,
            outcome=outcome,
            status=status_code,
            started=started,
            ended=time.perf_counter(),
        )

    try:
        ids = await run_in_threadpool(write)
    except ExchangeError as exc:
        # Refusals are audited like the broker's denials, then answered.
        await writer.record(record(exc.code, exc.status_code, 0, None))
        raise
    await writer.record(record("ok", status.HTTP_202_ACCEPTED, len(ids), caller.code))
    return ChangesAccepted(resource_code=code, accepted=len(ids), event_ids=ids)
