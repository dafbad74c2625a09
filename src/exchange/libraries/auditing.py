"""Every library lookup, answered or refused, as an audit entry like any exchange."""

from __future__ import annotations

import time
import uuid
from typing import Any

from exchange.audit.deps import audit_writer
from exchange.audit.entry import Entry
from exchange.context import AppContext

AUDIT_KIND = "library"


class LookupAudit:
    """The audit entries of :class:`~exchange.libraries.service.LibraryService`'s lookups."""

    ctx: AppContext
    #: the platform's unit that serves the libraries (the entries' provider)
    unit: str

    def audit_entry(
        self,
        request_id: str,
        consumer: str,
        library: str,
        answer: dict[str, Any] | None,
        outcome: str,
        status: int,
        started: float,
    ) -> Entry:
        items: list[str] = []
        records = 0
        if answer is not None:
            records = len(answer["records"])
            seen: set[str] = set()
            for rec in answer["records"]:
                seen.update(rec["elements"])
            items = sorted(seen)
        return Entry(
            request_id=request_id or uuid.uuid4().hex,
            at=self.ctx.clock.now(),
            kind=AUDIT_KIND,
            consumer=consumer[:32],
            provider=self.unit,
            resource_code=f"lib/{library}"[:16],
            items=items,
            case=None,
            records=records,
            outcome=outcome[:48],
            status=status,
            latency_us=int((time.perf_counter() - started) * 1_000_000),
        )

    async def audit(self, entry: Entry) -> None:
        writer = audit_writer(self.ctx)
        await writer.record(entry)
