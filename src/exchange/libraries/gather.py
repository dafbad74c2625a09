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

A full pass also reconciles: each record it writes carries the source's pass number, and
once it has read its source to the end, the source's records of an older number (what the
source no longer exports: a household member moved away, an enterprise struck off) are
removed, counted (``removed``) and audited. A pass cut short (a restart, a source down)
never reached the end, so it removes nothing; resumed, it sweeps when it gets there.
Incremental passes do not sweep (change events delete what they say is gone).

Sources with no grant yet are applied for as the library unit (unconditional items are
granted at once; conditional ones wait for the provider's review) and skipped until the
grant exists; items left out of a grant are gathered as missing, never guessed.

Beside this module: :mod:`~exchange.libraries.sources` (the sources' rows and states),
:mod:`~exchange.libraries.access` (applications, grants, subscriptions),
:mod:`~exchange.libraries.events` (change events), :mod:`~exchange.libraries.store` (writes).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request

from exchange.audit.entry import Entry
from exchange.broker.service import Broker
from exchange.context import AppContext, present
from exchange.db.threads import run_joined
from exchange.errors import ExchangeError
from exchange.libraries.access import SourceAccess
from exchange.libraries.auditing import AUDIT_KIND
from exchange.libraries.events import EventFeed
from exchange.libraries.models import LibrarySource
from exchange.libraries.quality import run_checks
from exchange.libraries.report import PassReport
from exchange.libraries.sources import SourceBook
from exchange.libraries.store import Page, Staged, stage_page, sweep, write_page
from exchange.security import demo_key

log = logging.getLogger(__name__)

__all__ = ["Gatherer", "PassReport"]

#: the business case named on every gathering call in the audit log
CASE = "基础信息库汇集"
# Headers are ASCII: the case goes percent-encoded, as any client sends Chinese text.
_CASE_HEADER = quote(CASE).encode()
#: the outcome of a source's reconciliation in the audit log (records: how many went)
SWEPT = "removed_gone_from_source"
#: export pages read and not yet written, at most (each held as its NDJSON and, on SQLite,
#: its staged image: with the default page of 100,000 records, some 25 MB a page): the
#: pass reads and stages this far ahead of the page being written
PAGES_AHEAD = 3


class Gatherer(SourceBook, SourceAccess, EventFeed):
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
        #: the pages read and not yet written, oldest first: each one's write (the last
        #: page of a source: its write and the source's finish), see :meth:`_gather_source`
        self._inflight: deque[asyncio.Future[Any]] = deque()
        #: passes started through the API (held so they are not collected mid-run)
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return self._lock.locked()

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
                        run_checks, self.db, code, self.ctx.clock.now()
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
        # The source's pass is marked begun just before its first page is written (after
        # the source before it is finished: a write of this one beside it would wait on
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
        # Pages are pipelined: each page read through the broker is staged at once (on
        # SQLite: taken apart and sorted in a thread, the part of a write that needs no
        # turn at the database) and its write queued behind the writes before it, so
        # reading, staging and writing run side by side, up to PAGES_AHEAD pages apart,
        # across sources too (most sources of a city of 100,000 are one page: without
        # it, nothing overlapped). Writes still commit in page order, each with its own
        # watermark, a source's first after its ``begin``, its last followed by its
        # finish (the sweep of a full pass).
        writing: asyncio.Future[int] | None = None
        try:
            while True:
                await self._make_room()
                page, next_offset, total = await self._page(source, items, layout)
                after = self._inflight[-1] if self._inflight else None
                writing = asyncio.ensure_future(
                    self._write(
                        self._stage(page),
                        after,
                        begin,
                        source.id,
                        watermark=next_offset,
                        total_rows=total,
                    )
                )
                begin = None
                got += page.records
                key = (source.library, code)
                self.counters[key] = self.counters.get(key, 0) + page.records
                moved = next_offset > source.watermark
                source.watermark = next_offset
                pages += 1
                if next_offset >= total or not moved:
                    # Read to the end of the export: a full pass is reconciled (its
                    # source's records it did not write go). An empty page short of the
                    # end reported (not moved) ends the pass without: it saw less.
                    self._inflight.append(
                        asyncio.ensure_future(
                            self._finish_after(writing, source, report, whole=next_offset >= total)
                        )
                    )
                    writing = None
                    break
                self._inflight.append(writing)
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
                # Stopped short of the end (max_pages): the source's pages are written
                # before the pass goes on.
                await self._settle()
            report.gathered[code] = report.gathered.get(code, 0) + got

    def _stage(self, page: Page) -> asyncio.Future[Page | Staged]:
        """The page staged for its write in a thread (SQLite), starting now; on PostgreSQL
        the page as it is (its write decodes it: COPY takes rows)."""
        if not self.db.is_sqlite:
            done: asyncio.Future[Page | Staged] = asyncio.get_running_loop().create_future()
            done.set_result(page)
            return done
        return asyncio.ensure_future(run_joined(stage_page, page))

    async def _write(
        self,
        staging: asyncio.Future[Page | Staged],
        after: asyncio.Future[Any] | None,
        begin: tuple[Any, ...] | None,
        source_id: int,
        *,
        watermark: int,
        total_rows: int,
    ) -> int:
        """Write a page once it is staged and the page before it (``after``, maybe of the
        source before) is written, its source's pass begun first if it is the first page
        (``begin``); the records written. A write before that failed fails this one."""
        try:
            if after is not None:
                await after
            if begin is not None:
                await run_joined(*begin)
        except BaseException:
            await _drop(staging)
            raise
        staged = await staging
        return await run_joined(
            write_page,
            self.db,
            source_id,
            staged,
            watermark=watermark,
            total_rows=total_rows,
            refreshed_at=self.ctx.clock.now(),
        )

    async def _finish_after(
        self,
        writing: asyncio.Future[int],
        source: LibrarySource,
        report: PassReport,
        *,
        whole: bool,
    ) -> None:
        """A source's last page written, its pass is done: swept first if it was a full
        pass that read the whole export (see :func:`~exchange.libraries.store.sweep`)."""
        await writing
        if whole:
            started = time.perf_counter()
            removed = await run_joined(sweep, self.db, source.id, refreshed_at=self.ctx.clock.now())
            if removed is not None:
                code = source.resource_code
                report.removed[code] = report.removed.get(code, 0) + removed
                await self._audit_sweep(source, removed, started)
        await run_joined(self._finish, source.id)

    async def _audit_sweep(self, source: LibrarySource, removed: int, started: float) -> None:
        """The reconciliation of a source, audited beside its pass's export pages: the
        library unit removed ``removed`` records of the provider's topic (0: none gone)."""
        writer = present(self.ctx.audit, "the audit writer does not run in this part")
        await writer.record(
            Entry(
                request_id=uuid.uuid4().hex,
                at=self.ctx.clock.now(),
                kind=AUDIT_KIND,
                consumer=self.unit,
                provider=source.provider,
                resource_code=source.resource_code,
                items=sorted(f[0] for f in source.fields),
                case=CASE,
                records=removed,
                outcome=SWEPT,
                status=200,
                latency_us=int((time.perf_counter() - started) * 1_000_000),
            )
        )

    async def _settle(self) -> None:
        """Wait for every page write (and source finish) under way; the first error of
        them raised (each one's retrieved, so asyncio logs none as never retrieved)."""
        pending, self._inflight = list(self._inflight), deque()
        if not pending:
            return
        await asyncio.wait(pending)
        errors = [f.exception() for f in pending if not f.cancelled()]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        if any(f.cancelled() for f in pending):
            raise asyncio.CancelledError

    async def _make_room(self) -> None:
        """Wait until fewer than :data:`PAGES_AHEAD` pages are read and not yet written
        (a failed write's error raised, the writes behind it left to :meth:`_settle`)."""
        while len(self._inflight) >= PAGES_AHEAD:
            await self._inflight[0]
            self._inflight.popleft()

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


async def _drop(staging: asyncio.Future[Page | Staged]) -> None:
    """A staging no write will take (the pass failed before it): waited for, its result
    or error dropped (its thread runs to its end either way)."""
    await asyncio.wait([staging])
    if not staging.cancelled():
        staging.exception()
