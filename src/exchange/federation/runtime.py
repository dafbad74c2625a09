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
from typing import Any

import orjson
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from exchange.broker.answers import LookupAnswer
from exchange.broker.errors import ProviderBadResponse, ProviderUnavailable
from exchange.catalog.service import CatalogEvent
from exchange.context import AppContext
from exchange.db.threads import run_joined
from exchange.errors import ExchangeError
from exchange.federation import forwarding, relay, service
from exchange.federation.connection import FEED_PAGE, PREFIX, SYNC_SECONDS
from exchange.federation.models import Publication, Revocation
from exchange.federation.peer import PeerUnreachable
from exchange.federation.providing import Providing
from exchange.federation.receiving import Receiving
from exchange.federation.trust import ANSWER
from exchange.members.models import Department
from exchange.provider_auth import SignatureError, SignedCall
from exchange.tasks import cancel_and_wait

log = logging.getLogger(__name__)

__all__ = ["PREFIX", "Federation", "install"]


class Federation(Receiving, Providing):
    """This platform's side of the connection to its peer: the sync task, the lookups
    forwarded to the peer and the peer's calls checked (the providing and receiving sides
    of bulk provision come from :class:`Providing` and :class:`Receiving`)."""

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.revoked = await run_joined(self._load_revoked)
        if not self.connected:
            return
        await run_joined(self._route_peer)
        await self.client.start()
        self._task = asyncio.create_task(self._run(), name="federation-sync")

    async def stop(self) -> None:
        await cancel_and_wait(self._task, self._beside)
        self._task = self._beside = None
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

    async def _sync_noted(self) -> None:
        """One sync, its failure noted (and tried again on the next tick), not raised."""
        try:
            await self.sync_once()
            self.last_sync_error = None
        except (PeerUnreachable, SignatureError, ExchangeError, ValueError) as exc:
            # The peer is down or refusing: keep the cursor, try again next tick.
            self.last_sync_error = f"{type(exc).__name__}: {exc}"
        except Exception:
            log.exception("federation sync failed")

    def _between_slices(self) -> None:
        """A pull goes on past its slice: the feed's sync (catalog changes, revocations,
        forwarded applications) runs beside it, once a tick has passed since the last one
        or when kicked, instead of waiting for the pull to end."""
        if self._beside is not None and not self._beside.done():
            return
        due = self.synced_at is None or time.time() - self.synced_at >= SYNC_SECONDS
        if due or self._kick.is_set():
            self._kick.clear()
            self._beside = asyncio.create_task(self._sync_noted(), name="federation-sync-beside")

    async def _run(self) -> None:
        while True:
            await self._sync_noted()
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
            if self.provisions_behind:
                # A provision stopped on its slice, not caught up: the slice is there so the
                # feed and the other provisions get a turn (they just had it), not to pause
                # a bulk pull. Waiting a tick here cost a million-record pull ~2 s of 7.
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), SYNC_SECONDS)

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
        """Deliver pending revocations, then pull the peer's feed to its end.

        One sync at a time per process: the background tick and an operator's sync both
        read the feed from the same stored cursor, and the second to apply the same
        entries met the first's rows (a mount inserted twice: 409 ``integrity_conflict``
        to the operator, seen in tests/federation/test_profile)."""
        async with self._syncing:
            return await self._sync()

    async def _sync(self) -> dict[str, int]:
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
