"""``/api/v1/audit``: the message log for the operator and each department, and statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from exchange.audit import service
from exchange.audit.schemas import AuditPage, StatsOut, VerifyReport
from exchange.context import AppContext, Caller, Ctx, DbSession, Operator

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def _settle(ctx: AppContext) -> None:
    """Let the writer commit every entry already acknowledged, so a caller reads its own
    exchanges (the broker answers once an entry is journaled, possibly before its commit)."""
    writer: service.AuditWriter | None = ctx.parts.get("audit")
    if writer is not None:
        writer.flush()


@router.get("/entries", response_model=AuditPage)
def list_entries(
    session: DbSession,
    ctx: Ctx,
    caller: Caller,
    consumer: Annotated[str | None, Query(description="Calling department code.")] = None,
    provider: Annotated[str | None, Query(description="Providing department code.")] = None,
    resource_code: Annotated[str | None, Query(description="Topic, e.g. 101001001/000001.")] = None,
    request_id: Annotated[str | None, Query(description="One exchange by its request id.")] = None,
    outcome: Annotated[str | None, Query(description="'ok' or an error code.")] = None,
    after: Annotated[int, Query(ge=0, description="Return entries after this seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Audit entries in chain order.

    The operator sees every entry; a department sees the exchanges it made and those
    served from its own topics (denials included).
    """
    _settle(ctx)
    rows = service.entries(
        session,
        department=None if caller.is_operator else caller.code,
        consumer=consumer,
        provider=provider,
        resource_code=resource_code,
        request_id=request_id,
        outcome=outcome,
        after=after,
        limit=limit,
    )
    return AuditPage(
        entries=[service.to_out(r) for r in rows],
        next_after=rows[-1].seq if len(rows) == limit else None,
    )


@router.get("/stats", response_model=StatsOut)
def exchange_stats(session: DbSession, ctx: Ctx, caller: Caller) -> StatsOut:
    """Records exchanged today (platform day, Beijing time) and in total, by department and
    topic: the platform's "daily exchanged records" figure.

    The operator sees the whole platform; a department sees only the exchanges it took
    part in, as consumer or provider (other departments' volumes are theirs)."""
    _settle(ctx)
    return service.stats(
        session, ctx.clock.today(), department=None if caller.is_operator else caller.code
    )


@router.get("/verify", response_model=VerifyReport)
async def verify_chain(ctx: Ctx, _op: Operator) -> VerifyReport:
    """Walk the hash chain and report the first edited, deleted or reordered entry
    (operator only)."""
    await run_in_threadpool(_settle, ctx)
    return await run_in_threadpool(service.verify, ctx.db)
