"""The maths of a day on the exchange: hourly profile, compression, Zipf skew, action mix.

Pure functions and small frozen dataclasses, no Locust import, so unit tests (and the
``exchange load`` command) can check them without gevent.

A day is a 24-hour profile of relative weights, one per hour of Beijing time, read as points
at each hour's midpoint and joined linearly (cyclically, 23:30 → 00:30). Piecewise-linear
interpolation through equally spaced cyclic points integrates to ``spacing × Σ weights``,
so normalising by the sum makes the day integrate to exactly the daily volume whatever the
weights. The simulated day is compressed into ``day_seconds`` of wall time, so the wall
rate is ``records_per_day × shape(hour) × 24 / day_seconds``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

__all__ = [
    "DAILY_RECORDS_2020",
    "HOURLY_WEIGHTS",
    "MIX",
    "Action",
    "DayPlan",
    "Mix",
    "Pacer",
    "Reservation",
    "weighted_sample",
    "zipf_weights",
]

#: The platform's 2020 average: 37.484 million records exchanged per day.
DAILY_RECORDS_2020 = 37_484_000

#: Relative exchange volume per hour of the day (Beijing time), hour 0 = 00:00–01:00.
#: An assumption shaped like government office traffic: a night trough (02:00–05:00) at
#: about a sixteenth of the peak, a morning peak at 10:00–11:00 once counters and back
#: offices are busy, a lunch dip (12:00–14:00), an afternoon peak at 15:00–16:00 and an
#: evening tail of scheduled jobs and 24-hour services (public security, hospitals).
HOURLY_WEIGHTS: tuple[float, ...] = (
    1.0, 0.8, 0.6, 0.5, 0.5, 0.7,  # 00–05: night trough
    1.2, 2.2, 4.5, 7.5, 8.5, 7.8,  # 06–11: morning ramp and peak
    4.2, 4.8, 7.6, 8.4, 8.0, 5.5,  # 12–17: lunch dip, afternoon peak
    3.2, 2.4, 2.0, 1.7, 1.4, 1.2,  # 18–23: evening tail
)  # fmt: skip


def _interp(weights: Sequence[float], hour: float) -> float:
    """Weight at ``hour`` (0–24): linear between hour midpoints, cyclic over the day."""
    n = len(weights)
    x = (hour - 0.5) % n
    # A hair below a midpoint, ``% n`` can round up to ``n`` itself (-1e-17 % 24 == 24.0).
    i = int(x) % n
    frac = x - int(x)
    return weights[i] * (1.0 - frac) + weights[(i + 1) % n] * frac


def _interp_integral(weights: Sequence[float], hour: float) -> float:
    """∫₀^hour of :func:`_interp`, in weight·hours (exact: the pieces are linear)."""
    total = 0.0
    # Breakpoints are the midpoints 0.5, 1.5, …; integrate piece by piece up to ``hour``.
    points = [0.0, *(k + 0.5 for k in range(len(weights))), float(len(weights))]
    for a, b in itertools.pairwise(points):
        if a >= hour:
            break
        b = min(b, hour)
        total += (b - a) * (_interp(weights, a) + _interp(weights, b)) / 2.0
    return total


@dataclass(frozen=True)
class DayPlan:
    """A day of ``records_per_day`` records replayed in ``day_seconds`` of wall time.

    ``peak_users`` Locust users run at the busiest moment; fewer at other times, in
    proportion to the rate, but never fewer than ``min_users`` (the night still has
    traffic, and searches and applications need someone to make them).
    """

    records_per_day: int = DAILY_RECORDS_2020
    day_seconds: float = 600.0
    peak_users: int = 40
    min_users: int = 2
    weights: tuple[float, ...] = HOURLY_WEIGHTS

    def __post_init__(self) -> None:
        if self.records_per_day < 1:
            raise ValueError("records_per_day must be at least 1")
        if self.day_seconds <= 0:
            raise ValueError("day_seconds must be positive")
        if not 1 <= self.min_users <= self.peak_users:
            raise ValueError("need 1 <= min_users <= peak_users")
        if len(self.weights) != 24 or min(self.weights) <= 0:
            raise ValueError("weights: 24 positive values, one per hour")

    @property
    def _sum(self) -> float:
        return math.fsum(self.weights)

    def hour_at(self, t: float) -> float:
        """Simulated hour of the day (0–24) at ``t`` wall seconds into the run."""
        return min(max(t, 0.0), self.day_seconds) / self.day_seconds * 24.0

    def rate_at(self, t: float) -> float:
        """Target records per wall second at ``t`` seconds into the run."""
        per_hour = self.records_per_day * _interp(self.weights, self.hour_at(t)) / self._sum
        return per_hour * 24.0 / self.day_seconds

    def records_by(self, t: float) -> float:
        """Target records exchanged from the start to ``t`` (the integral of the rate)."""
        done = _interp_integral(self.weights, self.hour_at(t))
        return self.records_per_day * done / self._sum

    def hourly_records(self) -> list[float]:
        """Target records in each simulated hour (sums to ``records_per_day``)."""
        step = self.day_seconds / 24.0
        return [self.records_by((h + 1) * step) - self.records_by(h * step) for h in range(24)]

    @property
    def peak_rate(self) -> float:
        """The highest wall rate of the day, records/s."""
        # Linear pieces peak at a breakpoint: the largest weight.
        return self.records_per_day * max(self.weights) / self._sum * 24.0 / self.day_seconds

    @property
    def mean_rate(self) -> float:
        return self.records_per_day / self.day_seconds

    def users_at(self, t: float) -> int:
        """Locust users to run at ``t``: proportional to the rate, at least ``min_users``."""
        share = self.rate_at(t) / self.peak_rate
        return max(self.min_users, min(self.peak_users, math.ceil(self.peak_users * share)))


@dataclass
class Reservation:
    """Records one call expects to move, and (once it has ended) what arrived."""

    expected: float
    records: float = 0.0


@dataclass
class Pacer:
    """A records bucket that follows the day: the shared throttle of one Locust process.

    ``tokens`` are records owed: they accrue as the day's integral advances (times this
    process's ``share`` of the users) and each action spends what it moves. Users act while
    something is owed and wait while the process is ahead. A backlog (a slow exchange at a
    peak) is carried like queued bulk jobs and worked off when the rate falls, but never more
    than ``max_lag`` seconds of the current rate: older arrears are written off.

    Each call runs inside :meth:`reserve`: it books the records it expects before it
    starts, so concurrent users do not all start on the same arrears, and settles with what
    arrived when it ends. A call that never ends (Locust stops users on a ramp-down by
    killing their greenlets mid-call) gives its whole reservation back: the records did not
    arrive, so they are still owed. Before this, every user stopped mid-export kept its
    10,000 records booked as delivered, and a day ended 20,000–100,000 records short.

    Records count when they *arrive*, so calls start early: the schedule is read
    ``2 × lead`` ahead, ``lead`` being the typical duration of a call weighted by the
    records it moves (:meth:`observe`; in practice an export's). Without it the volume runs
    one call's worth of records behind the schedule all day, and calls still in flight when
    the day ends are cut off; with it, the last records arrive before the end.

    The day's last ``tail`` seconds are kept free of new calls: a call's duration varies
    around ``lead``, and a slow export started one lead before the end still landed after
    it (32,000 records, 0.09 % of a day, in one run). Everything left is owed from
    ``final`` seconds before the end (at most 1 % of the day, at least four leads before
    the tail): the evening's few users then work at full speed, and what they reserve
    arrives before the tail instead of being cut off by it (17,000 records short when the
    window was only four leads).
    """

    day: DayPlan
    max_lag: float = 60.0
    tokens: float = 0.0
    last: float = 0.0
    lead: float = 0.0
    tail: float = 1.0
    final: float = 3.0

    def observe(self, seconds: float, records: float) -> None:
        """Fold one call's duration into ``lead``: a moving average in which a call weighs
        by its records (a 10,000-record export 0.2, a single lookup almost nothing)."""
        weight = 0.2 * min(1.0, max(records, 0.0) / 10_000)
        self.lead = min(10.0, (1.0 - weight) * self.lead + weight * seconds)

    def refill(self, elapsed: float, share: float = 1.0) -> None:
        """Accrue what the day asks for up to ``elapsed`` plus twice the lead, and in the
        day's final window all that is left (see the class docstring)."""
        ahead = 2.0 * self.lead
        if self.day.day_seconds - elapsed <= self.final_window:
            ahead = self.day.day_seconds
        until = min(elapsed + ahead, self.day.day_seconds)
        if until <= self.last:
            return
        gained = self.day.records_by(until) - self.day.records_by(self.last)
        self.last = until
        cap = self.max_lag * self.day.rate_at(elapsed) * share
        self.tokens = min(self.tokens + gained * share, cap)

    @property
    def final_window(self) -> float:
        """Seconds before the end from which every record left is owed."""
        return max(self.tail + 4.0 * self.lead, min(self.final, 0.01 * self.day.day_seconds))

    def spend(self, records: float) -> None:
        self.tokens -= records

    @contextlib.contextmanager
    def reserve(self, expected: float) -> Iterator[Reservation]:
        """Book ``expected`` records for one call; settle with ``Reservation.records``.

        The call sets ``records`` to what arrived (0 on a failure). An exception out of
        the block (``GreenletExit`` included) counts as nothing arrived and the call's
        duration is not folded into ``lead``.
        """
        booking = Reservation(expected)
        self.tokens -= expected
        started = time.perf_counter()
        try:
            yield booking
        except BaseException:
            self.tokens += expected
            raise
        self.tokens += expected - booking.records
        self.observe(time.perf_counter() - started, expected)

    def wait(self, elapsed: float, share: float = 1.0) -> float:
        """Seconds to wait before the next action (0 while records are owed)."""
        left = self.day.day_seconds - elapsed
        if left <= self.tail + self.lead:
            # A call started now could end after the day: let the day end instead.
            return max(left, 0.0) + 1.0
        self.refill(elapsed, share)
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / max(self.day.rate_at(elapsed) * share, 1e-9)


def zipf_weights(n: int, s: float = 1.1) -> list[float]:
    """Zipf popularity of ranks 1..n: weight ∝ 1 / rank^s, normalised to sum to 1."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if s < 0:
        raise ValueError("s must be non-negative")
    raw = [1.0 / (k**s) for k in range(1, n + 1)]
    total = math.fsum(raw)
    return [w / total for w in raw]


def weighted_sample(
    items: Sequence[str], weights: Sequence[float], k: int, rng: random.Random
) -> list[str]:
    """``k`` distinct items drawn without replacement, each draw ∝ its weight."""
    pool = list(zip(items, weights, strict=True))
    out: list[str] = []
    while pool and len(out) < k:
        pick = rng.random() * math.fsum(w for _, w in pool)
        acc = 0.0
        for i, (item, w) in enumerate(pool):
            acc += w
            if pick < acc or i == len(pool) - 1:
                out.append(item)
                pool.pop(i)
                break
    return out


@dataclass(frozen=True)
class Action:
    """One kind of thing a department does, how often, and the records it moves."""

    name: str
    weight: float
    #: mean records per call when the call exchanges data (0 for catalog work)
    records: float


@dataclass(frozen=True)
class Mix:
    """The department action mix; weights are shares of actions (requests), not records.

    Defaults (an assumption, documented in loadtests/README.md): most calls are single
    interface lookups made at service counters, but most *records* move in bulk — table
    exports (库表交换) of 10,000-row pages and batch verifications of up to 1,000 keys
    (e.g. the monthly re-check of every allowance recipient). Catalog searches and new
    applications are a trickle.
    """

    single: float = 55.0
    batch: float = 30.0
    export: float = 10.0
    search: float = 4.5
    apply: float = 0.5
    batch_min: int = 100
    batch_max: int = 1000
    export_page: int = 10_000
    actions: tuple[Action, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_min <= self.batch_max <= 1000:
            raise ValueError("need 1 <= batch_min <= batch_max <= 1000 (the broker's limit)")
        if self.export_page < 1:
            raise ValueError("export_page must be positive")
        acts = (
            Action("single", self.single, 1.0),
            Action("batch", self.batch, (self.batch_min + self.batch_max) / 2.0),
            Action("export", self.export, float(self.export_page)),
            Action("search", self.search, 0.0),
            Action("apply", self.apply, 0.0),
        )
        if any(a.weight < 0 for a in acts) or not any(a.weight > 0 and a.records for a in acts):
            raise ValueError("weights must be non-negative and some action must move records")
        object.__setattr__(self, "actions", acts)

    @property
    def mean_records(self) -> float:
        """Mean records per action, over the whole mix."""
        total = math.fsum(a.weight for a in self.actions)
        return math.fsum(a.weight * a.records for a in self.actions) / total

    def record_shares(self) -> dict[str, float]:
        """Share of the records each action moves (sums to 1)."""
        moved = {a.name: a.weight * a.records for a in self.actions}
        total = math.fsum(moved.values())
        return {name: v / total for name, v in moved.items()}

    def request_shares(self) -> dict[str, float]:
        """Share of the requests each action makes (sums to 1)."""
        total = math.fsum(a.weight for a in self.actions)
        return {a.name: a.weight / total for a in self.actions}

    def choose(self, rng: random.Random, *, exportable: bool, lookups: bool) -> str:
        """An action name; exports only for table topics, lookups only when keys exist."""
        names, weights = [], []
        for a in self.actions:
            if a.name == "export" and not exportable:
                continue
            if a.name in ("single", "batch") and not lookups:
                continue
            names.append(a.name)
            weights.append(a.weight)
        return rng.choices(names, weights)[0]


MIX = Mix()
