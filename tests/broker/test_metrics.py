"""The broker's Prometheus metrics: plain tallies rendered in the exposition format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from exchange.broker.metrics import LATENCY_BUCKETS, BrokerMetrics


def _samples(metrics: BrokerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }


def test_calls_outcomes_and_records_are_counted() -> None:
    metrics = BrokerMetrics()
    for _ in range(3):
        metrics.observe("query", "ok", 0.002, "gaj")
    metrics.observe("query", "provider.timeout", 2.0, "swj")
    metrics.observe("export", "client.bad_key", 0.0001)
    metrics.delivered("gaj", 5)
    metrics.delivered("gaj", 2)
    samples = _samples(metrics)
    requests = "exchange_broker_requests_total"
    assert samples[(requests, (("kind", "query"), ("outcome", "ok")))] == 3
    assert samples[(requests, (("kind", "query"), ("outcome", "provider.timeout")))] == 1
    assert samples[(requests, (("kind", "export"), ("outcome", "client.bad_key")))] == 1
    assert samples[("exchange_broker_records_total", (("provider", "gaj"),))] == 7
    assert ("exchange_broker_requests_created", (("kind", "query"), ("outcome", "ok"))) in samples
    # The dashboard's tallies.
    assert metrics.outcomes == {"ok": 3, "provider.timeout": 1, "client.bad_key": 1}
    assert metrics.providers["swj"].errors == 1
    assert metrics.providers["gaj"].calls == 3


def test_latency_histogram_is_cumulative_with_upper_bounds() -> None:
    metrics = BrokerMetrics()
    # On a bound (le: counted in that bucket), between bounds, and past the last bound.
    for seconds in (0.001, 0.003, 0.003, 11.0):
        metrics.observe("query", "ok", seconds, "gaj")
    samples = _samples(metrics)

    def bucket(le: str) -> float:
        return samples[("exchange_broker_latency_seconds_bucket", (("kind", "query"), ("le", le)))]

    assert bucket("0.0005") == 0
    assert bucket("0.001") == 1
    assert bucket("0.0025") == 1
    assert bucket("0.005") == 3
    assert bucket("10.0") == 3
    assert bucket("+Inf") == 4
    assert samples[("exchange_broker_latency_seconds_count", (("kind", "query"),))] == 4
    total = samples[("exchange_broker_latency_seconds_sum", (("kind", "query"),))]
    assert abs(total - 11.007) < 1e-9
    labels = {
        dict(key[1])["le"] for key in samples if key[0] == "exchange_broker_latency_seconds_bucket"
    }
    assert len(labels) == len(LATENCY_BUCKETS) + 1
