"""Push delivery: one worker per exchange process, sharing subscriptions with the others.

How it keeps its promises:

* **At least once.** A subscription's cursor moves only after its endpoint acknowledged
  (2xx) the batch; a process killed mid-push leaves the cursor where it was, and whoever
  holds the subscription next sends the batch again (same event ids: the consumer's
  idempotency keys).
* **Sharing without double work.** A process *leases* a subscription (``lease_owner``,
  ``lease_until``) before pushing to it (:mod:`.leases`); a lease is renewed with every
  batch and lapses when its holder dies, so another process takes over.
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
  and the feed moves on (:mod:`.settling`). The consumer retries (``status=retry``) or
  discards them.
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
import socket
import threading
import uuid

from exchange.audit.writer import AuditUnavailable, AuditWriter
from exchange.authz.cache import GrantCache
from exchange.clock import Clock
from exchange.config import Settings
from exchange.db.base import utcnow
from exchange.db.engine import Database
from exchange.db.threads import run_joined
from exchange.distribution import audit, leases
from exchange.distribution.batches import Step, next_batch
from exchange.distribution.gate import RevocationGate
from exchange.distribution.metrics import DistributionMetrics
from exchange.distribution.models import Subscription
from exchange.distribution.pushing import SUBSCRIPTION_HEADER, Outcome, Pusher
from exchange.distribution.schemas import Source
from exchange.distribution.settling import Settler, backoff
from exchange.errors import ExchangeError

log = logging.getLogger(__name__)

__all__ = ["SUBSCRIPTION_HEADER", "Distributor", "backoff"]

#: seconds before a subscription whose grant blocks delivery is looked at again
BLOCKED_RECHECK = 5.0
#: Announcements the revocation gate waits on: access taken away (a grant revoked,
#: narrowed or suspended, a subscription suspended or deleted) and clock moves (which can
#: expire grants). A new grant, more items or a catalog registration does not wait.
GATE_TOPICS = ("narrowed", "clock")


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
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.gate = RevocationGate(timeout=min(settings.distribution_push_timeout, 3.0))
        self.pusher = Pusher(master_secret, timeout=settings.distribution_push_timeout)
        self.settler = Settler(db=db, settings=settings, grants=grants, metrics=metrics)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        #: subscription id → why its grant blocks delivery now (shown in the API)
        self.blocked: dict[int, str] = {}
        for topic in GATE_TOPICS:
            db.freshness.subscribe(topic, self.gate.changed, waits=True)

    # --- life ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.gate.loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self.pusher.open()
        self._runner = asyncio.create_task(self._run(), name="distribution")

    async def stop(self) -> None:
        """Stop pushing, give back every lease (another process takes over at once)."""
        self._stopping = True
        tasks = [t for t in (self._runner, *self._tasks.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.pusher.close()
        try:
            await run_joined(leases.release_all, self.db, self.owner)
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
                    claimed = await run_joined(
                        leases.claim, self.db, self.owner, free, self.settings.distribution_lease
                    )
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
                    outcome = await self.pusher.post(step)
                finally:
                    self.gate.leave(generation)
                await self._audit(step, outcome)
                await run_joined(self.settler.settle, step, outcome)
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
                    await run_joined(leases.release, self.db, self.owner, sub_id)
                except Exception:
                    log.warning("could not release subscription %s (its lease lapses)", sub_id)

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
            step = next_batch(session, sub, items, size or self.settings.distribution_batch)
            if step is None:
                return None
            step.grant_id = grant_id
            sub.lease_until = now + dt.timedelta(seconds=self.settings.distribution_lease)
            return step

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
