"""Distribution's running parts in one exchange process: the push worker, the long-poll
signal, the metrics, the outbox's pruning passes, and the after-commit hook that wakes
them.

Built by ``create_app`` in the part that serves the broker (the audit writer and
``/metrics`` live there) and started and stopped in the app's lifespan.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import event
from sqlalchemy.orm import Session

from exchange.audit.writer import AuditWriter
from exchange.context import AppContext, Ctx
from exchange.db.threads import run_joined
from exchange.distribution import retention
from exchange.distribution.delivery import Distributor
from exchange.distribution.metrics import DistributionMetrics
from exchange.distribution.publishing import CHANGED
from exchange.distribution.signal import ChangeSignal
from exchange.tasks import cancel_and_wait

__all__ = ["Runtime", "TheRuntime", "get_runtime", "install"]

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, ctx: AppContext, *, audit: AuditWriter, registry: Any) -> None:
        self.ctx = ctx
        self.signal = ChangeSignal()
        self.metrics = DistributionMetrics(registry, ctx.db)
        grants = ctx.grants
        self.distributor: Distributor | None = None
        if ctx.settings.distribution_workers:
            self.distributor = Distributor(
                db=ctx.db,
                clock=ctx.clock,
                settings=ctx.settings,
                grants=grants,
                audit_writer=audit,
                master_secret=ctx.provider_secret,
                metrics=self.metrics,
            )
        self._pruner: asyncio.Task[None] | None = None
        #: where the next pruning pass starts (each process sweeps on its own)
        self._prune_after = 0
        event.listen(ctx.db.sessions, "after_commit", self._after_commit)
        # Catalog subscriptions: a registration, change or retirement is something to push.
        ctx.db.freshness.subscribe("catalog", self.wake)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(CHANGED, False):
            self.wake()

    def wake(self) -> None:
        """Changes committed (or a subscription became due): wake pushers and pollers."""
        self.signal.notify()
        if self.distributor is not None:
            self.distributor.notify()

    def blocked(self, sub_id: int) -> str | None:
        return None if self.distributor is None else self.distributor.blocked.get(sub_id)

    def prune_once(self) -> retention.Pass:
        """One pruning pass (in a worker thread): events past the retention that every
        subscription acknowledged, at most ``distribution_prune_scan`` ids looked at."""
        settings = self.ctx.settings
        before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=settings.distribution_retention)
        with self.ctx.db.session() as session:
            done = retention.prune(
                session,
                after=self._prune_after,
                scan=settings.distribution_prune_scan,
                before=before,
            )
        self._prune_after = done.next_after
        self.metrics.pruned.inc(done.pruned)
        return done

    async def _prune_loop(self) -> None:
        every = self.ctx.settings.distribution_prune_every
        while True:
            await asyncio.sleep(every)
            try:
                await run_joined(self.prune_once)
            except Exception:
                # Another process pruning the same range at once, a busy database: the
                # next pass tries again; nothing is lost by pruning late.
                log.warning(
                    "pruning the distribution outbox failed; next pass retries", exc_info=True
                )

    async def start(self) -> None:
        self.signal.bind(asyncio.get_running_loop())
        if self.distributor is not None:
            await self.distributor.start()
        if self.ctx.settings.distribution_retention > 0:
            self._pruner = asyncio.create_task(self._prune_loop(), name="distribution-prune")

    async def stop(self) -> None:
        await cancel_and_wait(self._pruner)
        if self.distributor is not None:
            await self.distributor.stop()
        event.remove(self.ctx.db.sessions, "after_commit", self._after_commit)
        self.ctx.db.freshness.unsubscribe("catalog", self.wake)


def install(ctx: AppContext, *, audit: AuditWriter, registry: Any) -> Runtime:
    """Build the app's distribution runtime (one per app, like the broker it sits beside;
    held in ``ctx.distribution``)."""
    return Runtime(ctx, audit=audit, registry=registry)


async def get_runtime(ctx: Ctx) -> Runtime | None:
    # async: it only reads memory, so FastAPI runs it on the loop, not the threadpool.
    return ctx.distribution


#: This process's distribution runtime (None in a part that does not serve the broker).
TheRuntime = Annotated[Runtime | None, Depends(get_runtime)]
