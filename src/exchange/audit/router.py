"""``/api/v1/audit``: the message log for the operator and each department, and statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from exchange.audit import operations, service
from exchange.audit.deps import AuditKey, Settled, TheTrust
from exchange.audit.schemas import AuditPage, OperationsOut, StatsOut, VerifyReport
from exchange.audit.verify import verify
from exchange.context import Caller, Ctx, DbSession, Operator
from exchange.fields import INT64_MAX

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("/entries", response_model=AuditPage)
def list_entries(
    session: DbSession,
    caller: Caller,
    _settled: Settled,
    consumer: Annotated[str | None, Query(description="Calling department code.")] = None,
    provider: Annotated[str | None, Query(description="Providing department code.")] = None,
    resource_code: Annotated[str | None, Query(description="Topic, e.g. 101001001/000001.")] = None,
    request_id: Annotated[str | None, Query(description="One exchange by its request id.")] = None,
    outcome: Annotated[str | None, Query(description="'ok' or an error code.")] = None,
    after: Annotated[
        int, Query(ge=0, le=INT64_MAX, description="Return entries after this seq.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Audit entries in chain order.

    The operator sees every entry; a department sees the exchanges it made and those
    served from its own topics (denials included).
    """
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
def exchange_stats(session: DbSession, ctx: Ctx, caller: Caller, _settled: Settled) -> StatsOut:
    """Records exchanged today (platform day, Beijing time) and in total, by department and
    topic: the platform's "daily exchanged records" figure.

    The operator sees the whole platform; a department sees only the exchanges it took
    part in, as consumer or provider (other departments' volumes are theirs)."""
    return service.stats(
        session, ctx.clock.today(), department=None if caller.is_operator else caller.code
    )


@router.get("/operations", response_model=OperationsOut)
def operations_now(session: DbSession, ctx: Ctx, _op: Operator, _settled: Settled) -> OperationsOut:
    """运行监测 (operator only): today's and recent days' volume by department and catalog
    group, the broker's calls and errors by side since it started, the slowest providers,
    open circuit breakers, reviews due and overdue, and grants about to expire.

    Counters are cumulative; a dashboard polling this derives calls per second from two
    readings and their ``at``."""
    return operations.reading(session, ctx.broker, now=ctx.clock.now(), today=ctx.clock.today())


@router.get("/verify", response_model=VerifyReport)
async def verify_chain(ctx: Ctx, _op: Operator, _settled: Settled, trust: TheTrust) -> VerifyReport:
    """Check the whole audit log (operator only): the hash chain, the signed checkpoints
    in the database and in the mirror, entries appended while no exchange had the log
    open, the daily statistics against the entries, and journal lines refused as forged.

    Each kind of tampering found is listed with the first bad entry and why; the
    top-level fields repeat the earliest. Entries after the last checkpoint are counted
    in ``unsigned_tail``: a signature will cover them within seconds.
    """
    if trust is None:
        return await run_in_threadpool(verify, ctx.db)
    return await run_in_threadpool(verify, ctx.db, trust.verifier, trust.mirror, trust.journal)


@router.get(
    "/public-key",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "PEM public key."}},
)
async def public_key(key: AuditKey) -> PlainTextResponse:
    """The public half of the exchange's audit signing key (Ed25519, PEM): with it anyone
    can check the signed checkpoints of an exported log. No key needed to read it."""
    return PlainTextResponse(key.pem(), headers={"X-Audit-Key-Id": key.key_id()})
