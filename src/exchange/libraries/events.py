"""Incremental updates from the sources' change events: the library unit's pull
subscription read after its stored cursor, each page applied with its cursor in one
transaction, and audited as the feed's pull reads are."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
import orjson

from exchange.audit.deps import audit_writer
from exchange.authn import Principal
from exchange.context import AppContext
from exchange.db.engine import Database
from exchange.db.threads import run_joined
from exchange.distribution import audit as distribution_audit
from exchange.distribution import pull
from exchange.errors import ExchangeError
from exchange.libraries.models import LibrarySource
from exchange.libraries.report import PassReport
from exchange.libraries.store import Row, write_events

__all__ = ["EVENT_PAGE", "EventFeed"]

#: change events read per feed page
EVENT_PAGE = 5_000

_ENCODER = msgspec.json.Encoder()


class EventFeed:
    """Applying change events, for :class:`~exchange.libraries.gather.Gatherer`."""

    ctx: AppContext
    db: Database
    unit: str
    counters: dict[tuple[str, str], int]

    async def _apply_events(self, source: LibrarySource, report: PassReport) -> None:
        """Apply the source's change events after the stored cursor, page by page, each
        page with its cursor in one transaction; audited as the feed's pull reads are."""
        assert source.subscription_id is not None
        writer = audit_writer(self.ctx)
        principal = Principal(self.unit)
        fields = [f[0] for f in source.fields]
        code = source.resource_code
        while True:
            started = time.perf_counter()
            try:
                page, _ = await pull.read_page(
                    self.ctx,
                    source.subscription_id,
                    principal,
                    cursor=source.event_cursor,
                    limit=EVENT_PAGE,
                    wait=0,
                )
            except ExchangeError as exc:
                report.errors[code] = f"change events: {exc.code}: {exc.message}"
                return
            body = orjson.loads(page.body)
            events: list[dict[str, Any]] = body["events"]
            refreshed = int(time.time())
            upserts: list[Row] = []
            deletes: list[str] = []
            for event in events:
                record = event.get("record")
                if not record or set(record) <= {source.key_field}:
                    deletes.append(event["key"])
                    continue
                vals = [record.get(f) for f in fields]
                upserts.append((source.id, event["key"], _ENCODER.encode(vals).decode(), refreshed))
            nxt = int(body["next_cursor"])
            if events or nxt != source.event_cursor:
                await run_joined(
                    write_events,
                    self.db,
                    source.id,
                    upserts,
                    deletes,
                    cursor=nxt,
                    refreshed_at=self.ctx.clock.now(),
                )
            if events:
                await writer.record(
                    distribution_audit.entry(
                        kind=distribution_audit.PULL,
                        at=self.ctx.clock.now(),
                        request_id=uuid.uuid4().hex,
                        consumer=self.unit,
                        provider=source.provider,
                        resource_code=code,
                        items=sorted(page.items),
                        records=page.records,
                        outcome="ok",
                        status=200,
                        started=started,
                        ended=time.perf_counter(),
                        subscription=source.subscription_id,
                    )
                )
            report.events[code] = report.events.get(code, 0) + len(events)
            self.counters[(source.library, code)] = self.counters.get(
                (source.library, code), 0
            ) + len(events)
            source.event_cursor = nxt
            if not body["more"]:
                return
