"""The Locust glue of a day: command-line options, per-process state and event hooks.

One :class:`Day` per Locust process (local, master or worker), kept on the Environment.
It holds the day plan (profile × volume × wall time), the grants plan, the units' keys,
pools of keys that exist in the synthetic city, and the records :class:`Ledger`.

Who does what:

- local runner and master: create the grants through the API at ``init`` (before the day's
  clock starts), write the records CSVs, the chart and the summary at ``quitting``, and
  set the exit code from the thresholds;
- workers (and the local runner): discover the plan read-only when the test starts, run
  the users, and ship their records to the master with each report.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loadtests import province as province_mod
from loadtests import summary as summary_mod
from loadtests.profile import DAILY_RECORDS_2020, DayPlan, Mix, Pacer
from loadtests.records import Ledger, attach
from loadtests.setup import Plan, Topic, discover, ensure_grants, make_plan
from loadtests.subscriptions import SubscriptionDay, subscribed_topics

__all__ = [
    "STOP_TIMEOUT",
    "Day",
    "add_options",
    "day_of",
    "defaults_once",
    "graceful_stops",
    "install",
]

log = logging.getLogger("exchange.load")

#: Defaults of the synthetic city (exchange.config.Settings): keys must exist in it.
CITY_SEED, POPULATION, ENTERPRISES = 2020, 100_000, 20_000
KEY_POOL = 20_000
#: Seconds a user stopped by a ramp-down may take to finish its call (Locust's
#: ``--stop-timeout``, when the command line leaves it at 0).
STOP_TIMEOUT = 30.0
#: Seconds without a heartbeat before a master declares a worker missing (Locust: 3). A
#: worker's preparation (the catalog's pages parsed, the key pools derived) is CPU work
#: that holds its only thread; on a busy 2-core machine it took longer than 3 s and the
#: master stopped a distributed run that had made no request.
HEARTBEAT_LIVENESS = 15


def add_options(parser: Any) -> None:
    """Options of the day (Locust's ``init_command_line_parser`` event)."""
    # Locust's own add_argument (not an argument group): it knows the web-UI flags.
    group = parser
    group.add_argument(
        "--operator-key",
        env_var="EXCHANGE_OPERATOR_KEY",
        default="",
        is_secret=True,
        help="The exchange's operator key (grants setup; seeded units' keys derive from it).",
    )
    group.add_argument("--day-minutes", type=float, default=10.0, help="Wall minutes of the day.")
    group.add_argument(
        "--records-per-day", type=int, default=DAILY_RECORDS_2020, help="The day's volume."
    )
    group.add_argument("--min-users", type=int, default=2, help="Users in the night trough.")
    group.add_argument(
        "--day-users",
        type=int,
        default=0,
        help="Peak users (default: -u/--users, else 40); the master forwards it to workers.",
        include_in_web_ui=False,
    )
    group.add_argument(
        "--export-window",
        type=int,
        default=20_000,
        help="Source rows exports page over (the day's incremental window).",
    )
    group.add_argument("--export-page", type=int, default=10_000, help="Rows per export call.")
    group.add_argument(
        "--subscription-share",
        type=float,
        default=0.02,
        help="Share of the day's records delivered by subscription (a source publishes, "
        "subscribers on loopback receive); 0 switches subscriptions off.",
    )
    group.add_argument(
        "--day-workers",
        type=int,
        default=0,
        help="Locust worker processes sharing the day (set by the master, read by workers: "
        "each owes an equal part of the records).",
        include_in_web_ui=False,
    )
    province_mod.add_options(group)
    group.add_argument(
        "--max-lag",
        type=float,
        default=60.0,
        help="Backlog carried after a slow patch, in seconds of the current rate.",
    )
    group.add_argument("--plan-seed", type=int, default=2020, help="Seed of grants and draws.")
    group.add_argument("--city-seed", type=int, default=CITY_SEED, help="EXCHANGE_SEED.")
    group.add_argument("--population", type=int, default=POPULATION, help="EXCHANGE_POPULATION.")
    group.add_argument("--enterprises", type=int, default=ENTERPRISES, help="EXCHANGE_ENTERPRISES.")
    group.add_argument("--skip-setup", action="store_true", help="Do not create grants.")
    group.add_argument("--max-error-rate", type=float, default=0.001, help="Threshold, 0.001=0.1%%")
    group.add_argument("--max-p99-ms", type=float, default=10_000.0, help="Threshold, ms.")
    group.add_argument(
        "--min-volume-ratio",
        type=float,
        default=0.999,
        help="Threshold: records delivered ÷ target (within the day for a whole day, else for "
        "the time run); 0 switches it off.",
    )
    group.add_argument(
        "--records-out",
        default="",
        help="Prefix of the records CSVs, summary JSON and chart (default: the --csv prefix, "
        "else ./loadtest).",
        include_in_web_ui=False,
    )
    group.add_argument(
        "--progress-file",
        default="",
        help="Write progress JSON here every second (used by `exchange load`).",
        include_in_web_ui=False,
    )


def _demo_key(operator_key: str, code: str) -> str:
    # The exchange's derivation of a seeded unit's starting key (exchange.security.demo_key);
    # imported from there so the two can never drift.
    from exchange.security import demo_key

    return demo_key(operator_key, code)


@dataclass
class Day:
    """Everything one Locust process knows about the day it runs."""

    options: Any
    day: DayPlan
    mix: Mix
    ledger: Ledger = field(default_factory=Ledger)
    plan: Plan | None = None
    keys: dict[str, str] = field(default_factory=dict)
    id_numbers: list[str] = field(default_factory=list)
    credit_codes: list[str] = field(default_factory=list)
    export_totals: dict[str, int] = field(default_factory=dict)
    pacer: Pacer | None = None
    #: the subscription share of the day (local runner and master only)
    subs: SubscriptionDay | None = None
    #: the provincial consumers' share of the users' records (with --province-host)
    province: province_mod.ProvinceDay | None = None
    province_keys: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    started_mono: float = 0.0
    ended: float = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started_mono if self.started_mono else 0.0

    def key_of(self, code: str) -> str:
        if code not in self.keys:
            self.keys[code] = _demo_key(self.options.operator_key, code)
        return self.keys[code]

    def province_key_of(self, code: str) -> str:
        """A provincial unit's key (derived from the province's operator key)."""
        if code not in self.province_keys:
            self.province_keys[code] = _demo_key(self.options.province_operator_key, code)
        return self.province_keys[code]

    def operator_client(self, host: str) -> httpx.Client:
        return httpx.Client(
            base_url=host,
            headers={"Authorization": f"Bearer {self.options.operator_key}"},
            timeout=60.0,
        )

    def prepare(self, host: str, *, create: bool) -> None:
        """Discover the exchange, plan the grants and (``create``) make them exist."""
        if self.plan is not None:
            return
        o = self.options
        if not o.operator_key:
            raise SystemExit(
                "the exchange's operator key is needed: --operator-key or EXCHANGE_OPERATOR_KEY"
            )
        with self.operator_client(host) as client:
            units, topics = discover(client)
            plan = make_plan(units, topics, seed=o.plan_seed)
            if not plan.popularity:
                raise SystemExit(f"{host}: no exchangeable topic (no provider runs a mock API)")
            if create:
                t0 = time.monotonic()
                report = ensure_grants(client, plan, self.key_of)
                log.info(
                    "grants: %d applied (%d approved by providers), %d already held, %.1f s",
                    report.applied,
                    report.approved,
                    report.already,
                    time.monotonic() - t0,
                )
                share = _subscription_share(o)
                if share > 0 and self.subs is None:
                    subs = SubscriptionDay(share=share, plan=_subscription_plan(o))
                    subs.setup(client, set(units), self.key_of, self._book_delivery)
                    self.subs = subs
            if province_mod.share_of(o) > 0 and self.province is None:
                t0 = time.monotonic()
                self.province = province_mod.prepare(
                    o, client, plan, self.key_of, self.province_key_of, create=create
                )
                log.info(
                    "province: %d departments on %d mounted topics, %.0f %% of the users' "
                    "records, %.1f s",
                    len(self.province.plan.departments),
                    len(self.province.plan.topics),
                    self.province.share * 100,
                    time.monotonic() - t0,
                )
        import gevent

        # Drawing the key pools is seconds of CPU on a busy machine; in gevent's thread pool
        # the hub still runs between GIL switches, so a worker keeps sending its heartbeats
        # (blocked for 3 s, the master counts it missing and, the last one gone, stops).
        self.id_numbers, self.credit_codes = gevent.get_hub().threadpool.apply(_key_pools, (o,))
        self.plan = plan

    def application_candidates(self, dept: str) -> list[Topic]:
        """Topics ``dept`` may apply for in the day without touching the run's own grants:
        not its own, shareable, neither held for the users' lookups and exports nor, when
        the day has a subscription part, subscribed to (an application puts its terms,
        delivery ``interface`` and a daily quota, into the pair's one grant)."""
        plan = self.plan
        if plan is None:
            return []
        held = set(plan.grants.get(dept, ()))
        if _subscription_share(self.options) > 0:
            held |= subscribed_topics(plan, dept)
        return [
            t
            for t in plan.topics.values()
            if t.provider != dept and t.shareable and t.code not in held
        ]

    def _book_delivery(self, consumer: str, topic: str) -> None:
        self.ledger.book(
            1, department=consumer, group="subscription", topic=topic, action="subscription"
        )

    def target_by(self, elapsed: float) -> float:
        """Records owed by ``elapsed``: the users' part and the subscriptions' part."""
        total = self.day.records_by(elapsed)
        if self.subs is not None:
            total += self.subs.plan.records_by(elapsed)
        return total

    def target_rate(self, elapsed: float) -> float:
        rate = self.day.rate_at(elapsed)
        if self.subs is not None:
            rate += self.subs.plan.rate_at(elapsed)
        return rate

    def start(self) -> None:
        self.started = time.time()
        self.started_mono = time.monotonic()
        self.ended = 0.0
        self.ledger.clear()
        self.pacer = Pacer(self.day, max_lag=self.options.max_lag)
        if self.subs is not None:
            self.subs.day_ends = self.started_mono + self.day.day_seconds

    def share(self, runner: Any, elapsed: float | None = None) -> float:
        """This process's share of the day's records.

        1 for a local runner or a master. A worker owes ``1 / --day-workers`` (the master
        forwards its worker count with every spawn message, see :meth:`forward_workers`):
        the master dispatches users evenly, and pacing is by records, so each worker's part
        of the schedule is fixed and the parts add up to exactly the day.

        It used to be this worker's users ÷ the users the shape wants *now*. The worker's
        users lag the shape (the shape ticks once a second and a ramp takes time), and
        ``users_at`` steps up between ticks, so all morning the shares summed to less than
        1 and the records not accrued were never owed again (a ramp-down, capped at 1,
        gave nothing back): a simulated day with one worker delivered 99.0 %
        (``tests/loadtests/test_day.py``). That ratio is kept only for a master that does
        not say how many workers it has.
        """
        if type(runner).__name__ != "WorkerRunner":
            return 1.0
        workers = int(getattr(self.options, "day_workers", 0) or 0)
        if workers >= 1:
            return 1.0 / workers
        wanted = self.day.users_at(self.elapsed() if elapsed is None else elapsed)
        return min(1.0, max(int(runner.user_count), 1) / wanted)

    def forward_workers(self, runner: Any) -> None:
        """On a master, name its worker count in the options sent with each spawn message
        (Locust forwards the custom options; its own, ``--processes`` included, it does not)."""
        if type(runner).__name__ == "MasterRunner":
            options = runner.environment.parsed_options
            if options is not None:
                options.day_workers = max(1, int(runner.worker_count))

    # -- the end of the run ---------------------------------------------------------------

    def out_prefix(self) -> str:
        o = self.options
        return o.records_out or getattr(o, "csv_prefix", None) or "loadtest"

    def figures(self, stats: Any) -> summary_mod.RunFigures:
        end = self.ended or time.time()
        elapsed = max(end - self.started, 1e-9) if self.started else 0.0
        total = stats.total
        errors: dict[str, int] = {}
        for err in stats.errors.values():
            errors[str(err.error)] = errors.get(str(err.error), 0) + err.occurrences
        series = self.ledger.series(self.started, end) if self.started else []
        peak = max((n for _, n in series), default=0)
        subs = self.subs
        lag = subs.lag_percentiles() if subs is not None else (0.0, 0.0, 0.0)
        return summary_mod.RunFigures(
            records=self.ledger.total,
            target_day=self.options.records_per_day,
            target_run=self.target_by(elapsed),
            elapsed_s=elapsed,
            day_seconds=self.day.day_seconds,
            requests=total.num_requests,
            failures=total.num_failures,
            p50_ms=float(total.get_response_time_percentile(0.50) or 0),
            p95_ms=float(total.get_response_time_percentile(0.95) or 0),
            p99_ms=float(total.get_response_time_percentile(0.99) or 0),
            errors=errors,
            departments=dict(self.ledger.departments),
            groups=dict(self.ledger.groups),
            actions=dict(self.ledger.actions),
            peak_records_per_s=float(peak),
            records_in_day=sum(n for sec, n in series if sec < self.day.day_seconds),
            published=subs.published if subs is not None else 0,
            delivered=subs.delivered if subs is not None else 0,
            delivered_late=subs.late if subs is not None else 0,
            subscribers=len(subs.subscriptions) if subs is not None else 0,
            lag_p50_ms=lag[0],
            lag_p95_ms=lag[1],
            lag_p99_ms=lag[2],
            stages=dict(subs.stages) if subs is not None else {},
        )

    def thresholds(self) -> summary_mod.Thresholds:
        o = self.options
        return summary_mod.Thresholds(
            max_error_rate=o.max_error_rate,
            max_p99_ms=o.max_p99_ms,
            min_volume_ratio=o.min_volume_ratio,
        )

    def write_outputs(self, figures: summary_mod.RunFigures, missed: list[str]) -> Path:
        """Records CSVs, summary JSON and the volume chart beside Locust's CSVs."""
        prefix = Path(self.out_prefix())
        prefix.parent.mkdir(parents=True, exist_ok=True)
        end = self.ended or time.time()
        rows = ["second,sim_hour,records,target_records"]
        for sec, n in self.ledger.series(self.started, end):
            mid = sec + 0.5
            rows.append(f"{sec},{self.day.hour_at(mid):.3f},{n},{self.target_rate(mid):.1f}")
        Path(f"{prefix}_records_history.csv").write_text("\n".join(rows) + "\n")
        for name, counts in (
            ("departments", self.ledger.departments),
            ("groups", self.ledger.groups),
            ("topics", self.ledger.topics),
            ("actions", self.ledger.actions),
        ):
            lines = [f"{name[:-1]},records"]
            lines += [f"{k},{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
            Path(f"{prefix}_records_{name}.csv").write_text("\n".join(lines) + "\n")
        out = summary_mod.to_dict(figures, self.thresholds(), missed)
        out["started"] = self.started
        path = Path(f"{prefix}_summary.json")
        path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        try:
            from loadtests.chart import render

            render(self.day, self.ledger.series(self.started, end), Path(f"{prefix}_volume.png"))
        except ImportError:
            log.warning("matplotlib is not installed: no volume chart (pip install -e .[load])")
        return path

    def write_progress(self, path: str) -> None:
        elapsed = self.elapsed()
        data = {
            "elapsed_s": elapsed,
            "day_seconds": self.day.day_seconds,
            "sim_hour": self.day.hour_at(elapsed),
            "records": self.ledger.total,
            "target_so_far": self.target_by(elapsed),
            "target_day": self.options.records_per_day,
            "records_per_s": self.ledger.rate(),
            "target_rate": self.target_rate(elapsed),
        }
        tmp = f"{path}.tmp"
        Path(tmp).write_text(json.dumps(data))
        os.replace(tmp, path)


def _city(o: Any) -> Any:
    from exchange.departments.city import City

    return City(o.city_seed, o.population, o.enterprises)


def _key_pools(o: Any) -> tuple[list[str], list[str]]:
    """ID numbers and credit codes the day looks up: a sample of the departments' city,
    drawn in bulk (one at a time it took seconds of CPU on a busy machine)."""
    from exchange.departments import bulk, bulk_enterprises
    from exchange.departments.city import City

    city = City(o.city_seed, o.population, o.enterprises)
    return (
        bulk.sample_id_numbers(city, min(KEY_POOL, o.population), o.plan_seed),
        bulk_enterprises.sample_credit_codes(city, min(KEY_POOL, o.enterprises), o.plan_seed),
    )


def graceful_stops(environment: Any) -> None:
    """Let users stopped by the shape finish the call they are in.

    Locust's default (``--stop-timeout 0``) kills a user's greenlet mid-call whenever the
    shape lowers the user count, dozens of times a day: the call's work is wasted and its
    records never arrive. An explicit ``--stop-timeout`` is kept.
    """
    if not environment.stop_timeout:
        environment.stop_timeout = STOP_TIMEOUT


def _subscription_share(o: Any) -> float:
    # Without setup nobody subscribes: the users carry the whole day.
    if getattr(o, "skip_setup", False):
        return 0.0
    return min(max(float(getattr(o, "subscription_share", 0.0) or 0.0), 0.0), 0.9)


def _subscription_plan(o: Any) -> DayPlan:
    """The part of the day delivered by subscription (same shape, its share of records)."""
    return DayPlan(
        records_per_day=max(1, round(o.records_per_day * _subscription_share(o))),
        day_seconds=o.day_minutes * 60.0,
    )


def _day_plan(o: Any) -> DayPlan:
    """The users' part of the day: everything not delivered by subscription."""
    peak = o.day_users or o.num_users or 40
    return DayPlan(
        records_per_day=max(1, round(o.records_per_day * (1.0 - _subscription_share(o)))),
        day_seconds=o.day_minutes * 60.0,
        peak_users=peak,
        min_users=min(o.min_users, peak),
    )


def day_of(environment: Any) -> Day:
    """The process's :class:`Day` (created by :func:`install`)."""
    found: Day = environment.exchange_day
    return found


def _is(environment: Any, kind: str) -> bool:
    return type(environment.runner).__name__ == kind


def defaults_once() -> None:
    """Build Locust's table of its own options' defaults once per process, not per option.

    A worker takes the master's custom options from every spawn message by testing each
    option against ``locust.argument_parser.default_args_dict()``, and that call builds a
    whole argument parser and parses an empty command line each time: ~130 parsers per
    message. The day's shape changes the user count every second or two, so a worker spent
    most of its CPU there (78 % of its samples, profiled on a loaded 2-core machine), sent
    no heartbeat for 15 s and was declared missing before its users had made a call. The
    defaults cannot change within a process; the callers only test membership.
    """
    import functools

    import locust.argument_parser as parser

    if not hasattr(parser.default_args_dict, "cache_info"):
        parser.default_args_dict = functools.cache(parser.default_args_dict)


def install(events: Any) -> None:
    """Register the day's hooks on Locust's ``events`` (called by the locustfile)."""
    import gevent
    import locust.runners

    # Read by the master each time a worker connects (module-level in Locust, no option).
    locust.runners.HEARTBEAT_LIVENESS = max(locust.runners.HEARTBEAT_LIVENESS, HEARTBEAT_LIVENESS)
    defaults_once()
    events.init_command_line_parser.add_listener(add_options)

    def on_init(environment: Any, **_: Any) -> None:
        o = environment.parsed_options
        if o is None:  # a library-mode Environment without options: nothing to set up
            return
        if not o.day_users:
            # Custom options travel from the master to its workers; -u does not.
            o.day_users = o.num_users or 40
        day = Day(options=o, day=_day_plan(o), mix=Mix(export_page=o.export_page))
        environment.exchange_day = day
        graceful_stops(environment)
        attach(environment, day.ledger)
        if environment.host and not _is(environment, "WorkerRunner") and not o.skip_setup:
            # Before the test starts, so the setup's minute is not part of the day.
            day.prepare(environment.host, create=True)

    def on_test_start(environment: Any, **_: Any) -> None:
        day = day_of(environment)
        # A worker's options were just updated with the master's: rebuild from them.
        day.options = o = environment.parsed_options
        day.day, day.mix = _day_plan(o), Mix(export_page=o.export_page)
        # Workers only read the plan; the others create the grants here if ``init`` could
        # not (the web UI names the host only when the test starts).
        worker = _is(environment, "WorkerRunner")
        if not (_is(environment, "MasterRunner") and o.skip_setup):
            day.prepare(environment.host, create=not worker and not o.skip_setup)
        day.start()
        if day.province is not None and not getattr(environment, "province_attached", False):
            # Each process keeps its own users' share (a worker's ledger is drained).
            environment.events.request.add_listener(day.province.on_request)
            environment.province_attached = True
        if not worker:
            gevent.spawn(_progress_loop, day, day.options.progress_file)
            if day.subs is not None:
                gevent.spawn(
                    day.subs.publish_loop,
                    environment.host,
                    day.key_of("gaj"),
                    day.id_numbers,
                    _city(o),
                    day.elapsed,
                    lambda: bool(day.started and not day.ended),
                    environment.events.request.fire,
                )

    def on_test_stop(environment: Any, **_: Any) -> None:
        day_of(environment).ended = time.time()

    def on_quitting(environment: Any, **_: Any) -> None:
        if _is(environment, "WorkerRunner") or not hasattr(environment, "exchange_day"):
            return
        day = day_of(environment)
        if not day.started:
            return
        if day.subs is not None:
            with day.operator_client(environment.host) as client:
                day.subs.teardown(client, day.key_of)
        if _is(environment, "MasterRunner"):
            # Workers send a last report when they stop; give it a moment to arrive (1 s
            # was too short for a busy machine: a run's records went uncounted).
            gevent.sleep(3.0)
        figures = day.figures(environment.stats)
        missed = summary_mod.evaluate(figures, day.thresholds())
        path = day.write_outputs(figures, missed)
        print(summary_mod.render_text(figures, missed))
        print(
            f"records CSVs, summary and chart: {path.parent}/{path.name[: -len('_summary.json')]}_*"
        )
        if environment.parsed_options.headless:
            # The thresholds own the verdict: a rare failure within the error budget must not
            # fail the run (Locust's default is exit code 1 on any failure).
            environment.process_exit_code = 1 if missed else 0

    events.init.add_listener(on_init)
    events.test_start.add_listener(on_test_start)
    events.test_stop.add_listener(on_test_stop)
    events.quitting.add_listener(on_quitting)


def _progress_loop(day: Day, path: str) -> None:
    """Each second: the progress file (if asked for); every 10 s: a records line in the log,
    next to Locust's request statistics."""
    import gevent

    tick = 0
    while day.started and not day.ended:
        if path:
            try:
                day.write_progress(path)
            except OSError as exc:
                log.warning("progress file %s: %s", path, exc)
        if tick % 10 == 9:
            elapsed = day.elapsed()
            total = day.ledger.total or 1
            groups = ", ".join(f"{g} {n / total:.0%}" for g, n in day.ledger.groups.most_common())
            log.info(
                "records: %s/s (target %s/s), %s of %s so far, day %02d:%02d; by group: %s",
                f"{day.ledger.rate():,.0f}",
                f"{day.day.rate_at(elapsed):,.0f}",
                f"{day.ledger.total:,}",
                f"{day.day.records_by(elapsed):,.0f}",
                int(day.day.hour_at(elapsed)),
                int(day.day.hour_at(elapsed) % 1 * 60),
                groups or "-",
            )
            if day.subs is not None:
                subs = day.subs
                log.info(
                    "subscriptions: %s events published × %d subscribers, %s received",
                    f"{subs.published:,}",
                    subs.consumers,
                    f"{subs.delivered:,}",
                )
        tick += 1
        gevent.sleep(1.0)


def pick(rng: random.Random, weights: dict[str, float]) -> str:
    """One key of ``weights`` drawn in proportion to its value."""
    keys = list(weights)
    return rng.choices(keys, [weights[k] for k in keys])[0]
