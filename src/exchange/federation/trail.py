"""One cross-level exchange in this platform's audit trail: the entries with a request or
correlation id, as the peer reads them (``GET /api/v1/federation/audit``) and as the
operator sees them beside the peer's (``GET /api/v1/federation/exchanges/{id}``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from exchange.audit.models import AuditEntry
from exchange.context import AppContext

__all__ = ["entries_of"]


def entries_of(ctx: AppContext, rid: str) -> list[dict[str, Any]]:
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
