"""``/api/v1/federation``, the peer platform's way in: its feed of published topics, its
revocations, its lookups and bulk pages of published topics, and this platform's audit
entries of an exchange. Every call is verified and every answer signed
(:mod:`exchange.federation.signed`); the operator's controls are in ``router``."""

from __future__ import annotations

import contextlib
import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from exchange.audit.deps import audit_writer
from exchange.audit.writer import AuditUnavailable
from exchange.broker.errors import client_error
from exchange.context import Ctx
from exchange.errors import ExchangeError
from exchange.federation import service
from exchange.federation.connection import DEFAULT_PAGE, MAX_PAGE, PREFIX
from exchange.federation.lookup import answer_query
from exchange.federation.signed import PEER_ERRORS, SIGNED, verified
from exchange.federation.trail import entries_of

router = APIRouter(prefix=PREFIX, tags=["federation"])

Front = Annotated[str, Path(pattern=r"^[1-3]\d{8}$", examples=["101001001"])]
Seq = Annotated[str, Path(pattern=r"^\d{6}$", examples=["000001"])]


@router.get("/feed", openapi_extra=SIGNED, responses=PEER_ERRORS)
async def feed(
    request: Request,
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> Response:
    """The feed of topics published to the peer, after a cursor (the peer pulls it)."""
    peer, _ = await verified(ctx, request, None)

    def read() -> bytes:
        with ctx.db.sessions() as session:
            entries, cursor = service.feed_after(session, after, limit)
        return orjson.dumps({"entries": entries, "cursor": cursor})

    return peer.answer(await run_in_threadpool(read))


@router.post("/revocations", openapi_extra=SIGNED, responses=PEER_ERRORS)
async def revocations(request: Request, ctx: Ctx) -> Response:
    """Grants the peer revoked on topics of this platform: refused here from now on."""
    peer, body = await verified(ctx, request, None)
    try:
        items = orjson.loads(body)["revocations"]
        if not isinstance(items, list):
            raise TypeError
        added = await run_in_threadpool(peer.fed.receive_revocations, items)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return peer.error(client_error("bad_input", 'the body is {"revocations": [...]}', 422))
    return peer.answer(orjson.dumps({"received": added}))


@router.get("/audit", openapi_extra=SIGNED, responses=PEER_ERRORS)
async def audit_of(
    request: Request,
    ctx: Ctx,
    correlation_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> Response:
    """This platform's audit entries of one cross-level exchange (for the peer to show)."""
    peer, _ = await verified(ctx, request, None)
    entries = await run_in_threadpool(entries_of, ctx, correlation_id)
    return peer.answer(orjson.dumps({"entries": entries}))


@router.post("/topics/{front}/{seq}/query", openapi_extra=SIGNED, responses=PEER_ERRORS)
async def peer_query(request: Request, ctx: Ctx, front: Front, seq: Seq) -> Response:
    """A lookup by a consumer of the peer platform, routed here by the peer's broker.

    Checked here again, whatever the peer checked: the topic is published to the peer,
    this platform's grant to the peer covers the items, the peer's grant was not revoked;
    then the provider is asked and only the granted items leave. (Under ``exchange up``
    the lean path answers it: :mod:`exchange.federation.lookup`.)
    """
    code = f"{front}/{seq}"
    peer, body = await verified(ctx, request, code)
    status, payload = await answer_query(ctx, peer.fed, peer.rid, peer.peer_rid, code, body)
    return peer.answer(payload, status)


@router.get("/topics/{front}/{seq}/records", openapi_extra=SIGNED, responses=PEER_ERRORS)
async def peer_records(
    request: Request,
    ctx: Ctx,
    front: Front,
    seq: Seq,
    rows: Annotated[int, Query(ge=0, le=2**62)] = 0,
    changes: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> Response:
    """A page of a published table topic's records, for the peer platform's bulk
    provision (see :mod:`exchange.federation.provision`): the provider's export rows from
    ``rows``, then the change events after ``changes`` (absent on the first page, which
    pins it at the outbox's end), cut to the items this platform granted the peer.
    Audited (kind ``federation``, the peer's request id as correlation id) and counted."""
    code = f"{front}/{seq}"
    peer, _ = await verified(ctx, request, code)
    fed = peer.fed
    started = time.perf_counter()
    try:
        page = await fed.provide(peer.rid, code, rows, changes, limit)
    except ExchangeError as exc:
        with contextlib.suppress(AuditUnavailable):
            await audit_writer(ctx).record(
                fed.audit_entry(
                    request_id=peer.rid,
                    correlation_id=peer.peer_rid,
                    consumer=fed.peer_code,
                    provider=None,
                    resource_code=code,
                    items=[],
                    case=f"provision rows {rows}+",
                    records=0,
                    outcome=exc.code,
                    status=exc.status_code,
                    started=started,
                )
            )
        return peer.error(exc)
    if page.empty:  # a poll that found nothing new: answered, not audited (every tick)
        return peer.answer(page.body)
    try:
        await audit_writer(ctx).record(
            fed.audit_entry(
                request_id=peer.rid,
                correlation_id=peer.peer_rid,
                consumer=fed.peer_code,
                provider=page.provider,
                resource_code=code,
                items=page.items,
                case=page.span,
                records=page.count,
                outcome="ok",
                status=200,
                started=started,
            )
        )
    except AuditUnavailable as exc:
        return peer.error(exc)
    fed.provided(code, page.count)
    return peer.answer(page.body)
