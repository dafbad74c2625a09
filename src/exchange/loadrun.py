"""``exchange load``: replay a day of the Guangzhou exchange with Locust, headless.

Starts an exchange on loopback if none answers at ``--host``, runs ``loadtests/locustfile.py``
in a Locust subprocess (so gevent never patches this process, and ``--processes`` can fan
out), shows the simulated day's progress from the progress file the locustfile writes, and
prints the summary it leaves. Locust is an optional dependency (``pip install -e .[load]``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from exchange import proctree
from exchange.children import end_with_parent
from exchange.config import Settings

__all__ = ["find_locustfile", "healthy", "load", "peak_users"]

DAILY_RECORDS_2020 = 37_484_000
#: The started exchange's worker processes and Locust's worker processes (beside its
#: master): together with the mock departments' own process they spread the day over
#: both cores of a small machine, where one ``exchange up`` process used one.
WORKERS = 2
PROCESSES = 1
#: Users at the peak of the 2020 day in 10 minutes (see :func:`peak_users`).
BASE_USERS = 40
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def peak_users(records_per_day: int, day_minutes: float) -> int:
    """Users at the peak for a day's rate: 40 for the 2020 day in 10 minutes (the runs
    that delivered all of it), in proportion for a faster day, never fewer than 40.

    A user makes one call at a time, so the calls a second the users can make are the
    users over the time a call takes (Little's law). The 2020 day in 5 minutes needs ~250
    calls/s at its peak; with calls of ~0.24 s, 40 users made at most ~170 and delivered
    62.5 % of the day with the exchange using 0.8 of 2 cores (bench/results/load-day.md).
    """
    if day_minutes <= 0:
        return BASE_USERS
    rate = records_per_day / DAILY_RECORDS_2020 * (10.0 / day_minutes)
    return max(BASE_USERS, math.ceil(BASE_USERS * rate - 1e-9))


def find_locustfile(explicit: Path | None = None) -> Path | None:
    """``loadtests/locustfile.py`` of the source checkout, else under the working directory."""
    candidates = [explicit] if explicit else []
    candidates += [
        Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py",
        Path.cwd() / "loadtests" / "locustfile.py",
    ]
    return next((p for p in candidates if p is not None and p.is_file()), None)


def healthy(url: str) -> bool:
    """Whether an exchange answers ``/healthz`` at ``url``."""
    try:
        resp = httpx.get(f"{url}/healthz", timeout=2.0)
        return resp.status_code == 200 and resp.json().get("status") == "ok"
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def _check_operator_key(host: str, operator_key: str) -> None:
    """Fail before Locust starts if the exchange at ``host`` refuses the operator key (the
    grants setup needs it; Locust would only end with a traceback)."""
    try:
        resp = httpx.get(
            f"{host}/api/v1/departments",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {operator_key}"},
            timeout=10.0,
        )
    except httpx.HTTPError as exc:
        raise RuntimeError(f"the exchange at {host} did not answer: {exc}") from exc
    if resp.status_code in (401, 403):
        raise RuntimeError(
            f"the exchange at {host} refuses this operator key ({resp.status_code}): pass "
            "the key its banner shows with --operator-key or EXCHANGE_OPERATOR_KEY (a local "
            "`exchange up` keeps it in .exchange/operator.key where it was started)"
        )


@contextmanager
def _exchange(
    host: str, operator_key: str, log: Path, console: Console, *, start: bool, workers: int = 1
) -> Iterator[int | None]:
    """Use the exchange at ``host``, or start ``exchange up`` there (loopback only) when
    ``start``: only for the default address, never one the user named with --host.

    Yields the started exchange's process id (``None`` for one found running)."""
    if healthy(host):
        _check_operator_key(host, operator_key)
        console.print(f"using the exchange at {host}")
        yield None
        return
    if not start:
        raise RuntimeError(
            f"no exchange answers at {host}: start one there (`exchange up`), or leave out "
            "--host to let exchange load start one on this machine"
        )
    parts = urlsplit(host)
    if parts.hostname not in _LOOPBACK:
        raise RuntimeError(f"no exchange answers at {host} (only a loopback one can be started)")
    console.print(
        f"no exchange at {host}: starting one, {workers} worker process"
        f"{'es and the mock departments in their own' if workers > 1 else ''} (log: {log})"
    )
    env = {
        **os.environ,
        "EXCHANGE_OPERATOR_KEY": operator_key,
        "EXCHANGE_HOST": parts.hostname or "127.0.0.1",
        "EXCHANGE_PORT": str(parts.port or 80),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exchange.cli", "up", "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=out,
            preexec_fn=end_with_parent(),
        )
    try:
        deadline = time.monotonic() + 120
        while not healthy(host):
            if proc.poll() is not None:
                raise RuntimeError(f"exchange up exited with {proc.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"exchange up did not answer within 120 s; see {log}")
            time.sleep(0.2)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _progress(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


#: What a progress reading tells the exchange (``PUT /api/v1/load-runs/{id}``).
REPORTED = (
    "sim_hour",
    "elapsed_s",
    "day_seconds",
    "records",
    "target_so_far",
    "records_per_s",
    "target_rate",
)


class Reporter:
    """Tells the exchange how the run goes, so its operations dashboard shows the day.

    Best effort: the load test never stops because the exchange did not take a report;
    the first failure is said once, then the run goes on quietly.
    """

    def __init__(self, base_url: str, operator_key: str, console: Console) -> None:
        self.run_id = uuid.uuid4().hex
        self.console = console
        self.last: dict[str, float] | None = None
        self.failed = False
        self.client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {operator_key}"},
            timeout=2.0,
        )

    def send(self, data: dict[str, Any] | None, state: str = "running") -> None:
        if data is not None:
            self.last = {k: float(data[k]) for k in REPORTED if k in data}
        if self.last is None or len(self.last) < len(REPORTED):
            return
        try:
            resp = self.client.put(
                f"/api/v1/load-runs/{self.run_id}", json={"state": state, "progress": self.last}
            )
            resp.raise_for_status()
        except (httpx.HTTPError, ValueError) as exc:
            if not self.failed:
                self.failed = True
                self.console.print(
                    f"[yellow]the exchange's dashboard will not show this run: {exc}[/]"
                )

    def close(self, returncode: int) -> None:
        self.send(None, "finished" if returncode == 0 else "failed")
        self.client.close()


class Resources:
    """The started exchange's memory and CPU at the day's start and end, and Locust's CPU.

    The exchange is every process of ``exchange up`` (with workers: the supervisor, the
    worker processes and the mock departments), sampled when the first progress reading
    shows the day started (after the grants setup) and after Locust exits, before the
    exchange is stopped. Locust's CPU is what its process tree used in all, setup included
    (the children's rusage, taken before it starts and after it is reaped).
    """

    def __init__(self, exchange_pid: int | None) -> None:
        self.exchange_pid = exchange_pid
        self.start: proctree.TreeFigures | None = None
        self.end: proctree.TreeFigures | None = None
        self._children_before = _children_cpu()
        self.locust_cpu_s: float | None = None

    def day_started(self) -> None:
        if self.exchange_pid is not None and self.start is None:
            self.start = proctree.sample(self.exchange_pid)

    def locust_ended(self) -> None:
        self.locust_cpu_s = _children_cpu() - self._children_before
        if self.exchange_pid is not None:
            self.end = proctree.sample(self.exchange_pid)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"locust_cpu_s": self.locust_cpu_s}
        if self.start is not None and self.end is not None:
            out["exchange_start"] = self.start.as_json()
            out["exchange_end"] = self.end.as_json()
            out["exchange_cpu_s"] = round(self.end.cpu_s - self.start.cpu_s, 1)
        return out


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _watch(
    proc: subprocess.Popen[bytes],
    progress_file: Path,
    console: Console,
    reporter: Reporter | None = None,
    resources: Resources | None = None,
) -> int:
    """Show the simulated day until Locust exits (and report it to the exchange);
    returns Locust's exit code."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("setting up grants", total=1.0, detail="")
        seen: dict[str, Any] | None = None
        while proc.poll() is None:
            data = _progress(progress_file)
            if data and data != seen:
                seen = data
                if resources is not None:
                    resources.day_started()
                if reporter is not None:
                    reporter.send(data)
                hour = data["sim_hour"]
                bar.update(
                    task,
                    completed=min(data["elapsed_s"] / data["day_seconds"], 1.0),
                    description=f"day {int(hour):02d}:{int(hour % 1 * 60):02d}",
                    detail=(
                        f"{data['records']:,.0f} / {data['target_so_far']:,.0f} records "
                        f"({data['records_per_s']:,.0f}/s, target {data['target_rate']:,.0f}/s)"
                    ),
                )
            time.sleep(0.5)
        if resources is not None:
            resources.locust_ended()
        if reporter is not None:
            reporter.send(_progress(progress_file))
            reporter.close(proc.returncode)
        return proc.returncode


def _print_summary(summary: dict[str, Any], console: Console) -> None:
    table = Table(title="A day of the exchange", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    ratio = summary["volume_ratio"]
    table.add_row(
        "records exchanged",
        f"{summary['records']:,} of {summary['target_run']:,.0f} targeted ({ratio:.1%}); "
        f"day target {summary['target_day']:,}",
    )
    table.add_row(
        "wall time", f"{summary['elapsed_s']:,.1f} s, {summary['records_per_s']:,.0f} records/s"
    )
    if summary.get("records_in_day") is not None:
        table.add_row(
            "within the day",
            f"{summary['records_in_day']:,} in its {summary['day_seconds']:,.0f} s of wall time",
        )
    table.add_row(
        "requests",
        f"{summary['requests']:,}, failed {summary['failures']:,} ({summary['error_rate']:.3%})",
    )
    table.add_row(
        "latency",
        f"p50 {summary['p50_ms']:,.0f} ms, p95 {summary['p95_ms']:,.0f} ms, "
        f"p99 {summary['p99_ms']:,.0f} ms",
    )
    for code, n in sorted(summary["errors"].items(), key=lambda kv: -kv[1]):
        table.add_row("error", f"{code}: {n:,}")
    res = summary.get("resources") or {}
    if res.get("exchange_start") and res.get("exchange_end"):
        start, end = res["exchange_start"], res["exchange_end"]
        table.add_row(
            "exchange memory",
            f"RSS {start['rss_mb']:,.0f} MB at the start of the day, {end['rss_mb']:,.0f} MB "
            f"at its end ({len(end['processes'])} processes)",
        )
        day_s = max(summary["elapsed_s"], 1e-9)
        table.add_row(
            "CPU",
            f"exchange {res['exchange_cpu_s']:,.0f} s "
            f"({res['exchange_cpu_s'] / day_s:.2f} cores over the run), "
            f"Locust {res['locust_cpu_s']:,.0f} s (setup included)",
        )
    verdict = "[green]passed[/]" if summary["passed"] else "[red]" + "; ".join(summary["missed"])
    table.add_row("thresholds", verdict)
    console.print(table)


def load(
    host: Annotated[
        str | None,
        typer.Option(help="Exchange to load (default: this machine's, started if down)."),
    ] = None,
    day_minutes: Annotated[float, typer.Option(help="Wall minutes the 24-hour day takes.")] = 10.0,
    records_per_day: Annotated[
        int, typer.Option(help="The day's volume (2020 average: 37,484,000).")
    ] = DAILY_RECORDS_2020,
    users: Annotated[
        int | None,
        typer.Option(
            help="Locust users at the day's peak (default: 40 for the 2020 day in 10 "
            "minutes, more in proportion for a faster rate)."
        ),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            help="Locust worker processes beside its master (-1: one per core; 0: Locust in "
            "one process)."
        ),
    ] = PROCESSES,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes of the exchange exchange load starts (with more than "
            "one, the mock departments run in a process of their own).",
        ),
    ] = WORKERS,
    out: Annotated[Path, typer.Option(help="Directory for the report, CSVs and chart.")] = Path(
        "loadtest-results"
    ),
    operator_key: Annotated[
        str | None,
        typer.Option(help="Operator key of the exchange (default: EXCHANGE_OPERATOR_KEY or ours)."),
    ] = None,
    max_error_rate: Annotated[float, typer.Option(help="Threshold: failed ÷ all.")] = 0.001,
    max_p99_ms: Annotated[float, typer.Option(help="Threshold: p99 latency, ms.")] = 10_000.0,
    min_volume_ratio: Annotated[
        float,
        typer.Option(
            help="Threshold: records delivered within the day ÷ the day's target (0 = off)."
        ),
    ] = 0.999,
    locustfile: Annotated[
        Path | None, typer.Option(help="Locustfile (default: loadtests/locustfile.py).")
    ] = None,
    province_host: Annotated[
        str | None,
        typer.Option(
            help="The provincial platform federated with the exchange (`exchange up "
            "--federation` runs both): its departments then take --province-share of the "
            "users' records through it, of city topics mounted there."
        ),
    ] = None,
    province_operator_key: Annotated[
        str | None,
        typer.Option(
            help="The provincial platform's operator key (default: EXCHANGE_PROVINCE_OPERATOR_KEY)."
        ),
    ] = None,
    province_share: Annotated[
        float,
        typer.Option(
            min=0.0, max=0.9, help="Share of the users' records asked through the province."
        ),
    ] = 0.1,
) -> None:
    """Replay a day of the Guangzhou exchange with Locust, headless, and print the summary."""
    from exchange.security import resolve_operator_key

    console = Console(stderr=True)
    if importlib.util.find_spec("locust") is None:
        console.print("[bold red]error:[/] Locust is not installed")
        console.print("[dim]install the load extra: pip install -e '.[load]'[/]")
        raise typer.Exit(code=2)
    found = find_locustfile(locustfile)
    if found is None:
        console.print("[bold red]error:[/] loadtests/locustfile.py not found")
        console.print("[dim]run from the source checkout, or pass --locustfile[/]")
        raise typer.Exit(code=2)
    settings = Settings()
    target = (host or settings.base_url).rstrip("/")
    if host is not None and not healthy(target):
        # Said before anything is written (no key file, no results directory).
        console.print(f"[bold red]error:[/] no exchange answers at {target}")
        console.print(
            "[dim]start one there (`exchange up`), or leave out --host to let exchange load "
            "start one on this machine[/]"
        )
        raise typer.Exit(code=2)
    key = operator_key or resolve_operator_key(settings)[0]
    if users is None:
        users = peak_users(records_per_day, day_minutes)
    out.mkdir(parents=True, exist_ok=True)
    progress_file = out / "progress.json"
    progress_file.unlink(missing_ok=True)
    prefix = out / "day"
    args = [
        *(sys.executable, "-m", "locust", "-f", str(found), "--headless", "--only-summary"),
        *("-H", target, "-u", str(users), "--day-minutes", str(day_minutes)),
        *("--records-per-day", str(records_per_day), "--csv", str(prefix)),
        *("--html", str(out / "report.html"), "--progress-file", str(progress_file)),
        *("--max-error-rate", str(max_error_rate), "--max-p99-ms", str(max_p99_ms)),
        *("--min-volume-ratio", str(min_volume_ratio)),
    ]
    if processes:
        args += ["--processes", str(processes)]
    env = {**os.environ, "EXCHANGE_OPERATOR_KEY": key}
    if province_host:
        if not healthy(province_host.rstrip("/")):
            console.print(f"[bold red]error:[/] no provincial platform answers at {province_host}")
            raise typer.Exit(code=2)
        args += ["--province-host", province_host, "--province-share", str(province_share)]
        if province_operator_key:
            env["EXCHANGE_PROVINCE_OPERATOR_KEY"] = province_operator_key
    try:
        with _exchange(
            target, key, out / "exchange.log", console, start=host is None, workers=workers
        ) as exchange_pid:
            console.print(
                f"a day of {records_per_day:,} records in {day_minutes:g} min, "
                f"{users} users at the peak; Locust log: {out / 'locust.log'}"
            )
            resources = Resources(exchange_pid)
            with (out / "locust.log").open("wb") as log:
                proc = subprocess.Popen(
                    args,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=end_with_parent(),
                )
                try:
                    code = _watch(
                        proc, progress_file, console, Reporter(target, key, console), resources
                    )
                except KeyboardInterrupt:
                    proc.terminate()
                    proc.wait()
                    raise
    except RuntimeError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    summary_file = Path(f"{prefix}_summary.json")
    if not summary_file.exists():
        tail = (out / "locust.log").read_text(errors="replace")[-3000:]
        console.print(f"[bold red]Locust ended ({code}) without a summary:[/]\n{tail}")
        raise typer.Exit(code=code or 2)
    summary = json.loads(summary_file.read_text())
    summary["resources"] = resources.as_json()
    summary_file.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    _print_summary(summary, console)
    console.print(f"report {out / 'report.html'}, chart {prefix}_volume.png, CSVs {prefix}_*.csv")
    raise typer.Exit(code=code)
