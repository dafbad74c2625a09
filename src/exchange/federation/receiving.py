"""Bulk provision, the receiving side: the mounted topics' pages pulled from the peer
(asked ahead, stored, audited, retried after a failure) and the stored pages pruned."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections import deque
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson

from exchange.audit.writer import AuditUnavailable
from exchange.db.threads import run_joined
from exchange.errors import ExchangeError
from exchange.federation import delivery, provision, retention
from exchange.federation.connection import PREFIX, SYNC_SECONDS, Connection
from exchange.federation.models import Cursor, Mount
from exchange.federation.peer import PeerUnreachable
from exchange.provider_auth import SignatureError

#: provision pages asked for ahead of the one being stored (see :meth:`Federation.pull`)
PAGES_AHEAD = 3
#: how long one provision keeps pulling in a tick before the others go (while no other
#: provision waits, the pull goes on, and the feed is synced beside it: see ``pull``)
PROVISION_SLICE = 5.0
#: the longest a failing provision waits before the background task asks again (seconds)
RETRY_CEILING = 60.0


#: a page as fetched: (request id, when it was asked, the page)
_Fetched = tuple[str, float, provision.Page]


def _drop(task: asyncio.Task[Any]) -> None:
    """Cancel a page asked ahead that cannot follow; its outcome is never needed."""
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


class Receiving(Connection):
    """The pages this platform pulls from its peer and keeps."""

    def _provisions(self) -> list[tuple[Mount, int, int | None]]:
        with self.db.sessions() as session:
            out = []
            for st in provision.states(session):
                mount = session.get(Mount, st.peer_resource_code)
                if mount is not None and mount.status == "published":
                    session.expunge(mount)
                    out.append((mount, st.rows, st.changes))
            return out

    async def provision_all(self, *, now: bool = False) -> dict[str, int]:
        """Pull every enabled provision until it is caught up (or its time slice ends);
        records stored, by local resource code. A failing one keeps its watermark and is
        retried: next tick if the peer was unreachable, but after a refusal or a provider's
        failure (the topic's own) only once a wait doubling from one tick up to
        :data:`RETRY_CEILING` has passed (a topic whose department serves no export would
        otherwise cost both platforms a signed call and an audited refusal every tick);
        ``now`` (the operator's pull) tries every one at once. The others go on."""
        done: dict[str, int] = {}
        # One puller per process: the tick and an operator's pull would fetch the same
        # pages (one of which the store refuses, but the peer would send both).
        async with self._pulling:
            # Rebuilt each pass: a mount withdrawn meanwhile must not keep the task busy.
            self.provisions_behind.clear()
            found = [m for m, _, _ in await run_joined(self._provisions)]
            for at, mount in enumerate(found):
                code = mount.resource_code
                failures, due = self._retry.get(code, (0, 0.0))
                if not now and time.monotonic() < due:
                    continue
                # The background task's pull goes on past its slice while no other
                # provision waits for its turn in this pass (an operator's pull keeps its
                # slice: the call answers when it ends).
                alone = not now and not any(
                    time.monotonic() >= self._retry.get(m.resource_code, (0, 0.0))[1]
                    for m in found[at + 1 :]
                )
                try:
                    done[code] = await self.pull(mount, alone=alone and not self.provisions_behind)
                    self.provision_errors[code] = None
                    self._retry.pop(code, None)
                except (PeerUnreachable, SignatureError, ExchangeError, ValueError) as exc:
                    self.provision_errors[code] = f"{type(exc).__name__}: {exc}"
                    if isinstance(exc, ExchangeError):
                        wait = min(RETRY_CEILING, SYNC_SECONDS * 2**failures)
                        self._retry[code] = (failures + 1, time.monotonic() + wait)
        return done

    async def pull(
        self, mount: Mount, *, budget: float = PROVISION_SLICE, alone: bool = False
    ) -> int:
        """Pull pages of one mounted topic from the stored watermark until a page brings
        nothing new or ``budget`` seconds pass; returns the records stored. ``alone`` (no
        other provision waits for a turn): when the budget is spent the pull takes another
        slice, and the feed's sync runs beside it (:meth:`_between_slices`), rather than
        draining its pages ahead and starting again from one (~0.2-0.5 s of a million-record
        pull, measured).

        Up to :data:`PAGES_AHEAD` pages are asked for ahead of the one being stored (each
        starts where the one before it will end): the peer builds the next pages, and its
        department derives their rows, while this side verifies and commits the current
        one, so neither platform waits for the other. With one page ahead, the peer sat
        idle while each page crossed the wire and was checked here. A page asked ahead
        that does not start where the stored one ends (the peer cut a page short) is
        dropped and asked again; once ``budget`` is spent no new page is asked, and those
        already asked are stored (the peer counted and audited them as provided), and the
        mount is left in :attr:`provisions_behind` so that the background task goes on
        without waiting a tick. A page that is not stored (another process stored it first)
        ends the pull."""
        deadline = time.monotonic() + budget
        stored = 0
        rows, changes = await run_joined(self._watermark, mount)
        current = await self._fetch(mount, rows, changes)
        ahead: deque[tuple[int, int | None, asyncio.Task[_Fetched]]] = deque()
        try:
            while True:
                rid, started, page = current
                header = page.header
                count = header.records + header.events
                end = (header.rows_to, header.changes_to)
                moved = end != (header.rows_from, header.changes_from)
                # Only pages that start where this one ends can follow it.
                while ahead and ahead[0][:2] != end:
                    _drop(ahead.popleft()[2])
                if moved or count:
                    if alone and time.monotonic() >= deadline:
                        self._between_slices()
                        deadline = time.monotonic() + budget
                    if alone or time.monotonic() < deadline:
                        self._ask_ahead(mount, header, ahead)
                kept = await run_joined(self._store, mount, page, rid)
                if kept and (count or moved):  # a poll that found nothing new is not audited
                    stored += count
                    self.received_total += count
                    await self._audit_pull(mount, rid, count, "ok", 200, started)
                if not kept or not ahead:
                    # A page that moved the watermark always has its follower asked for
                    # while the slice lasts: none asked means the slice ended first.
                    if kept and (count or moved):
                        self.provisions_behind.add(mount.resource_code)
                    return stored
                current = await ahead.popleft()[2]
        finally:
            for *_, task in ahead:
                task.cancel()
            await asyncio.gather(*(task for *_, task in ahead), return_exceptions=True)

    def _between_slices(self) -> None:
        """What must not wait for a pull that goes on past its slice (the feed's sync, in
        :class:`~exchange.federation.runtime.Federation`); nothing here."""

    def _ask_ahead(
        self,
        mount: Mount,
        header: provision.PageHeader,
        ahead: deque[tuple[int, int | None, asyncio.Task[_Fetched]]],
    ) -> None:
        """Top ``ahead`` up to :data:`PAGES_AHEAD` pages following ``header``'s page. Past
        the next one, only export pages are guessed (``rows`` moves by a page, the change
        watermark stays); the page that reaches the export's end may bring change events
        and move it, so nothing is guessed beyond that."""
        if not ahead:
            nxt = (header.rows_to, header.changes_to)
            ahead.append((*nxt, asyncio.create_task(self._fetch(mount, *nxt))))
        while len(ahead) < PAGES_AHEAD:
            rows = ahead[-1][0] + self.page_size
            if rows >= header.rows_total or ahead[-1][1] != header.changes_to:
                return
            fetch = self._fetch(mount, rows, header.changes_to)
            ahead.append((rows, header.changes_to, asyncio.create_task(fetch)))

    async def _fetch(self, mount: Mount, rows: int, changes: int | None) -> _Fetched:
        """One page from the peer, from the given watermark: (request id, start, page)."""
        params = {"rows": str(rows), "limit": str(self.page_size)}
        if changes is not None:
            params["changes"] = str(changes)
        started = time.perf_counter()
        rid = uuid.uuid4().hex
        path = f"{PREFIX}/topics/{mount.peer_resource_code}/records"
        answer = await self.client.call("GET", path, params=params, request_id=rid)
        if answer.status != 200:
            await self._audit_pull(
                mount, rid, 0, self._peer_code_of(answer.body), answer.status, started
            )
            raise self._peer_error(self.peer_code, answer.status, answer.body)
        page = await run_joined(provision.parse_page, answer.body)
        if page.header.rows_from != rows or page.header.changes_from != changes:
            raise ValueError("the peer answered a page from another watermark")
        return rid, started, page

    def _watermark(self, mount: Mount) -> tuple[int, int | None]:
        with self.db.sessions() as session:
            rows = session.get(Cursor, provision.rows_cursor(mount.peer_resource_code))
            changes = session.get(Cursor, provision.changes_cursor(mount.peer_resource_code))
            return (0 if rows is None else rows.value), (None if changes is None else changes.value)

    def _store(self, mount: Mount, page: provision.Page, rid: str) -> bool:
        with self.db.writing(), self.db.session() as session:
            return provision.store_page(session, mount, page, rid, self.ctx.clock.now())

    @staticmethod
    def _peer_code_of(body: bytes) -> str:
        try:
            return str(orjson.loads(body)["error"]["code"])[:64]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return "provider.bad_response"

    async def _audit_pull(
        self, mount: Mount, rid: str, records: int, outcome: str, status: int, started: float
    ) -> None:
        """This platform's record of one page pulled (the peer's carries ``rid`` as its
        correlation id): so both trails show the same exchange."""
        audit = self.ctx.audit
        if audit is None:
            return
        entry = self.audit_entry(
            request_id=rid,
            correlation_id=None,
            consumer=self.own_code,
            provider=self.peer_code,
            resource_code=mount.resource_code,
            items=[],
            case=f"provision of {mount.peer_resource_code} from the {self.peer_level} platform",
            records=records,
            outcome=outcome,
            status=status,
            started=started,
        )
        with contextlib.suppress(AuditUnavailable):
            await audit.record(entry)

    def stored_export(
        self, resource_code: str, key_item: str | None, offset: int, limit: int
    ) -> AbstractAsyncContextManager[Any]:
        """A mounted topic's export from the pages the peer provided (the broker's
        export of a mounted topic; see :mod:`exchange.federation.delivery`)."""
        return delivery.stored_export(self.db, resource_code, key_item, offset, limit)

    def prune_once(self) -> int:
        """One pruning pass over every provided topic (see
        :mod:`exchange.federation.retention`), one bounded transaction each; pages folded."""
        now = self.ctx.clock.now()
        before = now - dt.timedelta(seconds=self.retention)
        folded = 0
        for mount, _, _ in self._provisions():
            with self.db.writing(), self.db.session() as session:
                key_item = retention.key_item_of(session, mount.resource_code)
                folded += retention.prune_topic(
                    session,
                    mount.peer_resource_code,
                    key_item,
                    before=before,
                    now=now,
                    pages=self.prune_pages,
                ).pages
        return folded
