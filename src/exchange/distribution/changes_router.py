"""``POST /api/v1/exchange/{front}/{seq}/changes``: a provider publishes its changes.

The body is parsed by pydantic-core in one pass (the route reads it itself); the events
are written to the outbox and the call audited, refusals too."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from exchange.audit.deps import TheAuditWriter
from exchange.context import Caller, Ctx
from exchange.distribution import audit, service
from exchange.distribution.schemas import ChangesAccepted, ChangesIn
from exchange.errors import ExchangeError, NotPermitted, request_id_of

changes_router = APIRouter(prefix="/api/v1/exchange", tags=["distribution"])

Front = Annotated[str, Path(pattern=r"^[123]\d{8}$", description="e.g. 101001001")]
Seq = Annotated[str, Path(pattern=r"^\d{6}$", description="e.g. 000001")]


def _changes_body() -> dict[str, Any]:
    """The body's schema, inline: the route parses the body itself (see below)."""
    schema = ChangesIn.model_json_schema()
    defs = schema.pop("$defs", {})
    schema["properties"]["events"]["items"] = defs["ChangeEvent"]
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


async def _parse_changes(request: Request) -> ChangesIn:
    """The body, parsed and validated in one pass by pydantic-core's JSON parser: measured
    on 1,000 events, 8 ms against 49 ms for FastAPI's ``json.loads`` and validation of the
    Python objects (most of what accepting a call cost). Errors read as FastAPI's."""
    raw = await request.body()
    try:
        return ChangesIn.model_validate_json(raw)
    except PydanticValidationError as exc:
        errors = [
            {**e, "loc": ("body", *e.get("loc", ()))}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise RequestValidationError(errors) from None


@changes_router.post(
    "/{front}/{seq}/changes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ChangesAccepted,
    openapi_extra=_changes_body(),
)
async def publish_changes(
    request: Request, front: Front, seq: Seq, caller: Caller, ctx: Ctx, writer: TheAuditWriter
) -> ChangesAccepted:
    """Publish up to 1,000 record-level changes of a topic you are the source of.

    Only the topic's provider may publish (一数一源; 403 ``not_the_source``). Each event
    names the record's key, the kind of change (created / updated / deleted or a domain
    kind such as ``birth``), when it happened at the source, and the record after the
    change (items of the topic only, of their catalog types). The events are written to
    the durable outbox in one transaction and audited before the answer; subscribers
    receive them from then on, each only its granted items.

    Give each event your own ``event_id`` to make the call idempotent: an event whose id
    the topic already holds is answered with its earlier exchange id and not written again
    (``duplicates`` counts them), so a call retried after a timeout creates no duplicate.

    Errors: 401, 403 ``not_the_source`` / ``not_a_department``, 404 ``topic_not_found``,
    409 ``topic_retired`` / ``event_id_reused`` (the id names another change), 422
    ``unknown_item`` / ``bad_item_value`` / ``key_mismatch`` / ``record_required`` /
    ``duplicate_event_id`` and schema errors, 503 ``broker.audit_unavailable``.
    """
    started = time.perf_counter()
    body = await _parse_changes(request)
    code = f"{front}/{seq}"
    rid = request_id_of(request)
    items = sorted({k for e in body.events if e.record for k in e.record})

    def write() -> service.Accepted:
        if caller.is_operator:
            raise NotPermitted(
                "the operator key cannot publish changes: call with the provider's key",
                code="not_a_department",
            )
        for attempt in range(2):
            try:
                with ctx.db.session() as session:
                    return service.accept_changes(
                        session,
                        provider=caller.code,
                        resource_code=code,
                        events=body.events,
                        request_id=rid,
                    )
            except IntegrityError:
                # A concurrent call committed one of these event ids first: once more,
                # and it is found held (its id answered) instead of written twice.
                if attempt or not any(e.event_id for e in body.events):
                    raise
        raise AssertionError("unreachable")

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
        done = await run_in_threadpool(write)
    except ExchangeError as exc:
        # Refusals are audited like the broker's denials, then answered.
        await writer.record(record(exc.code, exc.status_code, 0, None))
        raise
    # The audit counts the records written by this call (duplicates were counted before).
    written = len(done.ids) - done.duplicates
    await writer.record(record("ok", status.HTTP_202_ACCEPTED, written, caller.code))
    return ChangesAccepted(
        resource_code=code,
        accepted=len(done.ids),
        event_ids=done.ids,
        duplicates=done.duplicates,
    )
