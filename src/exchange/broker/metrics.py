"""Prometheus metrics of one exchange process, on its own registry (no global state)."""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.responses import Response

from exchange.context import Ctx, Operator, present

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.core import Metric

    from exchange.audit.writer import AuditWriter
    from exchange.broker.batching import LookupBatcher
    from exchange.broker.upstream import Upstream

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: the buckets' ``le`` labels as prometheus_client writes them ("1.0", "+Inf")
_LE: tuple[str, ...] = tuple(
    floatToGoString(b)  # type: ignore[no-untyped-call]
    for b in (*LATENCY_BUCKETS, float("inf"))
)


class _RuntimeCollector(Collector):
    """Read-at-scrape values: audit writer progress and circuit breaker states."""

    def __init__(self, audit: AuditWriter, upstream: Upstream, lookups: LookupBatcher) -> None:
        self._audit = audit
        self._upstream = upstream
        self._lookups = lookups

    def collect(self) -> Iterator[Metric]:
        stats = self._audit.stats
        yield CounterMetricFamily(
            "exchange_audit_entries", "Audit entries committed", value=stats.entries
        )
        yield CounterMetricFamily(
            "exchange_audit_groups", "Audit group commits", value=stats.groups
        )
        yield CounterMetricFamily(
            "exchange_audit_commit_seconds",
            "Time spent committing audit groups",
            value=stats.commit_seconds,
        )
        yield GaugeMetricFamily(
            "exchange_audit_backlog",
            "Audit entries journaled (acknowledged) but not yet committed",
            value=self._audit.backlog,
        )
        breakers = GaugeMetricFamily(
            "exchange_upstream_circuit_open",
            "1 while the broker's circuit to a provider is open or half-open",
            labels=["provider"],
        )
        for provider, breaker in sorted(self._upstream.breakers.items()):
            breakers.add_metric([provider], 0.0 if breaker.state == "closed" else 1.0)
        yield breakers
        shared = self._lookups.stats
        yield CounterMetricFamily(
            "exchange_broker_shared_lookups",
            "Provider calls that carried the lookups of several broker calls",
            value=shared.shared,
        )
        yield CounterMetricFamily(
            "exchange_broker_coalesced_lookups",
            "Broker lookups answered from a shared provider call",
            value=shared.coalesced,
        )
        yield CounterMetricFamily(
            "exchange_broker_unsplittable_lookups",
            "Shared provider answers that could not be attributed (each call asked alone)",
            value=shared.unsplittable,
        )


@dataclass(slots=True)
class ProviderTally:
    """Calls to one provider since the process started, for the operations dashboard."""

    calls: int = 0
    errors: int = 0  # outcomes other than ok on the provider's side
    seconds: float = 0.0
    slowest: float = 0.0


@dataclass(slots=True)
class LatencyTally:
    """One kind's latency histogram: a count per bucket of :data:`LATENCY_BUCKETS` (and
    one past the last), and their sum."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0


class _CallsCollector(Collector):
    """The broker's own counters, rendered from :class:`BrokerMetrics`' plain tallies."""

    def __init__(self, metrics: BrokerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        # Copies first (one C-level pass each, no Python code runs in between, so the
        # event loop cannot change a dict while it is read).
        requests = list(m.requests.items())
        created = dict(m.created)
        records = list(m.records.items())
        latency = list(m.latency.items())
        family = CounterMetricFamily(
            "exchange_broker_requests",
            "Broker calls by kind and outcome ('ok' or an error code)",
            labels=["kind", "outcome"],
        )
        for (kind, outcome), n in sorted(requests):
            family.add_metric([kind, outcome], n, created=created.get((kind, outcome)))
        yield family
        family = CounterMetricFamily(
            "exchange_broker_records",
            "Records delivered to consumers, by provider",
            labels=["provider"],
        )
        for provider, n in sorted(records):
            family.add_metric([provider], n, created=created.get(provider))
        yield family
        histogram = HistogramMetricFamily(
            "exchange_broker_latency_seconds",
            "Broker call latency, audit commit included",
            labels=["kind"],
        )
        for kind, tally in sorted(latency):
            counts = list(tally.buckets)
            cumulative, running = [], 0
            for le, n in zip(_LE, counts, strict=True):
                running += n
                cumulative.append((le, running))
            histogram.add_metric([kind], cumulative, sum_value=tally.total)
        yield histogram


class BrokerMetrics:
    """Counters and histograms the broker updates on every call.

    Plain integers and lists, rendered in the Prometheus format only when scraped: a
    ``prometheus_client`` counter takes a lock per increment and a histogram scans its
    buckets in Python, which cost ~4 µs per broker call (two counters and a histogram,
    measured) against ~0.5 µs for these tallies. Only the event loop updates them.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        #: (kind, outcome) → calls
        self.requests: dict[tuple[str, str], int] = {}
        #: provider → records delivered
        self.records: dict[str, int] = {}
        #: kind → latency histogram
        self.latency: dict[str, LatencyTally] = {}
        #: when each label set above was first counted (the ``_created`` samples)
        self.created: dict[object, float] = {}
        self.registry.register(_CallsCollector(self))
        self.in_flight = Gauge(
            "exchange_broker_in_flight", "Broker calls being served", registry=self.registry
        )
        # Plain tallies read by the operations dashboard.
        self.outcomes: dict[str, int] = {}
        self.providers: dict[str, ProviderTally] = {}
        self.started = time.time()

    def watch(self, audit: AuditWriter, upstream: Upstream, lookups: LookupBatcher) -> None:
        self.registry.register(_RuntimeCollector(audit, upstream, lookups))

    def observe(self, kind: str, outcome: str, seconds: float, provider: str | None = None) -> None:
        key = (kind, outcome)
        requests = self.requests
        if key in requests:
            requests[key] += 1
        else:
            self.created[key] = time.time()
            requests[key] = 1
        latency = self.latency.get(kind)
        if latency is None:
            latency = self.latency[kind] = LatencyTally()
        # Prometheus buckets are upper bounds (le): bisect_left puts a value equal to a
        # bound in that bound's bucket.
        latency.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency.total += seconds
        outcomes = self.outcomes
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if provider is not None:
            tally = self.providers.get(provider)
            if tally is None:
                tally = self.providers[provider] = ProviderTally()
            tally.calls += 1
            tally.seconds += seconds
            if seconds > tally.slowest:
                tally.slowest = seconds
            if outcome.startswith("provider."):
                tally.errors += 1

    def delivered(self, provider: str, records: int) -> None:
        """Count records delivered to consumers from ``provider``."""
        counts = self.records
        if provider in counts:
            counts[provider] += records
        else:
            self.created[provider] = time.time()
            counts[provider] = records

    def render(self) -> bytes:
        return generate_latest(self.registry)


router = APIRouter(tags=["platform"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
def metrics(ctx: Ctx, _op: Operator) -> Response:
    """Prometheus metrics in the text exposition format (operator key: a scraper sends it
    as a bearer token): broker calls by outcome, latency, records delivered by provider,
    audit group commits and circuit breaker states. Volumes by department are the
    operator's to see, so the endpoint is not open even on the platform network."""
    broker = present(ctx.broker, "the broker does not run in this part")
    return Response(broker.metrics.render(), media_type=CONTENT_TYPE_LATEST)
