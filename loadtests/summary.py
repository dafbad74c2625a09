"""The end-of-run summary and its thresholds (plain Python, unit-tested).

A run ends with: the volume achieved against the target (for the whole day and for the
part of it actually run), error rates by code, p50/p95/p99 latency, and a verdict. A
headless run exits non-zero when a threshold is missed, so CI can gate on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["RunFigures", "Thresholds", "evaluate", "render_text", "to_dict"]


@dataclass(frozen=True)
class Thresholds:
    """What a run must achieve; ``None`` switches a check off."""

    #: failed requests ÷ all requests, e.g. 0.001 for 0.1 %
    max_error_rate: float | None = 0.001
    #: 99th-percentile response time over all requests, milliseconds
    max_p99_ms: float | None = 10_000.0
    #: records delivered ÷ their target (:attr:`RunFigures.delivered_ratio`): a run that
    #: falls short of its volume by more than 0.1 % has failed, whatever else it did
    min_volume_ratio: float | None = 0.999


@dataclass(frozen=True)
class RunFigures:
    """What one run measured."""

    records: int
    target_day: int
    target_run: float
    elapsed_s: float
    day_seconds: float
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    #: failures by "<status> <error code>" (or the transport error's name)
    errors: dict[str, int] = field(default_factory=dict)
    departments: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)
    peak_records_per_s: float = 0.0
    #: records that arrived within the day's wall time (the run may end a tick later)
    records_in_day: int | None = None
    #: the subscription share: events the source published, events the subscribers
    #: received (each published event goes to every subscriber), and the lag from the
    #: source's change to receipt
    published: int = 0
    delivered: int = 0
    #: of ``delivered``, those that arrived after the day's end
    delivered_late: int = 0
    subscribers: int = 0
    lag_p50_ms: float = 0.0
    lag_p95_ms: float = 0.0
    lag_p99_ms: float = 0.0
    #: subscriber → its events at each stage at the end (``SubscriptionDay.stages_of``)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def owed_deliveries(self) -> int:
        """Every published event to every subscriber."""
        return self.published * self.subscribers

    @property
    def deliveries_ratio(self) -> float:
        """Deliveries that reached the subscribers ÷ those owed (1.0 when none were)."""
        owed = self.owed_deliveries
        return self.delivered / owed if owed else 1.0

    @property
    def delivered_per_s(self) -> float:
        return self.delivered / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def volume_ratio(self) -> float:
        """Records achieved ÷ the target for the time run."""
        return self.records / self.target_run if self.target_run else 0.0

    @property
    def whole_day(self) -> bool:
        """The run lasted the whole day, so it is judged by the records within the day."""
        return self.records_in_day is not None and 0 < self.day_seconds <= self.elapsed_s

    @property
    def delivered_ratio(self) -> float:
        """What the volume threshold judges: the records within the day ÷ the day's target
        for a run that lasted the day (records after its end do not count), else the
        records ÷ the target for the time run."""
        if self.whole_day and self.records_in_day is not None:
            return self.records_in_day / self.target_day if self.target_day else 0.0
        return self.volume_ratio

    @property
    def records_per_s(self) -> float:
        return self.records / self.elapsed_s if self.elapsed_s else 0.0


def evaluate(figures: RunFigures, thresholds: Thresholds) -> list[str]:
    """The thresholds missed, each as a sentence; empty when the run passed."""
    missed: list[str] = []
    t = thresholds
    if figures.requests == 0:
        missed.append("no requests were made")
    if t.max_error_rate is not None and figures.error_rate > t.max_error_rate:
        missed.append(
            f"error rate {figures.error_rate:.3%} is above the limit {t.max_error_rate:.3%}"
        )
    if t.max_p99_ms is not None and figures.p99_ms > t.max_p99_ms:
        missed.append(f"p99 {figures.p99_ms:,.0f} ms is above the limit {t.max_p99_ms:,.0f} ms")
    if t.min_volume_ratio is not None and figures.delivered_ratio < t.min_volume_ratio:
        within = "within the day" if figures.whole_day else "for the time run"
        missed.append(
            f"volume {figures.delivered_ratio:.2%} of the target {within} is below "
            f"the required {t.min_volume_ratio:.1%}"
        )
    # Judged on its own too: a short subscription part can hide in the volume when the
    # users' part runs over, and a delivery that never arrives is lost, not late.
    if t.min_volume_ratio is not None and figures.deliveries_ratio < t.min_volume_ratio:
        missed.append(
            f"subscriptions: {figures.delivered:,} of {figures.owed_deliveries:,} deliveries "
            f"({figures.deliveries_ratio:.2%}) reached the subscribers, below the required "
            f"{t.min_volume_ratio:.1%}"
        )
    return missed


def to_dict(figures: RunFigures, thresholds: Thresholds, missed: list[str]) -> dict[str, Any]:
    """Everything, JSON-ready (what ``exchange load`` reads back)."""
    return {
        **asdict(figures),
        "error_rate": figures.error_rate,
        "volume_ratio": figures.volume_ratio,
        "delivered_ratio": figures.delivered_ratio,
        "records_per_s": figures.records_per_s,
        "delivered_per_s": figures.delivered_per_s,
        "owed_deliveries": figures.owed_deliveries,
        "deliveries_ratio": figures.deliveries_ratio,
        "thresholds": asdict(thresholds),
        "missed": missed,
        "passed": not missed,
    }


def _top(counts: dict[str, int], n: int) -> str:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{k} {v:,}" for k, v in ranked) or "-"


def render_text(figures: RunFigures, missed: list[str]) -> str:
    """A plain-text summary for the console (no colour: it also goes to logs)."""
    f = figures
    day_done = min(f.elapsed_s / f.day_seconds, 1.0) if f.day_seconds else 0.0
    lines = [
        "=== exchange day: summary ===",
        f"records exchanged   {f.records:,} in {f.elapsed_s:,.1f} s "
        f"({f.records_per_s:,.0f} records/s, peak {f.peak_records_per_s:,.0f}/s)",
        *(
            [f"within the day      {f.records_in_day:,} in its {f.day_seconds:,.0f} s"]
            if f.records_in_day is not None and f.elapsed_s >= f.day_seconds
            else []
        ),
        f"target              {f.target_run:,.0f} for the {day_done:.1%} of the day run "
        f"(day: {f.target_day:,}); achieved {f.volume_ratio:.1%}",
        f"requests            {f.requests:,}, failed {f.failures:,} ({f.error_rate:.3%})",
        f"latency ms          p50 {f.p50_ms:,.0f}  p95 {f.p95_ms:,.0f}  p99 {f.p99_ms:,.0f}",
        *(
            [
                f"by subscription     {f.published:,} events published to {f.subscribers} "
                f"subscribers, {f.delivered:,} delivered ({f.delivered_per_s:,.0f} events/s, "
                f"{f.delivered_late:,} after the day's end); "
                f"lag ms p50 {f.lag_p50_ms:,.0f}  p95 {f.lag_p95_ms:,.0f}  "
                f"p99 {f.lag_p99_ms:,.0f}"
            ]
            if f.published or f.delivered
            else []
        ),
        *(
            [
                "subscribers         "
                + "; ".join(
                    f"{who} {st.get('received', 0):,} received, "
                    f"{st.get('acknowledged', -1):,} acknowledged, "
                    f"backlog {st.get('backlog', -1):,}, "
                    f"dead-lettered {st.get('dead_lettered', -1):,}"
                    + (f", blocked: {st['blocked']}" if st.get("blocked") else "")
                    for who, st in sorted(f.stages.items())
                )
            ]
            if f.stages
            else []
        ),
        f"records by action   {_top(f.actions, 8)}",
        f"records by group    {_top(f.groups, 8)}",
        f"top departments     {_top(f.departments, 8)}",
    ]
    if f.errors:
        lines.append("errors by code      " + _top(f.errors, 12))
    if missed:
        lines.append("FAILED: " + "; ".join(missed))
    else:
        lines.append("PASSED: every threshold met")
    return "\n".join(lines)
