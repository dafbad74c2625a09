"""What a push's outcome does to its subscription: an acknowledged batch moves the cursor
(or clears the dead letters it retried); a failure schedules the same batch again after an
exponential backoff with full jitter, and after ``distribution_max_attempts`` attempts (or
``distribution_max_age`` seconds after the first failure) turns its events into dead
letters so that the feed moves on."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from exchange.authz.cache import GrantCache
from exchange.config import Settings
from exchange.db.base import utcnow
from exchange.db.engine import Database
from exchange.distribution.batches import Step
from exchange.distribution.metrics import DistributionMetrics
from exchange.distribution.models import DeadLetter, Subscription
from exchange.distribution.pushing import Outcome

__all__ = ["Settler", "backoff"]


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before attempt ``attempt + 1``: exponential, capped, with full jitter
    (half fixed, half random, so retries of many subscriptions do not arrive together)."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


class Settler:
    """Records push outcomes in the database and the metrics (one per process)."""

    def __init__(
        self, *, db: Database, settings: Settings, grants: GrantCache, metrics: DistributionMetrics
    ) -> None:
        self.db = db
        self.settings = settings
        self.grants = grants
        self.metrics = metrics
        self._rng = random.Random()

    def settle(self, step: Step, outcome: Outcome) -> None:
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
