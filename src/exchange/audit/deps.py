"""The audit's FastAPI dependencies: the writer for the routes that audit what they do,
the log settled before it is read, and the signing key's public half."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from exchange.audit.handover import AuditUnavailable
from exchange.audit.keys import Verifier
from exchange.audit.trust import Trust
from exchange.audit.writer import AuditWriter
from exchange.context import AppContext, Ctx
from exchange.errors import Unavailable

__all__ = [
    "AuditKey",
    "Settled",
    "TheAuditWriter",
    "TheTrust",
    "audit_writer",
    "get_audit_key",
    "get_audit_writer",
    "get_trust",
    "settle",
]


def audit_writer(ctx: AppContext) -> AuditWriter:
    """The audit writer, or :class:`AuditUnavailable` (503 ``broker.audit_unavailable``) in a
    part that does not run it: every service refuses a call it could not audit the same way."""
    writer = ctx.audit
    if writer is None:
        raise AuditUnavailable(
            "the audit writer does not run in this part: it runs with the broker"
        )
    return writer


async def get_audit_writer(ctx: Ctx) -> AuditWriter:
    # async: it only reads memory, so FastAPI runs it on the loop, not the threadpool.
    return audit_writer(ctx)


def settle(ctx: Ctx) -> None:
    """Let the writer commit every entry already acknowledged, so a caller reads its own
    exchanges (the broker answers once an entry is journaled, possibly before its commit).
    Sync: the flush waits for the writer's thread, so FastAPI runs it in the threadpool.
    A part without the writer (authz served alone) has nothing of its own to settle."""
    writer = ctx.audit
    if writer is not None:
        writer.flush()


async def get_trust(ctx: Ctx) -> Trust | None:
    return ctx.trust


async def get_audit_key(trust: Annotated[Trust | None, Depends(get_trust)]) -> Verifier:
    if trust is None or trust.verifier is None:
        raise Unavailable("the audit signing key is not loaded")
    return trust.verifier


#: The audit writer, or 503 ``broker.audit_unavailable`` in a part that does not run it.
TheAuditWriter = Annotated[AuditWriter, Depends(get_audit_writer)]
#: Declared by a route that reads the log: the acknowledged entries are committed first.
Settled = Annotated[None, Depends(settle)]
#: The audit's signing key and journal, where this part holds them.
TheTrust = Annotated[Trust | None, Depends(get_trust)]
#: The public half of the signing key, or 503 ``unavailable`` where it is not loaded.
AuditKey = Annotated[Verifier, Depends(get_audit_key)]
