"""``/api/v1/federation``, the operator's controls: publish and withdraw topics for the
peer platform, bulk provisions pulled from it, the feed's sync, where this platform stands,
and one exchange seen from both sides. The peer's own way in is ``peer_router`` (and
``review_router`` for forwarded applications)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query
from sqlalchemy import distinct, func, literal, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from exchange.authz.models import Grant
from exchange.context import Ctx, DbSession, Operator
from exchange.db import pagination
from exchange.errors import ExchangeError, NotFound
from exchange.federation import provision, service
from exchange.federation.connection import PREFIX
from exchange.federation.models import Cursor, Mount, Publication
from exchange.federation.peer import PeerUnreachable
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
from exchange.federation.signed import TheFederation
from exchange.federation.trail import entries_of
from exchange.provider_auth import SignatureError

router = APIRouter(prefix=PREFIX, tags=["federation"])


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
    here = await run_in_threadpool(entries_of, ctx, request_id)
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
