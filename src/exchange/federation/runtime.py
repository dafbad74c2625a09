"""The federation at run time, one per app (``ctx.federation``).

Outgoing: the peer's feed is pulled from the stored cursor by a background task (every
``SYNC_SECONDS`` and at once when kicked), revocations of grants on mounted topics are
delivered to the peer, and the broker hands it the lookups of mounted topics
(:meth:`Federation.forward`). Incoming: the router checks every call with
:meth:`Federation.verify` and signs every answer with :meth:`Federation.sign_answer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections import deque
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from exchange.audit.entry import Entry
from exchange.audit.writer import AuditUnavailable
from exchange.broker.answers import LookupAnswer
from exchange.broker.errors import ProviderBadResponse, ProviderUnavailable, client_error
from exchange.catalog.service import CatalogEvent
from exchange.context import AppContext, present
from exchange.db.threads import run_joined
from exchange.errors import ExchangeError
from exchange.federation import delivery, forwarding, provision, relay, retention, service
from exchange.federation.models import Cursor, Mount, Publication, Revocation
from exchange.federation.peer import PeerClient, PeerUnreachable
from exchange.federation.trust import ANSWER, signer_for, verifier_for
from exchange.members.models import Department
from exchange.provider_auth import SignatureError, SignedCall, derive_provider_secret

log = logging.getLogger(__name__)

__all__ = ["PREFIX", "Federation", "install"]

#: where a platform answers its peer
PREFIX = "/api/v1/federation"
SYNC_SECONDS = 2.0
FEED_PAGE = 500
#: export rows per provision page: large pages amortise the signed call and the commit
DEFAULT_PAGE = 20_000
MAX_PAGE = 100_000
#: provision pages asked for ahead of the one being stored (see :meth:`Federation.pull`)
PAGES_AHEAD = 3
#: how long one provision keeps pulling in a tick before the others (and the feed) go
PROVISION_SLICE = 5.0
#: the longest a failing provision waits before the background task asks again (seconds)
RETRY_CEILING = 60.0


#: a page as fetched: (request id, when it was asked, the page)
_Fetched = tuple[str, float, provision.Page]


def _drop(task: asyncio.Task[Any]) -> None:
    """Cancel a page asked ahead that cannot follow; its outcome is never needed."""
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


@dataclass(frozen=True, slots=True)
class ProvidedPage:
    """A page of bulk provision as the providing platform sends it."""

    body: bytes
    count: int
    items: list[str]
    provider: str
    span: str
    #: nothing new and no watermark moved (a caught-up poll)
    empty: bool = False


class Federation:
    """This platform's side of the connection to its peer."""

    def __init__(self, ctx: AppContext) -> None:
        settings = ctx.settings
        self.ctx = ctx
        self.db = ctx.db
        self.level = settings.level
        self.own_code = settings.own_code
        self.peer_code = settings.peer_code
        self.peer_url = (settings.peer_url or "").rstrip("/")
        self.peer_level = "city" if settings.level == "province" else "province"
        #: export rows asked per page of bulk provision
        self.page_size = min(settings.federation_page, MAX_PAGE)
        master = ctx.provider_secret
        #: what this platform signs its calls to the peer with (it issued it to the peer)
        self.client = PeerClient(
            self.peer_url or "http://unset.invalid",
            credential=derive_provider_secret(master, self.peer_code),
            own_code=self.own_code,
            peer_code=self.peer_code,
            window=settings.provider_window,
        )
        credential = settings.peer_credential
        self._inbound = (
            verifier_for(credential, self.own_code, window=settings.provider_window)
            if credential
            else None
        )
        self._answers = signer_for(credential, self.peer_code) if credential else None
        #: grants the peer revoked on this platform's topics (their calls are refused)
        self.revoked: set[int] = set()
        self._kick = asyncio.Event()
        self._pulling = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.last_sync_error: str | None = None
        self.synced_at: float | None = None
        #: resource codes published to the peer (None: to be loaded); dropped whenever the
        #: catalog announces a change, which publishing and withdrawing do
        self._published: frozenset[str] | None = None
        ctx.db.freshness.subscribe("catalog", self._forget_published)
        #: records provided to the peer per published topic, not yet added to the table
        self._provided: dict[str, int] = {}
        self._flushing: dict[str, int] = {}
        #: records provided to the peer since this process started, cumulative (/metrics)
        self.provided_total = 0
        #: records the peer provided in bulk and this process stored (/metrics)
        self.received_total = 0
        #: the last failure of each provision (local resource code), None once it works
        self.provision_errors: dict[str, str | None] = {}
        #: failing provisions (local resource code): (failures in a row, next try, monotonic)
        self._retry: dict[str, tuple[int, float]] = {}
        #: stored provision pages older than this (seconds) are folded (0: never)
        self.retention = settings.federation_retention
        self.prune_pages = settings.federation_prune_pages
        self.prune_every = settings.federation_prune_every
        self._next_prune = 0.0

    @property
    def connected(self) -> bool:
        return bool(self.peer_url)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.revoked = await run_joined(self._load_revoked)
        if not self.connected:
            return
        await run_joined(self._route_peer)
        await self.client.start()
        self._task = asyncio.create_task(self._run(), name="federation-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._flush_provided()
        await self.client.close()

    def kick(self) -> None:
        """Sync now rather than at the next tick (thread-safe)."""
        loop = self._task.get_loop() if self._task is not None else None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._kick.set)

    def _load_revoked(self) -> set[int]:
        with self.db.sessions() as session:
            return set(
                session.scalars(
                    select(Revocation.grant_id).where(Revocation.direction == "incoming")
                )
            )

    def _route_peer(self) -> None:
        """The peer's unit routes to the peer's federation API (the broker's lookups of
        mounted topics go there)."""
        url = self.peer_url + PREFIX
        with self.db.session() as session:
            dept = session.get(Department, self.peer_code)
            if dept is not None and dept.base_url != url:
                dept.base_url = url
                from exchange.db.freshness import announce

                announce(session, "departments")

    async def _run(self) -> None:
        while True:
            try:
                await self.sync_once()
                self.last_sync_error = None
            except (PeerUnreachable, SignatureError, ExchangeError, ValueError) as exc:
                # The peer is down or refusing: keep the cursor, try again next tick.
                self.last_sync_error = f"{type(exc).__name__}: {exc}"
            except Exception:
                log.exception("federation sync failed")
            try:
                await self.provision_all()
            except Exception:
                log.exception("federation provision failed")
            if self.retention > 0 and time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + self.prune_every
                try:
                    await run_joined(self.prune_once)
                except Exception:
                    log.exception("federation pruning failed")
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), SYNC_SECONDS)

    def _forget_published(self) -> None:
        self._published = None

    async def is_published(self, resource_code: str) -> bool:
        """Whether a topic is published to the peer (from memory; loaded once per change)."""
        published = self._published
        if published is None:
            published = self._published = await run_joined(self._load_published)
        return resource_code in published

    def _load_published(self) -> frozenset[str]:
        with self.db.sessions() as session:
            return frozenset(session.scalars(select(Publication.resource_code)))

    def provided(self, resource_code: str, records: int) -> None:
        """Count records provided to the peer (added to the publication by the sync task)."""
        if records > 0:
            self._provided[resource_code] = self._provided.get(resource_code, 0) + records
            self.provided_total += records

    @property
    def pending_provided(self) -> int:
        """Records provided and counted here, not yet in the publications' table."""
        return sum(self._provided.values()) + sum(self._flushing.values())

    async def _flush_provided(self) -> None:
        """Add the records counted since the last flush to the publications. The counts
        change hands on the event loop (where :meth:`provided` counts), so none is lost."""
        pending, self._provided = self._provided, {}
        if not pending:
            return
        self._flushing = pending
        try:
            await run_joined(self._write_provided, pending)
        except BaseException:
            for code, n in pending.items():
                self._provided[code] = self._provided.get(code, 0) + n
            raise
        finally:
            self._flushing = {}

    def _write_provided(self, pending: dict[str, int]) -> None:
        with self.db.session() as session:
            for code, n in pending.items():
                pub = session.get(Publication, code)
                if pub is not None:
                    pub.records_provided += n

    # -- outgoing ----------------------------------------------------------------------

    async def sync_once(self) -> dict[str, int]:
        """Deliver pending revocations, then pull the peer's feed to its end."""
        done: dict[str, int] = {}
        await self._flush_provided()
        await self._deliver_revocations()
        await relay.deliver(self)
        while True:
            cursor = await run_joined(self._cursor)
            answer = await self.client.call(
                "GET", PREFIX + "/feed", params={"after": str(cursor), "limit": str(FEED_PAGE)}
            )
            if answer.status != 200:
                raise ValueError(f"the peer's feed answered HTTP {answer.status}")
            page = orjson.loads(answer.body)
            entries, after = page["entries"], int(page["cursor"])
            if not entries:
                break
            applied = await run_joined(self._apply, entries, after)
            for k, v in applied.items():
                done[k] = done.get(k, 0) + v
            if len(entries) < FEED_PAGE:
                break
        self.synced_at = time.time()
        return done

    def _cursor(self) -> int:
        with self.db.sessions() as session:
            return service.cursor_value(session, service.FEED_CURSOR)

    def _apply(self, entries: list[dict[str, Any]], after: int) -> dict[str, int]:
        with self.db.session() as session:
            return service.apply_entries(
                session, entries, self.peer_code, self.ctx.clock.now(), cursor=after
            )

    async def _deliver_revocations(self) -> None:
        pending = await run_joined(self._pending_revocations)
        if not pending:
            return
        answer = await self.client.call(
            "POST", PREFIX + "/revocations", body=orjson.dumps({"revocations": pending})
        )
        if answer.status != 200:
            raise ValueError(f"the peer refused the revocations: HTTP {answer.status}")
        await run_joined(self._mark_delivered, [p["id"] for p in pending])

    def _pending_revocations(self) -> list[dict[str, Any]]:
        with self.db.sessions() as session:
            rows = session.scalars(
                select(Revocation).where(
                    Revocation.direction == "outgoing", Revocation.delivered_at.is_(None)
                )
            ).all()
            return [
                {
                    "id": r.id,
                    "grant_id": r.grant_id,
                    "consumer": r.consumer,
                    "resource_code": r.resource_code,
                }
                for r in rows
            ]

    def _mark_delivered(self, ids: list[int]) -> None:
        now = self.ctx.clock.now()
        with self.db.session() as session:
            for row in session.scalars(select(Revocation).where(Revocation.id.in_(ids))):
                row.delivered_at = now

    async def forward(
        self,
        *,
        request_id: str,
        consumer: str,
        grant_id: int | None,
        items: list[str],
        case: str | None,
        provider: str,
        api_path: str,
        keys: list[str],
    ) -> LookupAnswer:
        """A lookup of a mounted topic, asked of the peer platform (the broker's provider
        call for the peer's unit). The peer checks its own grant to this platform, the
        revocations it heard of, asks its department and filters; its refusals come back
        as errors on the provider side that say which platform and which side there."""
        code = api_path.removeprefix("/topics/")
        body = orjson.dumps(
            {"keys": keys, "items": items, "consumer": consumer, "grant_id": grant_id, "case": case}
        )
        try:
            answer = await self.client.call(
                "POST", f"{PREFIX}/topics/{code}/query", body=body, request_id=request_id
            )
        except PeerUnreachable as exc:
            raise ProviderUnavailable(
                provider,
                f"the {self.peer_level} platform ({provider}) is unreachable: {exc}",
                platform=self.peer_level,
            ) from None
        except SignatureError as exc:
            raise ProviderBadResponse(
                provider,
                f"the {self.peer_level} platform's answer failed its signature check: "
                f"{exc.message}",
                platform=self.peer_level,
                reason=exc.code,
            ) from None
        if answer.status == 200:
            data = orjson.loads(answer.body)
            return LookupAnswer(data["records"], data.get("not_found", []), data.get("invalid"))
        raise self._peer_error(provider, answer.status, answer.body)

    def _peer_error(self, provider: str, status: int, body: bytes) -> ExchangeError:
        try:
            error = orjson.loads(body)["error"]
            peer_code = str(error["code"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return ProviderBadResponse(
                provider,
                f"the {self.peer_level} platform answered HTTP {status} outside the error model",
                platform=self.peer_level,
            )
        # Provider-side here whatever it was there (the peer platform is this call's
        # provider); the peer's own code, side and request id travel in the detail.
        code = peer_code if peer_code.startswith("provider.") else "provider.peer_refused"
        return ExchangeError(
            f"the {self.peer_level} platform refused: {error.get('message', '')}",
            code=code,
            status_code=status if status < 500 else 502,
            detail={
                "side": "provider",
                "provider": provider,
                "platform": self.peer_level,
                "peer": {
                    "code": peer_code,
                    "side": (error.get("detail") or {}).get("side"),
                    "request_id": error.get("request_id"),
                    "detail": error.get("detail"),
                },
            },
        )

    # -- bulk provision: the providing side ----------------------------------------------

    async def provide(
        self, request_id: str, code: str, rows: int, changes: int | None, limit: int
    ) -> ProvidedPage:
        """One page of a published table topic for the peer (see
        :mod:`exchange.federation.provision`); refusals raise :class:`ExchangeError`."""
        from exchange.broker.service import _checked_lines

        broker = present(self.ctx.broker, "the broker does not run in this part")
        if not await self.is_published(code):
            raise client_error(
                "not_published", f"{code} is not published to the {self.peer_level} platform", 404
            )
        front, seq = code.split("/")
        route = await broker.routes.get(front, seq)
        if route is None:
            raise client_error("topic_not_found", f"no topic {code}", 404)
        if route.status == "retired":
            raise client_error("topic_retired", f"topic {code} is retired (废置)", 410)
        if route.resource_type != "table":
            raise client_error(
                "not_exportable",
                f"{code} is an {route.resource_type} topic; only table topics are provided in bulk",
                409,
            )
        grants = broker.grants
        decision = await run_joined(grants.check, self.peer_code, code, None, records=1)
        if not decision.allowed:
            raise client_error(
                decision.reason,
                f"the {self.peer_level} platform may not receive {code}: {decision.reason}",
                429 if decision.reason == "quota_exceeded" else 403,
                {"reason": decision.reason, "platform": self.level},
            )
        if decision.remaining_quota is not None:
            limit = max(1, min(limit, decision.remaining_quota + 1))
        wanted = tuple(sorted(decision.items))
        broker._endpoint(route)
        # Pinned before the export is read: a change after this point comes as an event.
        pinned = None
        if changes is None:
            pinned = await run_joined(self._outbox_end, code)
        # The granted items go to the department (in the signed path), which projects
        # them: each line is then only checked, and forwarded as it came (decoding and
        # re-encoding every record was most of a page's cost here).
        async with broker.upstream.stream(
            route.provider,
            route.url("/export"),
            {"offset": str(rows), "limit": str(limit), "fields": ",".join(wanted)},
            request_id,
        ) as resp:
            data = await resp.read()
            total = int(resp.headers.get("X-Total-Rows", rows))
            rows_to = max(rows, int(resp.headers.get("X-Next-Offset", rows)))
        records, n = b"", 0
        if (cut := data.rfind(b"\n")) >= 0:
            records, n = await run_joined(_checked_lines, route.provider, data, cut, wanted)
        if data[cut + 1 :].strip():
            raise ProviderBadResponse(
                route.provider, "the provider's export ended in the middle of a record"
            )
        events: list[bytes] = []
        changes_to: int = changes if changes is not None else (pinned or 0)
        if changes is not None and rows_to >= total and n < limit:
            events, changes_to = await run_joined(
                self._changes_after, code, changes, limit - n, decision.items
            )
        header = provision.PageHeader(
            rows_from=rows,
            rows_to=rows_to,
            rows_total=total,
            changes_from=changes,
            changes_to=changes_to,
            records=n,
            events=len(events),
        )
        count = n + len(events)
        if count and decision.grant_id is not None:
            grants.consume(decision.grant_id, count)
        broker.metrics.delivered(route.provider, count)
        return ProvidedPage(
            body=provision.encode_page(header, records, events),
            count=count,
            items=sorted(decision.items),
            provider=route.provider,
            span=f"provision rows {rows}-{rows_to} of {total}, changes {changes}-{changes_to}",
            empty=not count and (rows_to, changes_to) == (rows, changes),
        )

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

    def _outbox_end(self, code: str) -> int:
        with self.db.sessions() as session:
            return provision.outbox_end(session, code)

    def _changes_after(
        self, code: str, after: int, limit: int, items: frozenset[str]
    ) -> tuple[list[bytes], int]:
        with self.db.sessions() as session:
            return provision.changes_after(session, code, after, limit, items)

    # -- bulk provision: the receiving side ----------------------------------------------

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
            for mount, _, _ in await run_joined(self._provisions):
                code = mount.resource_code
                failures, due = self._retry.get(code, (0, 0.0))
                if not now and time.monotonic() < due:
                    continue
                try:
                    done[code] = await self.pull(mount)
                    self.provision_errors[code] = None
                    self._retry.pop(code, None)
                except (PeerUnreachable, SignatureError, ExchangeError, ValueError) as exc:
                    self.provision_errors[code] = f"{type(exc).__name__}: {exc}"
                    if isinstance(exc, ExchangeError):
                        wait = min(RETRY_CEILING, SYNC_SECONDS * 2**failures)
                        self._retry[code] = (failures + 1, time.monotonic() + wait)
        return done

    async def pull(self, mount: Mount, *, budget: float = PROVISION_SLICE) -> int:
        """Pull pages of one mounted topic from the stored watermark until a page brings
        nothing new or ``budget`` seconds pass; returns the records stored.

        Up to :data:`PAGES_AHEAD` pages are asked for ahead of the one being stored (each
        starts where the one before it will end): the peer builds the next pages, and its
        department derives their rows, while this side verifies and commits the current
        one, so neither platform waits for the other. With one page ahead, the peer sat
        idle while each page crossed the wire and was checked here. A page asked ahead
        that does not start where the stored one ends (the peer cut a page short) is
        dropped and asked again; once ``budget`` is spent no new page is asked, and those
        already asked are stored (the peer counted and audited them as provided). A page
        that is not stored (another process stored it first) ends the pull."""
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
                if (moved or count) and time.monotonic() < deadline:
                    self._ask_ahead(mount, header, ahead)
                kept = await run_joined(self._store, mount, page, rid)
                if kept and (count or moved):  # a poll that found nothing new is not audited
                    stored += count
                    self.received_total += count
                    await self._audit_pull(mount, rid, count, "ok", 200, started)
                if not kept or not ahead:
                    return stored
                current = await ahead.popleft()[2]
        finally:
            for *_, task in ahead:
                task.cancel()
            await asyncio.gather(*(task for *_, task in ahead), return_exceptions=True)

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

    # -- incoming ----------------------------------------------------------------------

    def verify(self, method: str, target: bytes, body: bytes, headers: Any) -> SignedCall:
        """The peer's call, or :class:`SignatureError` (a call from anyone else)."""
        if self._inbound is None:
            raise SignatureError(
                401, "not_federated", "this platform holds no credential of a peer platform"
            )
        return self._inbound.verify(method, target, body, headers)

    def sign_answer(self, target: bytes, body: bytes, request_id: str) -> str:
        assert self._answers is not None
        return self._answers.sign(ANSWER, target, body, request_id)

    def audit_entry(
        self,
        *,
        request_id: str,
        correlation_id: str | None,
        consumer: str,
        provider: str | None,
        resource_code: str | None,
        items: list[str],
        case: str | None,
        records: int,
        outcome: str,
        status: int,
        started: float,
    ) -> Entry:
        return Entry(
            request_id=request_id,
            at=self.ctx.clock.now(),
            kind="federation",
            consumer=consumer,
            provider=provider,
            resource_code=resource_code,
            items=items,
            case=case[:200] if case else None,
            records=records,
            outcome=outcome,
            status=status,
            latency_us=int((time.perf_counter() - started) * 1_000_000),
            correlation_id=correlation_id,
        )

    def receive_revocations(self, revocations: list[dict[str, Any]]) -> int:
        now = self.ctx.clock.now()
        added = 0
        with self.db.session() as session:
            known = set(
                session.scalars(
                    select(Revocation.grant_id).where(Revocation.direction == "incoming")
                )
            )
            for r in revocations:
                gid = int(r["grant_id"])
                if gid in known:
                    continue
                known.add(gid)
                session.add(
                    Revocation(
                        direction="incoming",
                        grant_id=gid,
                        consumer=str(r["consumer"])[:32],
                        resource_code=str(r["resource_code"])[:16],
                        at=now,
                        delivered_at=now,
                    )
                )
                added += 1
        self.revoked |= known
        return added


def on_grant_revoked(session: Any, event: Any) -> None:
    """A grant on a mounted topic was revoked here: the providing platform must hear of it
    (delivered by the sync task; the revocation commits with its outbox row)."""
    grant = event.grant
    mount = service.mount_of(session, grant.resource_code)
    if mount is None:
        return
    session.add(
        Revocation(
            direction="outgoing",
            grant_id=grant.id,
            consumer=grant.consumer,
            resource_code=mount.peer_resource_code,
            at=dt.datetime.now(dt.UTC),
        )
    )


def _forwarding_reactions(fed: Federation) -> None:
    """Applications across levels (:mod:`exchange.federation.forwarding`): a forward to
    queue or a state owed to the peer wakes the delivery once the transaction commits."""
    from exchange.authz.service import ApplicationDecided, ApplicationSubmitted, GrantRevoked

    def wake(session: Session, due: bool) -> None:
        if due and fed.connected:
            event.listen(session, "after_commit", lambda _s: fed.kick(), once=True)

    def submitted(session: Session, ev: ApplicationSubmitted) -> None:
        wake(
            session,
            forwarding.on_submitted(session, ev.application, fed.peer_level, fed.ctx.clock.now()),
        )

    def decided(session: Session, ev: ApplicationDecided) -> None:
        wake(session, forwarding.on_decided(session, ev.application, fed.ctx.clock.now()))

    def revoked(session: Session, ev: GrantRevoked) -> None:
        wake(
            session,
            forwarding.on_grant_revoked(session, ev.grant, fed.peer_code, fed.ctx.clock.now()),
        )

    fed.ctx.db.reactions.on(ApplicationSubmitted, submitted)
    fed.ctx.db.reactions.on(ApplicationDecided, decided)
    fed.ctx.db.reactions.on(GrantRevoked, revoked)


def install(ctx: AppContext) -> Federation:
    """The federation of one app; its catalog, grant and application reactions registered
    on the db."""
    from exchange.authz.service import GrantRevoked

    if ctx.federation is not None:
        return ctx.federation
    federation = Federation(ctx)
    ctx.db.reactions.on(CatalogEvent, service.on_catalog_event)
    ctx.db.reactions.on(GrantRevoked, on_grant_revoked)
    _forwarding_reactions(federation)
    return federation
