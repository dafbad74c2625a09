"""Distribution's running parts in one exchange process: the push worker, the long-poll
signal, the metrics, and the after-commit hook that wakes them.

Built by ``create_app`` in the part that serves the broker (the audit writer and
``/metrics`` live there) and started and stopped in the app's lifespan.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from exchange.audit.writer import AuditWriter
from exchange.authz.cache import GrantCache
from exchange.context import AppContext
from exchange.distribution.delivery import Distributor
from exchange.distribution.metrics import DistributionMetrics
from exchange.distribution.service import CHANGED
from exchange.distribution.signal import ChangeSignal

__all__ = ["PART", "Runtime", "install", "runtime_of"]

PART = "distribution"


class Runtime:
    def __init__(self, ctx: AppContext, *, audit: AuditWriter, registry: Any) -> None:
        self.ctx = ctx
        self.signal = ChangeSignal()
        self.metrics = DistributionMetrics(registry, ctx.db)
        grants: GrantCache = ctx.parts["authz"]
        self.distributor: Distributor | None = None
        if ctx.settings.distribution_workers:
            self.distributor = Distributor(
                db=ctx.db,
                clock=ctx.clock,
                settings=ctx.settings,
                grants=grants,
                audit_writer=audit,
                master_secret=str(ctx.parts["provider_secret"]),
                metrics=self.metrics,
            )
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

    async def start(self) -> None:
        self.signal.bind(asyncio.get_running_loop())
        if self.distributor is not None:
            await self.distributor.start()

    async def stop(self) -> None:
        if self.distributor is not None:
            await self.distributor.stop()
        event.remove(self.ctx.db.sessions, "after_commit", self._after_commit)
        self.ctx.db.freshness.unsubscribe("catalog", self.wake)


def install(ctx: AppContext, *, audit: AuditWriter, registry: Any) -> Runtime:
    """Build the app's distribution runtime (one per app, like the broker it sits beside)."""
    runtime = ctx.parts[PART] = Runtime(ctx, audit=audit, registry=registry)
    return runtime


def runtime_of(ctx: AppContext) -> Runtime | None:
    found: Runtime | None = ctx.parts.get(PART)
    return found
