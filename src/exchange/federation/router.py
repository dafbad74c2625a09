"""``/api/v1/federation``: the peer platform's way in (signed calls, signed answers) and the
operator's controls (publish, withdraw, sync, status, one exchange seen from both sides).

Every call of the peer is verified (:meth:`Federation.verify`); a refused one is audited
(kind ``federation``, outcome ``client.signature_*``) and answered 401 unsigned. Every
answer to a verified call is signed for the peer, errors included.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import distinct, func, literal, or_, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from exchange.audit.models import AuditEntry
from exchange.audit.writer import AuditUnavailable, AuditWriter
from exchange.authz.models import Grant
from exchange.broker.errors import broker_error, client_error
from exchange.context import AppContext, Ctx, DbSession, Operator, present
from exchange.db import pagination
from exchange.errors import ExchangeError, NotFound, error_body
from exchange.federation import provision, service
from exchange.federation.connection import DEFAULT_PAGE, MAX_PAGE, PREFIX
from exchange.federation.lookup import answer_query, verified_call
from exchange.federation.models import Cursor, Mount, Publication
from exchange.federation.peer import PeerUnreachable
from exchange.federation.runtime import Federation
from exchange.federation.schemas import (
    ExchangeRecord,
    FederationStatus,
    ProvisionOut,
    ProvisionPage,
    ProvisionResult,
    PublicationOut,
    PublicationPage,
    PublicationRequest,
    PublicationResult,
    SyncResult,
    WithdrawResult,
)
from exchange.openapi import PUBLIC
from exchange.provider_auth import SignatureError

router = APIRouter(prefix=PREFIX, tags=["federation"])

_SIGNED = {
    **PUBLIC,
    "description": "Called by the peer platform only: signed with `X-Exchange-Signature` "
    "(exchange.provider_auth, the credential this platform issued the peer); the answer is "
    "signed back for the peer.",
}
_PEER_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not a verified call of the peer platform (`client.signature_*`)."},
    403: {"description": "The grant chain does not allow it (`client.*`)."},
    410: {"description": "The topic is retired."},
    429: {"description": "The quota of this platform's grant to the peer is used up."},
    502: {"description": "The provider department failed (`provider.*`)."},
    504: {"description": "The provider department did not answer in time."},
}
Front = Annotated[str, Path(pattern=r"^[1-3]\d{8}$", examples=["101001001"])]
Seq = Annotated[str, Path(pattern=r"^\d{6}$", examples=["000001"])]


def _federation(ctx: AppContext) -> Federation:
    return present(ctx.federation, "the federation is not running", code="not_federated")


async def get_federation(ctx: Ctx) -> Federation:
    return _federation(ctx)


TheFederation = Annotated[Federation, Depends(get_federation)]


def _audit(ctx: AppContext) -> AuditWriter:
    return present(
        ctx.audit, "the audit writer does not run in this part", code="audit_unavailable"
    )


def _target(request: Request) -> bytes:
    scope = request.scope
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    return raw + b"?" + query if query else raw


class _Peer:
    """One verified call of the peer: its request id, and how to answer it signed."""

    def __init__(self, fed: Federation, request: Request, target: bytes, peer_rid: str) -> None:
        self.fed = fed
        self.request = request
        self.target = target
        self.peer_rid = peer_rid
        self.rid = str(request.state.request_id)

    def answer(self, payload: bytes, status: int = 200) -> Response:
        signature = self.fed.sign_answer(self.target, payload, self.peer_rid)
        return Response(
            payload,
            status_code=status,
            media_type="application/json",
            headers={"X-Exchange-Signature": signature, "X-Exchange-Answer-To": self.peer_rid},
        )

    def error(self, exc: ExchangeError) -> Response:
        body = orjson.dumps(error_body(exc.code, exc.message, self.rid, exc.detail))
        return self.answer(body, exc.status_code)


async def _verified(ctx: AppContext, request: Request, resource: str | None) -> tuple[_Peer, bytes]:
    """The peer's call, verified; a forged one is audited and refused (401, unsigned)."""
    fed = _federation(ctx)
    body = await request.body()
    target = _target(request)
    call = await verified_call(
        ctx,
        fed,
        rid=str(request.state.request_id),
        method=request.method,
        target=target,
        body=body,
        headers=request.headers,
        resource=resource,
        path=request.url.path,
    )
    return _Peer(fed, request, target, call.request_id), body


