"""Prometheus metrics of one exchange process, on its own registry (no global state)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.responses import Response

from exchange.context import Operator

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.core import Metric

    from exchange.audit.writer import AuditWriter
    from exchange.broker.upstream import LookupBatcher, Upstream

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


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


class BrokerMetrics:
    """Counters and histograms the broker updates on every call."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "exchange_broker_requests",
            "Broker calls by kind and outcome ('ok' or an error code)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.records = Counter(
            "exchange_broker_records",
            "Records delivered to consumers, by provider",
            ["provider"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "exchange_broker_latency_seconds",
            "Broker call latency, audit commit included",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._records: dict[str, Counter] = {}
        self.in_flight = Gauge(
            "exchange_broker_in_flight", "Broker calls being served", registry=self.registry
        )
        # Plain tallies read by the operations dashboard (prometheus counters are read by
        # collecting the whole family, and have no per-provider latency).
        self.outcomes: dict[str, int] = {}
        self.providers: dict[str, ProviderTally] = {}
        self.started = time.time()

    def watch(self, audit: AuditWriter, upstream: Upstream, lookups: LookupBatcher) -> None:
        self.registry.register(_RuntimeCollector(audit, upstream, lookups))

    def observe(self, kind: str, outcome: str, seconds: float, provider: str | None = None) -> None:
        # Labelled children are looked up once: labels() costs a lock and a tuple per call.
        pair = self._children.get((kind, outcome))
        if pair is None:
            pair = self._children[(kind, outcome)] = (
                self.requests.labels(kind, outcome),
                self.latency.labels(kind),
            )
        pair[0].inc()
        pair[1].observe(seconds)
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if provider is not None:
            tally = self.providers.get(provider)
            if tally is None:
                tally = self.providers[provider] = ProviderTally()
            tally.calls += 1
            tally.seconds += seconds
            tally.slowest = max(tally.slowest, seconds)
            if outcome.startswith("provider."):
                tally.errors += 1

    def delivered(self, provider: str, records: int) -> None:
        """Count records delivered to consumers from ``provider``."""
        child = self._records.get(provider)
        if child is None:
            child = self._records[provider] = self.records.labels(provider)
        child.inc(records)

    def render(self) -> bytes:
        return generate_latest(self.registry)


router = APIRouter(tags=["platform"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
def metrics(request: Request, _op: Operator) -> Response:
    """Prometheus metrics in the text exposition format (operator key: a scraper sends it
    as a bearer token): broker calls by outcome, latency, records delivered by provider,
    audit group commits and circuit breaker states. Volumes by department are the
    operator's to see, so the endpoint is not open even on the platform network."""
    found: BrokerMetrics = request.app.state.ctx.parts["metrics"]
    return Response(found.render(), media_type=CONTENT_TYPE_LATEST)
