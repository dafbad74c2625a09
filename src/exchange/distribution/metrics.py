"""Distribution in ``/metrics``: what this process delivered (counters, lag histogram) and,
read at scrape, every push/pull subscription's backlog and totals (shared by all
processes, so any process's ``/metrics`` shows them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from exchange.catalog.models import Change
from exchange.db.engine import Database
from exchange.distribution.models import ChangeEventRow, Subscription

if TYPE_CHECKING:
    from prometheus_client.core import Metric

LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
#: subscriptions listed one by one at most (beyond, only the totals)
MAX_LISTED = 2_000


class DistributionMetrics:
    """This process's delivery counters, on the broker's registry."""

    def __init__(self, registry: CollectorRegistry, db: Database) -> None:
        self.events = Counter(
            "exchange_distribution_events",
            "Events handed to subscribers by this process, by delivery and outcome "
            "(delivered, retried, dead_lettered)",
            ["delivery", "outcome"],
            registry=registry,
        )
        self.lag = Histogram(
            "exchange_distribution_lag_seconds",
            "Source change to delivery (push: endpoint acknowledged; pull: page served)",
            ["delivery"],
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.pruned = Counter(
            "exchange_distribution_pruned_events",
            "Outbox events this process pruned (acknowledged by every subscription, past "
            "the retention)",
            registry=registry,
        )
        registry.register(_Subscriptions(db))


class _Subscriptions(Collector):
    def __init__(self, db: Database) -> None:
        self._db = db

    def collect(self) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "exchange_subscription_backlog",
            "Events after the subscription's cursor (before its filter)",
            labels=["subscription", "consumer", "topic", "delivery"],
        )
        totals = {
            name: CounterMetricFamily(
                f"exchange_subscription_{name}",
                f"Events {name.replace('_', '-')} to the subscription (all processes)",
                labels=["subscription", "consumer", "topic", "delivery"],
            )
            for name in ("delivered", "retried", "dead_lettered")
        }
        topic_backlog = (
            select(func.count())
            .where(ChangeEventRow.resource_code == Subscription.resource_code)
            .where(ChangeEventRow.id > Subscription.cursor)
            .correlate(Subscription)
            .scalar_subquery()
        )
        catalog_backlog = (
            select(func.count())
            .where(Change.cursor > Subscription.cursor)
            .correlate(Subscription)
            .scalar_subquery()
        )
        with self._db.sessions() as session:
            rows = session.execute(
                select(
                    Subscription.id,
                    Subscription.consumer,
                    Subscription.source,
                    Subscription.resource_code,
                    Subscription.delivery,
                    Subscription.delivered,
                    Subscription.retried,
                    Subscription.dead_lettered,
                    # Only the branch a row needs is counted.
                    case(
                        (Subscription.source == "catalog", catalog_backlog),
                        else_=topic_backlog,
                    ),
                )
                .order_by(Subscription.id)
                .limit(MAX_LISTED)
            ).all()
        for row in rows:
            labels = [str(row.id), row.consumer, row.resource_code or "catalog", row.delivery]
            waiting = row[8]
            backlog.add_metric(labels, float(waiting or 0))
            totals["delivered"].add_metric(labels, float(row.delivered))
            totals["retried"].add_metric(labels, float(row.retried))
            totals["dead_lettered"].add_metric(labels, float(row.dead_lettered))
        yield backlog
        yield from totals.values()
