"""Gathering (汇集): a full load of every source, then incremental passes from a watermark.

Each source topic is read through the broker's bulk export exactly as any consumer reads
it: the library unit's key, its grant checked (items, validity, quota), the provider's
answer filtered to the granted items and every page audited. The call is made in process
(:meth:`Broker.export` on a request scope of its own), which skips only the HTTP hop.

A pass reads each source from its watermark (the next export offset) to the end the
provider reports (``X-Total-Rows``), page by page; each page's rows and the new watermark
commit together (:mod:`exchange.libraries.store`), so a pass stopped anywhere (a crash, a
restart, a provider failure) resumes at the first page not yet committed. A full pass
starts every watermark at 0 again and refreshes every record; an incremental pass reads
only rows added since (the mock sources append rows in index order).

Sources with no grant yet are applied for as the library unit (unconditional items are
granted at once; conditional ones wait for the provider's review) and skipped until the
grant exists; items left out of a grant are gathered as missing, never guessed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
import orjson
from sqlalchemy import select
from starlette.requests import Request

from exchange.authn import Principal
from exchange.authz import service as authz_service
from exchange.authz.models import Application
from exchange.authz.schemas import ApplicationCreate
from exchange.broker.service import Broker
from exchange.catalog.models import Topic
from exchange.context import AppContext, present
from exchange.db.threads import run_joined
from exchange.distribution import audit as distribution_audit
from exchange.distribution import pull
from exchange.distribution import service as distribution_service
from exchange.distribution.schemas import SubscriptionCreate
from exchange.errors import ExchangeError
from exchange.libraries.models import LibrarySource
from exchange.libraries.plan import SourcePlan, plan_sources
from exchange.libraries.quality import run_checks
from exchange.libraries.store import Page, Row, write_events, write_page
from exchange.security import demo_key

log = logging.getLogger(__name__)

__all__ = ["Gatherer", "PassReport"]

#: the business case named on every gathering call in the audit log
CASE = "基础信息库汇集"
_PURPOSE = "基础信息库汇集:人口、法人基础信息按一数一源从责任部门汇集,供各部门无条件共享"
_LEGAL = "《广州市政务数据管理条例》:市政务服务数据管理部门统筹建设人口、法人等基础数据库"
_SCOPES = ("data_verification", "business_collaboration", "administrative_basis", "work_reference")
#: change events read per feed page
EVENT_PAGE = 5_000
# Headers are ASCII: the case goes percent-encoded, as any client sends Chinese text.
_CASE_HEADER = quote(CASE).encode()


@dataclass
class PassReport:
    """What one pass gathered, per source (resource code) and in total."""

    full: bool
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    gathered: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: change events applied, by source (incremental passes)
    events: dict[str, int] = field(default_factory=dict)
    #: conflicts seen by the quality check after the pass, by library
    conflicts: dict[str, int] = field(default_factory=dict)
    #: the whole pass, and of it the quality check after the gathering
    seconds: float = 0.0
    check_seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.gathered.values())


def _fields_of(plan: SourcePlan) -> list[list[Any]]:
    return [[f.field, f.element, f.is_source, f.sharing_type] for f in plan.fields]


class Gatherer:
    """The libraries' gathering, one per app (``ctx.libraries``)."""

    def __init__(self, ctx: AppContext, broker: Broker) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.broker = broker
        settings = ctx.settings
        self.unit = settings.library_unit
        self.key = settings.library_key or demo_key(ctx.operator_key, self.unit)
        self.page = settings.library_page
        self._lock = asyncio.Lock()
        #: the pass under way, for the progress view
        self.current: PassReport | None = None
        self.last: PassReport | None = None
        #: records gathered by this process since it started, by library and source
        self.counters: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None
        #: the last page write of the source gathered before, still running while the
        #: next source's first page is read (see :meth:`_gather_source`)
        self._tail: asyncio.Future[None] | None = None
        #: passes started through the API (held so they are not collected mid-run)
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return self._lock.locked()

    # -- the plan ------------------------------------------------------------------------

    def sync_plan(self) -> list[LibrarySource]:
        """Bring ``library_source`` in line with the catalog: new sources are added, a
        source's items follow the catalog, a source the catalog no longer offers is marked
        ``withdrawn`` (its records are kept until the operator drops them)."""
        with self.db.session() as session:
            topics = session.scalars(select(Topic)).all()
            plans = {
                (p.library, p.resource_code): p
                for p in plan_sources(topics, library_unit=self.unit)
            }
            rows = {(s.library, s.resource_code): s for s in session.scalars(select(LibrarySource))}
            for key, plan in plans.items():
                row = rows.get(key)
                if row is None:
                    row = LibrarySource(
                        library=plan.library,
                        resource_code=plan.resource_code,
                        provider=plan.provider,
                        topic_name=plan.topic_name,
                        role=plan.role,
                        key_field=plan.key_field,
                        fields=_fields_of(plan),
                        state="new",
                        watermark=0,
                        gathered=0,
                        pass_gathered=0,
                        passes=0,
                        checked_until=0,
                    )
                    session.add(row)
                    rows[key] = row
                elif row.fields != _fields_of(plan) or row.role != plan.role:
                    # The catalog changed the items: the stored arrays no longer match, so
                    # the source is read again from the start.
                    row.fields, row.role, row.key_field = (
                        _fields_of(plan),
                        plan.role,
                        plan.key_field,
                    )
                    row.watermark, row.state = 0, "new"
                    row.topic_name = plan.topic_name
                elif row.state == "withdrawn":
                    row.state = "new"
            for key, row in rows.items():
                if key not in plans and row.state != "withdrawn":
                    row.state = "withdrawn"
            session.flush()
            return sorted(rows.values(), key=lambda s: s.id)

    # -- grants --------------------------------------------------------------------------

    def _apply(self, source: LibrarySource) -> int:
        """File the library unit's application for a source's items; its id."""
        ctx = self.ctx
        with self.db.sessions() as session:
            topic = session.scalar(select(Topic).where(Topic.resource_code == source.resource_code))
            offered = (topic.data.get("sharing", {}).get("usage_scopes") if topic else None) or []
            scope = next((s for s in _SCOPES if s in offered), _SCOPES[0])
        today = ctx.clock.today()
        spec = ApplicationCreate.model_validate(
            {
                "topic": source.resource_code,
                "items": [source.key_field, *(f[0] for f in source.fields)],
                "purpose": {"scope": scope, "text": _PURPOSE},
                "legal_function": _LEGAL,
                "valid_until": (today + dt.timedelta(days=5 * 365)).isoformat(),
                # One grant covers both ways in: the full load by bulk export, then the
                # source's change events by subscription.
                "delivery": "subscription",
            }
        )
        with self.db.session() as session:
            app = authz_service.submit(
                session,
                spec,
                Principal(self.unit),
                now=ctx.clock.now(),
                today=today,
                calendar=ctx.calendar,
                review_days=ctx.settings.review_days,
            )
            return app.id

    def _pending_application(self, app_id: int | None) -> bool:
        """Whether the library's last application still stands: under review or disputed,
        or granted already (the grant cache has not yet caught up with it). Only a
        returned application, or none, is filed again."""
        if app_id is None:
            return False
        with self.db.sessions() as session:
            app = session.get(Application, app_id)
            if app is None:
                return False
            if app.status in ("pending_review", "disputed"):
                return True
            return app.status in ("approved", "partially_approved") and app.grant_id is not None

    async def _granted_items(self, source: LibrarySource) -> frozenset[str] | None:
        """The items the library may gather from ``source`` now, or None (no grant)."""
        cache = self.ctx.grants
        decision = await run_joined(cache.check, self.unit, source.resource_code, None)
        if decision.allowed and source.key_field in decision.items:
            return decision.items
        return None

    # -- a pass --------------------------------------------------------------------------

    async def gather(
        self, library: str | None = None, *, full: bool = False, max_pages: int | None = None
    ) -> PassReport:
        """One pass over the sources of ``library`` (None: both). ``max_pages`` bounds the
        export pages read per source (a test stops a pass half-way with it)."""
        async with self._lock:
            report = PassReport(full=full, started_at=self.ctx.clock.now())
            self.current = report
            started = time.perf_counter()
            try:
                sources = await run_joined(self.sync_plan)
                touched: set[str] = set()
                for source in sources:
                    if library is not None and source.library != library:
                        continue
                    if source.state == "withdrawn":
                        continue
                    touched.add(source.library)
                    await self._gather_source(source, report, full=full, max_pages=max_pages)
                await self._settle()
                checking = time.perf_counter()
                for code in sorted(touched):
                    report.conflicts[code] = await run_joined(
                        run_checks, self.db, code, self.ctx.clock.now(), force=full
                    )
                report.check_seconds = time.perf_counter() - checking
            finally:
                await self._settle()
                report.seconds = time.perf_counter() - started
                report.finished_at = self.ctx.clock.now()
                self.current = None
                self.last = report
            return report

    async def _gather_source(
        self, source: LibrarySource, report: PassReport, *, full: bool, max_pages: int | None
    ) -> None:
        code = source.resource_code
        granted = await self._granted_items(source)
        if granted is None:
            if not await run_joined(self._pending_application, source.application_id):
                try:
                    source.application_id = await run_joined(self._apply, source)
                except ExchangeError as exc:
                    report.skipped[code] = f"application refused: {exc.message}"
                    await run_joined(self._set_state, source.id, "error", exc.message)
                    return
                granted = await self._granted_items(source)
            if granted is None:
                report.skipped[code] = "awaiting the grant (the provider's review)"
                await run_joined(
                    self._set_state, source.id, "awaiting_grant", None, source.application_id
                )
                return
        items = [source.key_field, *(f[0] for f in source.fields if f[0] in granted)]
        if source.subscription_id is None:
            # Subscribed before the full load: changes made while it runs are applied
            # after it (an event for a record the load already has is a harmless upsert).
            source.subscription_id = await run_joined(self._subscribe, source, items)
        elif not full and source.state == "done":
            await self._apply_events(source, report)
        # The source's pass is marked begun once its first page is read and the previous
        # source's last write ended (a write of this one beside it would wait on
        # SQLite's lock).
        begin: tuple[Any, ...] | None = None
        if full or (source.watermark == 0 and source.state != "gathering"):
            source.watermark = 0
            begin = (self._start_pass, source.id)
        elif source.state != "gathering":
            begin = (self._set_state, source.id, "gathering", None)
        # Items outside the grant are stored as missing (null), in their place.
        layout = tuple(f[0] if f[0] in granted else None for f in source.fields)
        pages = 0
        got = 0
        # Pages are pipelined: page n is written (in a thread, where SQLite and psycopg
        # release the GIL) while page n + 1 is read through the broker. Writes still
        # commit in page order, each with its own watermark. A source's last write runs
        # on while the next source's first page is read (most sources of a city of
        # 100,000 are one page: without it, nothing overlapped).
        writing: asyncio.Future[int] | None = None
        try:
            while True:
                page, next_offset, total = await self._page(source, items, layout)
                await self._settle()
                if begin is not None:
                    await run_joined(*begin)
                    begin = None
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(
                    run_joined(
                        write_page,
                        self.db,
                        source.id,
                        page,
                        watermark=next_offset,
                        total_rows=total,
                        refreshed_at=self.ctx.clock.now(),
                    )
                )
                got += page.records
                key = (source.library, code)
                self.counters[key] = self.counters.get(key, 0) + page.records
                moved = next_offset > source.watermark
                source.watermark = next_offset
                pages += 1
                if next_offset >= total or not moved:
                    self._tail = asyncio.ensure_future(self._finish_after(writing, source.id))
                    writing = None
                    break
                if max_pages is not None and pages >= max_pages:
                    break
        except ExchangeError as exc:
            report.errors[code] = f"{exc.code}: {exc.message}"
            await self._settle()
            if begin is not None:
                await run_joined(*begin)
            await run_joined(self._set_state, source.id, "error", exc.message)
        finally:
            if writing is not None:
                await writing
            report.gathered[code] = report.gathered.get(code, 0) + got

    async def _finish_after(self, writing: asyncio.Future[int], source_id: int) -> None:
        """A source's last page written, its pass is done."""
        await writing
        await run_joined(self._finish, source_id)

    async def _settle(self) -> None:
        """Wait for the last write of the source gathered before (its errors raised)."""
        tail, self._tail = self._tail, None
        if tail is not None:
            await tail

    async def _page(
        self, source: LibrarySource, items: list[str], layout: tuple[str | None, ...]
    ) -> tuple[Page, int, int]:
        """Read one export page through the broker: (the page, next offset, total rows).
        Its records stay NDJSON: :func:`write_page` stores them without decoding them."""
        front, seq = source.resource_code.split("/")
        query = urlencode(
            {"offset": source.watermark, "limit": self.page, "items": ",".join(items)}
        ).encode()
        rid = uuid.uuid4().hex
        scope: dict[str, Any] = {
            "type": "http",
            "method": "GET",
            "path": f"/api/v1/exchange/{front}/{seq}/export",
            "query_string": query,
            "headers": [
                (b"authorization", f"Bearer {self.key}".encode()),
                (b"x-exchange-case", _CASE_HEADER),
            ],
            "state": {"request_id": rid},
        }
        response = await self.broker.export(Request(scope), front, seq)
        chunks: list[bytes] = []
        async for chunk in response.body_iterator:  # type: ignore[attr-defined]
            chunks.append(chunk if isinstance(chunk, bytes) else chunk.encode())
        total = int(response.headers.get("x-total-rows", "0"))
        next_offset = int(response.headers.get("x-next-offset", str(source.watermark)))
        page = Page(source.id, b"".join(chunks), source.key_field, layout, int(time.time()))
        return page, next_offset, total

    # -- change events -------------------------------------------------------------------

    def _subscribe(self, source: LibrarySource, items: list[str]) -> int | None:
        """The library unit's pull subscription to the source's change events (None when
        the exchange runs no distribution or the grant's delivery is not subscription:
        the source is then refreshed by export passes only)."""
        if self.ctx.distribution is None:
            return None
        body = SubscriptionCreate.model_validate(
            {"topic": source.resource_code, "items": items, "delivery": "pull"}
        )
        try:
            with self.db.session() as session:
                sub = distribution_service.create_subscription(
                    session, body, Principal(self.unit), today=self.ctx.clock.today()
                )
                cursor = sub.cursor
                sub_id = sub.id
                row = session.get(LibrarySource, source.id)
                if row is not None:
                    row.subscription_id, row.event_cursor = sub_id, cursor
        except ExchangeError as exc:
            log.warning("library source %s: no subscription (%s)", source.resource_code, exc)
            return None
        source.event_cursor = cursor
        return sub_id

    async def _apply_events(self, source: LibrarySource, report: PassReport) -> None:
        """Apply the source's change events after the stored cursor, page by page, each
        page with its cursor in one transaction; audited as the feed's pull reads are."""
        assert source.subscription_id is not None
        writer = present(self.ctx.audit, "the audit writer does not run in this part")
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

    # -- bookkeeping (threads) -----------------------------------------------------------

    def _start_pass(self, source_id: int) -> None:
        with self.db.session() as session:
            row = session.get(LibrarySource, source_id)
            if row is not None:
                row.state, row.watermark, row.pass_gathered = "gathering", 0, 0
                row.pass_started_at, row.last_error = self.ctx.clock.now(), None

    def _set_state(
        self, source_id: int, state: str, error: str | None, application_id: int | None = None
    ) -> None:
        with self.db.session() as session:
            row = session.get(LibrarySource, source_id)
            if row is not None:
                row.state, row.last_error = state, error
                if application_id is not None:
                    row.application_id = application_id

    def _finish(self, source_id: int) -> None:
        with self.db.session() as session:
            row = session.get(LibrarySource, source_id)
            if row is not None:
                row.state, row.last_error = "done", None
                row.passes += 1

    # -- periodic ------------------------------------------------------------------------

    def start(self, every: float) -> None:
        """Run an incremental pass every ``every`` seconds (full the first time a source
        is seen) until :meth:`stop`."""

        async def loop() -> None:
            while True:
                try:
                    await self.gather()
                except Exception:
                    log.exception("library gathering pass failed")
                await asyncio.sleep(every)

        self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        """Cancel the periodic loop and any pass under way: it resumes from its watermark
        at the next start."""
        tasks = [t for t in (self._task, *self.tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("library gathering pass failed while stopping")
        self._task = None
        self.tasks.clear()


_ENCODER = msgspec.json.Encoder()