@router.get("/feed", openapi_extra=_SIGNED, responses=_PEER_ERRORS)
async def feed(
    request: Request,
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> Response:
    """The feed of topics published to the peer, after a cursor (the peer pulls it)."""
    peer, _ = await _verified(ctx, request, None)

    def read() -> bytes:
        with ctx.db.sessions() as session:
            entries, cursor = service.feed_after(session, after, limit)
        return orjson.dumps({"entries": entries, "cursor": cursor})

    return peer.answer(await run_in_threadpool(read))


@router.post("/revocations", openapi_extra=_SIGNED, responses=_PEER_ERRORS)
async def revocations(request: Request, ctx: Ctx) -> Response:
    """Grants the peer revoked on topics of this platform: refused here from now on."""
    peer, body = await _verified(ctx, request, None)
    try:
        items = orjson.loads(body)["revocations"]
        if not isinstance(items, list):
            raise TypeError
        added = await run_in_threadpool(peer.fed.receive_revocations, items)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return peer.error(client_error("bad_input", 'the body is {"revocations": [...]}', 422))
    return peer.answer(orjson.dumps({"received": added}))


@router.get("/audit", openapi_extra=_SIGNED, responses=_PEER_ERRORS)
async def audit_of(
    request: Request,
    ctx: Ctx,
    correlation_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> Response:
    """This platform's audit entries of one cross-level exchange (for the peer to show)."""
    peer, _ = await _verified(ctx, request, None)
    entries = await run_in_threadpool(_entries_of, ctx, correlation_id)
    return peer.answer(orjson.dumps({"entries": entries}))


def _entries_of(ctx: AppContext, rid: str) -> list[dict[str, Any]]:
    with ctx.db.sessions() as session:
        rows = session.scalars(
            select(AuditEntry)
            .where(or_(AuditEntry.request_id == rid, AuditEntry.correlation_id == rid))
            .order_by(AuditEntry.seq)
            .limit(100)
        ).all()
        return [
            {
                "seq": r.seq,
                "request_id": r.request_id,
                "correlation_id": r.correlation_id,
                "at": r.at.isoformat(),
                "kind": r.kind,
                "consumer": r.consumer,
                "provider": r.provider,
                "resource_code": r.resource_code,
                "items": r.items,
                "case": r.case,
                "records": r.records,
                "outcome": r.outcome,
                "status": r.status,
                "hash": r.hash,
            }
            for r in rows
        ]


@router.post("/topics/{front}/{seq}/query", openapi_extra=_SIGNED, responses=_PEER_ERRORS)
async def peer_query(request: Request, ctx: Ctx, front: Front, seq: Seq) -> Response:
    """A lookup by a consumer of the peer platform, routed here by the peer's broker.

    Checked here again, whatever the peer checked: the topic is published to the peer,
    this platform's grant to the peer covers the items, the peer's grant was not revoked;
    then the provider is asked and only the granted items leave. (Under ``exchange up``
    the lean path answers it: :mod:`exchange.federation.lookup`.)
    """
    code = f"{front}/{seq}"
    peer, body = await _verified(ctx, request, code)
    status, payload = await answer_query(ctx, peer.fed, peer.rid, peer.peer_rid, code, body)
    return peer.answer(payload, status)


@router.get("/topics/{front}/{seq}/records", openapi_extra=_SIGNED, responses=_PEER_ERRORS)
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
    peer, _ = await _verified(ctx, request, code)
    fed = peer.fed
    started = time.perf_counter()
    try:
        page = await fed.provide(peer.rid, code, rows, changes, limit)
    except ExchangeError as exc:
        with contextlib.suppress(AuditUnavailable):
            await _audit(ctx).record(
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
        await _audit(ctx).record(
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
        return peer.error(broker_error("audit_unavailable", str(exc), 503))
    fed.provided(code, page.count)
    return peer.answer(page.body)


# -- the operator's side ------------------------------------------------------------------


@router.post("/publications", response_model=PublicationResult)
def publish(
    body: PublicationRequest, session: DbSession, caller: Operator, ctx: Ctx
) -> PublicationResult:
    """Publish topics to the peer platform, one or thousands at once (operator). The peer
    mounts them from the feed; publishing one twice changes nothing."""
    new, already = service.publish(session, body.resource_codes, caller, ctx.clock.now())
    session.commit()
    return PublicationResult(published=new, already=already)


@router.post("/publications/withdraw", response_model=WithdrawResult)
def withdraw(
    body: PublicationRequest, session: DbSession, caller: Operator, ctx: Ctx
) -> WithdrawResult:
    """Withdraw publications (operator): the peer retires its mounted copies."""
    out = service.withdraw(session, body.resource_codes, caller, ctx.clock.now())
    session.commit()
    return WithdrawResult(withdrawn=out)


@router.get("/publications", response_model=PublicationPage)
def publications(
    session: DbSession,
    _caller: Operator,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> PublicationPage:
    """Topics published to the peer, with the records provided from each (operator)."""
    total, rows = pagination.page(
        session, Publication, Publication.resource_code, (), offset=offset, limit=limit
    )
    return PublicationPage(total=total, items=[PublicationOut.model_validate(r) for r in rows])


@router.get("/status", response_model=FederationStatus)
def federation_status(
    session: DbSession, _caller: Operator, ctx: Ctx, fed: TheFederation
) -> FederationStatus:
    """Where this platform stands with its peer (operator)."""
    return FederationStatus(
        level=fed.level,
        own_code=fed.own_code,
        peer_code=fed.peer_code,
        peer_url=fed.peer_url or None,
        feed_cursor=service.cursor_value(session, service.FEED_CURSOR),
        published=session.scalar(select(func.count()).select_from(Publication)) or 0,
        mounted=session.scalar(
            select(func.count()).select_from(Mount).where(Mount.status == "published")
        )
        or 0,
        revoked_incoming=len(fed.revoked),
        provided_to_peer=_provided_to_peer(session, fed.peer_code, ctx.clock.today()),
        provided_by_peer=session.scalar(
            select(func.count())
            .select_from(Cursor)
            .join(Mount, Cursor.name == literal(provision.ROWS_PREFIX) + Mount.peer_resource_code)
            .where(Mount.status == "published")
        )
        or 0,
        last_sync_error=fed.last_sync_error,
        # What the table holds and what this process counted since its last flush.
        records_provided=(session.scalar(select(func.sum(Publication.records_provided))) or 0)
        + fed.pending_provided,
        records_received=session.scalar(
            select(func.sum(Cursor.records)).where(Cursor.name.like("provision:%"))
        )
        or 0,
    )


def _provided_to_peer(session: Session, peer: str, today: dt.date) -> int:
    """Published topics the peer's unit holds a live grant on (it may pull them)."""
    return (
        session.scalar(
            select(func.count(distinct(Grant.resource_code))).where(
                Grant.consumer == peer,
                Grant.status == "active",
                Grant.valid_until >= today,
                Grant.resource_code.in_(select(Publication.resource_code)),
            )
        )
        or 0
    )


@router.post("/provisions", response_model=ProvisionResult)
def enable_provisions(
    body: PublicationRequest, session: DbSession, caller: Operator, ctx: Ctx, fed: TheFederation
) -> ProvisionResult:
    """Pull mounted topics' records from the peer in bulk, incrementally (operator): the
    first pull takes the whole table, later ones what was added or changed since the
    watermark. Needs this platform's grant at the peer; enabling twice changes nothing."""
    caller.require_operator()
    _mounts, missing = provision.mounts_of(session, body.resource_codes)
    if missing:
        raise NotFound(
            f"{missing[0]} is not a topic mounted from the {fed.peer_level} platform",
            code="not_mounted",
            detail={"missing": missing[:20]},
        )
    new, already = provision.enable(session, body.resource_codes, ctx.clock.now())
    session.commit()
    fed.kick()
    return ProvisionResult(enabled=new, already=already)


@router.get("/provisions", response_model=ProvisionPage)
def list_provisions(session: DbSession, _caller: Operator, fed: TheFederation) -> ProvisionPage:
    """The bulk provisions this platform pulls, with their watermarks and counts
    (operator)."""
    return ProvisionPage(
        items=[
            ProvisionOut(
                resource_code=st.resource_code,
                peer_resource_code=st.peer_resource_code,
                rows=st.rows,
                changes=st.changes,
                records=st.records,
                batches=st.batches,
                last_error=fed.provision_errors.get(st.resource_code),
            )
            for st in provision.states(session)
        ]
    )


@router.post("/provisions/pull", response_model=SyncResult)
async def pull_provisions(_caller: Operator, fed: TheFederation) -> SyncResult:
    """Pull every enabled provision now, until caught up or a few seconds pass (operator);
    the background task does it every few seconds anyway. ``applied``: records stored."""
    if not fed.connected:
        raise ExchangeError("no peer platform is configured", code="not_federated", status_code=409)
    return SyncResult(applied=await fed.provision_all(now=True))


@router.post("/sync", response_model=SyncResult)
async def sync(_caller: Operator, fed: TheFederation) -> SyncResult:
    """Pull the peer's feed to its end now (operator); the background task does it every
    few seconds anyway."""
    if not fed.connected:
        raise ExchangeError("no peer platform is configured", code="not_federated", status_code=409)
    try:
        applied = await fed.sync_once()
    except PeerUnreachable as exc:
        raise ExchangeError(
            f"the {fed.peer_level} platform is unreachable: {exc}",
            code="provider.unavailable",
            status_code=502,
            detail={"side": "provider", "platform": fed.peer_level},
        ) from None
    return SyncResult(applied=applied)


@router.get("/exchanges/{request_id}", response_model=ExchangeRecord)
async def exchange_record(
    request_id: Annotated[str, Path(min_length=1, max_length=64)],
    _caller: Operator,
    ctx: Ctx,
    fed: TheFederation,
) -> ExchangeRecord:
    """One cross-level exchange in both audit trails (operator): this platform's entries
    with that request or correlation id, and the peer's, asked for over the signed link."""
    here = await run_in_threadpool(_entries_of, ctx, request_id)
    if not here:
        raise NotFound(f"no audit entry with request or correlation id {request_id}")
    peer_entries: list[dict[str, Any]] | None = None
    peer_error = None
    ids = {e["request_id"] for e in here} | {
        e["correlation_id"] for e in here if e["correlation_id"]
    }
    if fed.connected:
        try:
            peer_entries = []
            for rid in sorted(ids):
                answer = await fed.client.call(
                    "GET", PREFIX + "/audit", params={"correlation_id": rid}
                )
                if answer.status == 200:
                    for e in orjson.loads(answer.body)["entries"]:
                        if e not in peer_entries:
                            peer_entries.append(e)
        except (PeerUnreachable, SignatureError) as exc:
            peer_entries, peer_error = None, str(exc)
    return ExchangeRecord(
        request_id=request_id, here=here, peer=peer_entries, peer_error=peer_error
    )
