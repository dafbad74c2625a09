"""Push delivery: one worker per exchange process, sharing subscriptions with the others.

How it keeps its promises:

* **At least once.** A subscription's cursor moves only after its endpoint acknowledged
  (2xx) the batch; a process killed mid-push leaves the cursor where it was, and whoever
  holds the subscription next sends the batch again (same event ids: the consumer's
  idempotency keys).
* **Sharing without double work.** A process *leases* a subscription (``lease_owner``,
  ``lease_until``) before pushing to it; the claim selects due subscriptions ``FOR UPDATE
  SKIP LOCKED`` on PostgreSQL and sets the lease only where none is live (checked by the
  UPDATE itself, which also covers SQLite). A lease is renewed with every batch and lapses
  when its holder dies, so another process takes over.
* **Order per key.** A subscription's events go out in id order, one batch at a time;
  a failed batch is retried whole before anything after it.
* **Catching up.** One batch at a time costs a few database round trips and a push per
  batch whatever its size; under load that cycle took 0.5–4 s, so fixed batches of
  ``distribution_batch`` capped a subscription at a few hundred events a second and a
  5-minute load day's busy hours left a third of its deliveries behind. A subscription
  that is behind gets bigger pushes: each doubles while the read before it found a full
  batch, up to ``distribution_batch_max``, and drops back once it is caught up (or a
  push failed).
* **Retries, then dead letters.** A failure schedules the same batch again after an
  exponential backoff with full jitter; after ``distribution_max_attempts`` attempts (or
  ``distribution_max_age`` seconds after the first failure) its events become dead letters
  and the feed moves on. The consumer retries (``status=retry``) or discards them.
* **No head-of-line blocking across consumers.** Each leased subscription is served by its
  own task with its own timeout; a hanging endpoint holds only its own task.
* **The grant at delivery time.** Every batch is checked against the grant cache (kept
  fresh by the change announcements) and cut to the granted items right before it is
  sent; :mod:`.gate` makes a revoke wait for pushes checked before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import aiohttp
import orjson
import yarl
from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from exchange.audit.writer import AuditUnavailable, AuditWriter
from exchange.authz.cache import GrantCache
from exchange.catalog.models import Change
from exchange.clock import Clock
from exchange.config import Settings
from exchange.db.base import utcnow
from exchange.db.engine import Database
from exchange.db.threads import run_joined
from exchange.distribution import audit, feed
from exchange.distribution.gate import RevocationGate
from exchange.distribution.metrics import DistributionMetrics
from exchange.distribution.models import ChangeEventRow, DeadLetter, Subscription
from exchange.distribution.schemas import Source
from exchange.errors import ExchangeError
from exchange.provider_auth import SIGNATURE_HEADER, ProviderSigner, derive_provider_secret

log = logging.getLogger(__name__)

__all__ = ["SUBSCRIPTION_HEADER", "Distributor", "backoff"]

SUBSCRIPTION_HEADER = "X-Exchange-Subscription"
#: seconds before a subscription whose grant blocks delivery is looked at again
BLOCKED_RECHECK = 5.0
#: bytes of an endpoint's answer read (and ignored) at most
MAX_ANSWER = 64 * 1024
#: Announcements the revocation gate waits on: access taken away (a grant revoked,
#: narrowed or suspended, a subscription suspended or deleted) and clock moves (which can
#: expire grants). A new grant, more items or a catalog registration does not wait.
GATE_TOPICS = ("narrowed", "clock")


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before attempt ``attempt + 1``: exponential, capped, with full jitter
    (half fixed, half random, so retries of many subscriptions do not arrive together)."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


@dataclass(slots=True)
class Step:
    """One batch about to be pushed to one subscription."""

    sub_id: int
    consumer: str
    provider: str | None
    resource_code: str | None
    endpoint: str
    items: frozenset[str]
    batch: feed.Batch
    grant_id: int | None
    #: dead-letter ids this batch retries (None: the feed's next batch)
    retrying: list[int] | None = None
    #: the cursor the batch was read after (a replay meanwhile moved it: leave it be)
    after: int = 0


@dataclass(slots=True)
class Outcome:
    ok: bool
    status: int
    error: str
    started: float
    ended: float
    request_id: str


class Distributor:
    """The push worker of one process (``ctx.distribution``)."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        settings: Settings,
        grants: GrantCache,
        audit_writer: AuditWriter,
        master_secret: str,
        metrics: DistributionMetrics,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.grants = grants
        self.audit = audit_writer
        self.metrics = metrics
        self._master = master_secret
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.gate = RevocationGate(timeout=min(settings.distribution_push_timeout, 3.0))
        self._signers: dict[str, ProviderSigner] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False
        self._rng = random.Random()
        #: subscription id → why its grant blocks delivery now (shown in the API)
        self.blocked: dict[int, str] = {}
        for topic in GATE_TOPICS:
            db.freshness.subscribe(topic, self.gate.changed)

    # --- life ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.gate.loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300),
            json_serialize=lambda v: orjson.dumps(v).decode(),
        )
        self._runner = asyncio.create_task(self._run(), name="distribution")

    async def stop(self) -> None:
        """Stop pushing, give back every lease (another process takes over at once)."""
        self._stopping = True
        tasks = [t for t in (self._runner, *self._tasks.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        try:
            await run_joined(self._release_all)
        except Exception:
            log.warning("could not release distribution leases", exc_info=True)
        for topic in GATE_TOPICS:
            self.db.freshness.unsubscribe(topic, self.gate.changed)

    def notify(self) -> None:
        """Something may be due (changes committed, a subscription resumed): look now.
        Safe from any thread."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    @property
    def active(self) -> int:
        return len(self._tasks)

    # --- the loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            free = self.settings.distribution_concurrency - len(self._tasks)
            claimed: list[int] = []
            if free > 0:
                try:
                    claimed = await run_joined(self._claim, free)
                except Exception:
                    log.warning("claiming subscriptions failed; trying again", exc_info=True)
            for sub_id in claimed:
                if sub_id not in self._tasks:
                    task = asyncio.create_task(self._serve(sub_id), name=f"push-{sub_id}")
                    self._tasks[sub_id] = task
                    task.add_done_callback(functools.partial(self._done, sub_id))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.distribution_poll)

    def _done(self, sub_id: int, task: asyncio.Task[None]) -> None:
        full = len(self._tasks) >= self.settings.distribution_concurrency
        if self._tasks.get(sub_id) is task:
            del self._tasks[sub_id]
        if full and not self._stopping:
            self.notify()  # a slot is free for a subscription that waits

    def _claim(self, limit: int) -> list[int]:
        """Lease up to ``limit`` push subscriptions that have something due."""
        now = utcnow()
        pending = or_(
            and_(
                Subscription.source == Source.topic.value,
                exists().where(
                    ChangeEventRow.resource_code == Subscription.resource_code,
                    ChangeEventRow.id > Subscription.cursor,
                ),
            ),
            and_(
                Subscription.source == Source.catalog.value,
                exists().where(Change.cursor > Subscription.cursor),
            ),
            exists().where(
                DeadLetter.subscription_id == Subscription.id, DeadLetter.status == "retry"
            ),
        )
        free = or_(Subscription.lease_until.is_(None), Subscription.lease_until < now)
        with self.db.session() as session:
            ids = list(
                session.scalars(
                    select(Subscription.id)
                    .where(
                        Subscription.status == "active",
                        Subscription.delivery == "push",
                        Subscription.next_attempt_at <= now,
                        free,
                        pending,
                    )
                    .order_by(Subscription.next_attempt_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            if not ids:
                return []
            lease = now + dt.timedelta(seconds=self.settings.distribution_lease)
            # The lease is set only where none is live: the UPDATE decides, not the SELECT
            # (SQLite has no row locks; two processes may select the same rows there).
            taken = session.execute(
                update(Subscription)
                .where(Subscription.id.in_(ids), free)
                .values(lease_owner=self.owner, lease_until=lease)
                .returning(Subscription.id)
            )
            return [int(i) for i in taken.scalars()]

    def _release_all(self) -> None:
        with self.db.session() as session:
            session.execute(
                update(Subscription)
                .where(Subscription.lease_owner == self.owner)
                .values(lease_owner=None, lease_until=None)
            )

    # --- one subscription ---------------------------------------------------------------

    async def _serve(self, sub_id: int) -> None:
        """Push batches to one leased subscription until it has nothing due."""
        size = self.settings.distribution_batch
        most = max(size, self.settings.distribution_batch_max)
        try:
            while not self._stopping:
                # Other processes' changes are applied *before* entering the gate: a
                # narrowing found here moves the gate, and waiting there on this very push
                # (entered, not yet prepared) would stall it until the gate's timeout.
                try:
                    await run_joined(self.db.freshness.check)
                except ExchangeError:
                    return
                generation = self.gate.enter()
                try:
                    step = await run_joined(self._prepare, sub_id, size)
                    if step is None:
                        return
                    outcome = await self._push(step)
                finally:
                    self.gate.leave(generation)
                await self._audit(step, outcome)
                await run_joined(self._settle, step, outcome)
                if not outcome.ok:
                    return
                # Behind (the read filled its batch): twice as much next time.
                size = min(size * 2, most) if step.batch.more else self.settings.distribution_batch
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("push to subscription %s failed", sub_id)
        finally:
            # Out of the task table *before* the lease is given back: a claim that follows
            # the release must start a new task, not find this finishing one and leave the
            # lease it took unserved until it lapses.
            if self._tasks.get(sub_id) is asyncio.current_task():
                del self._tasks[sub_id]
            if not self._stopping:
                try:
                    await run_joined(self._release, sub_id)
                except Exception:
                    log.warning("could not release subscription %s (its lease lapses)", sub_id)

    def _release(self, sub_id: int) -> None:
        with self.db.session() as session:
            session.execute(
                update(Subscription)
                .where(Subscription.id == sub_id, Subscription.lease_owner == self.owner)
                .values(lease_owner=None, lease_until=None)
            )

    def _prepare(self, sub_id: int, size: int | None = None) -> Step | None:
        """The next batch (at most ``size`` events, default ``distribution_batch``) of a
        subscription this process holds, checked against the grant now; None when there
        is nothing to push (or it may not be pushed)."""
        with self.db.session() as session:
            sub = session.get(Subscription, sub_id)
            now = utcnow()
            if (
                sub is None
                or sub.status != "active"
                or sub.lease_owner != self.owner
                or sub.next_attempt_at > now
                or sub.endpoint is None
            ):
                return None
            items: frozenset[str] = frozenset()
            grant_id: int | None = None
            if sub.source == Source.topic and sub.resource_code is not None:
                decision = self.grants.check(sub.consumer, sub.resource_code, None, records=0)
                if not decision.allowed:
                    # Look again later (a new grant also announces itself and wakes us).
                    self.blocked[sub_id] = decision.reason
                    sub.next_attempt_at = now + dt.timedelta(seconds=BLOCKED_RECHECK)
                    return None
                self.blocked.pop(sub_id, None)
                items = frozenset(sub.items) & decision.items
                grant_id = decision.grant_id
            step = self._next_batch(session, sub, items, size or self.settings.distribution_batch)
            if step is None:
                return None
            step.grant_id = grant_id
            sub.lease_until = now + dt.timedelta(seconds=self.settings.distribution_lease)
            return step

    def _next_batch(
        self, session: Session, sub: Subscription, items: frozenset[str], limit: int
    ) -> Step | None:
        retry = list(
            session.execute(
                select(DeadLetter.id, DeadLetter.event_id)
                .where(DeadLetter.subscription_id == sub.id, DeadLetter.status == "retry")
                .order_by(DeadLetter.event_id)
                .limit(limit)
            )
        )
        if retry:
            batch = feed.read_ids(session, sub, [r.event_id for r in retry], items)
            retrying: list[int] | None = [r.id for r in retry]
        else:
            retrying = None
            # Skip over stretches the filter leaves out, moving the cursor past them.
            for _ in range(20):
                batch = feed.read(session, sub, sub.cursor, limit, items)
                if batch.events or batch.last == sub.cursor:
                    break
                sub.cursor = batch.last
            if not batch.events:
                return None
        assert sub.endpoint is not None
        return Step(
            sub_id=sub.id,
            consumer=sub.consumer,
            provider=sub.provider,
            resource_code=sub.resource_code,
            endpoint=sub.endpoint,
            items=items,
            batch=batch,
            grant_id=None,
            retrying=retrying,
            after=sub.cursor,
        )

    def _signer(self, consumer: str) -> ProviderSigner:
        signer = self._signers.get(consumer)
        if signer is None:
            secret = derive_provider_secret(self._master, consumer)
            signer = self._signers[consumer] = ProviderSigner(secret, consumer)
        return signer

    async def _push(self, step: Step) -> Outcome:
        """POST the batch, signed for the consumer; 2xx is the acknowledgement."""
        assert self._http is not None
        body = orjson.dumps(
            {"subscription": step.sub_id, "consumer": step.consumer, "events": step.batch.events}
        )
        rid = uuid.uuid4().hex
        url = yarl.URL(step.endpoint)
        headers = {
            "Content-Type": "application/json",
            "X-Request-Id": rid,
            SUBSCRIPTION_HEADER: str(step.sub_id),
            SIGNATURE_HEADER: self._signer(step.consumer).sign(
                "POST", url.raw_path_qs.encode(), body, rid
            ),
        }
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=self.settings.distribution_push_timeout)
        try:
            async with self._http.post(url, data=body, headers=headers, timeout=timeout) as resp:
                await resp.content.read(MAX_ANSWER)
                status = resp.status
        except TimeoutError:
            return Outcome(False, 504, "consumer.timeout", started, time.perf_counter(), rid)
        except (aiohttp.ClientError, OSError) as exc:
            error = f"consumer.unreachable: {type(exc).__name__}"
            return Outcome(False, 502, error, started, time.perf_counter(), rid)
        ok = 200 <= status < 300
        error = "ok" if ok else f"consumer.http_{status}"
        return Outcome(ok, status, error, started, time.perf_counter(), rid)

    async def _audit(self, step: Step, outcome: Outcome) -> None:
        entry = audit.entry(
            kind=audit.PUSH,
            at=self.clock.now(),
            request_id=outcome.request_id,
            consumer=step.consumer,
            provider=step.provider,
            resource_code=step.resource_code,
            items=step.items,
            records=len(step.batch.events) if outcome.ok else 0,
            outcome=outcome.error[:48],
            status=outcome.status,
            started=outcome.started,
            ended=outcome.ended,
            subscription=step.sub_id,
        )
        try:
            await self.audit.record(entry)
        except AuditUnavailable:
            log.error(
                "push %s to subscription %s could not be audited", entry.request_id, step.sub_id
            )

    def _settle(self, step: Step, outcome: Outcome) -> None:
        """Record the outcome: move the cursor (acknowledged), or schedule the retry, or
        turn the batch into dead letters."""
        n = len(step.batch.events)
        now = utcnow()
        with self.db.session() as session:
            sub = session.get(Subscription, step.sub_id)
            if sub is None:
                return  # deleted meanwhile
            if outcome.ok:
                self._delivered(session, sub, step, now)
                return
            self.metrics.events.labels("push", "retried").inc(n)
            sub.retried += n
            sub.last_error = outcome.error
            if step.retrying is not None:
                # A retried dead letter failed again: it stays a dead letter.
                session.execute(
                    update(DeadLetter)
                    .where(DeadLetter.id.in_(step.retrying))
                    .values(status="dead", attempts=DeadLetter.attempts + 1, error=outcome.error)
                )
                return
            sub.attempts += 1
            first = sub.first_failed_at or now
            sub.first_failed_at = first
            too_old = (now - first).total_seconds() >= self.settings.distribution_max_age
            if sub.attempts >= self.settings.distribution_max_attempts or too_old:
                session.add_all(
                    DeadLetter(
                        subscription_id=sub.id,
                        event_id=int(e["id"]),
                        attempts=sub.attempts,
                        error=outcome.error,
                        dead_at=now,
                    )
                    for e in step.batch.events
                )
                self.metrics.events.labels("push", "dead_lettered").inc(n)
                sub.dead_lettered += n
                if sub.cursor == step.after:
                    sub.cursor = step.batch.last
                sub.attempts = 0
                sub.first_failed_at = None
                sub.next_attempt_at = now
            else:
                delay = backoff(
                    sub.attempts,
                    self.settings.distribution_backoff,
                    self.settings.distribution_backoff_max,
                    self._rng,
                )
                sub.next_attempt_at = now + dt.timedelta(seconds=delay)

    def _delivered(self, session: Session, sub: Subscription, step: Step, now: dt.datetime) -> None:
        n = len(step.batch.events)
        if step.retrying is not None:
            session.execute(delete(DeadLetter).where(DeadLetter.id.in_(step.retrying)))
        elif sub.cursor == step.after:
            sub.cursor = step.batch.last
        sub.delivered += n
        sub.attempts = 0
        sub.first_failed_at = None
        sub.last_error = None
        sub.last_delivered_at = now
        self.metrics.events.labels("push", "delivered").inc(n)
        if step.batch.changed:
            lags = [(now - c).total_seconds() for c in step.batch.changed]
            histogram = self.metrics.lag.labels("push")
            for lag in lags:
                histogram.observe(max(0.0, lag))
            sub.last_lag_ms = int(max(0.0, lags[-1]) * 1000)
        if step.grant_id is not None:
            self.grants.consume(step.grant_id, n)
