"""The ``exchange load`` command: its options, the Locust subprocess it runs, and the
summary it leaves."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from exchange.children import end_with_parent
from exchange.config import Settings
from exchange.loadrun.progress import Reporter, watch
from exchange.loadrun.resources import Resources
from exchange.loadrun.sizing import DAILY_RECORDS_2020, peak_users
from exchange.loadrun.summary import print_summary
from exchange.loadrun.target import healthy, running_exchange

__all__ = ["PROCESSES", "WORKERS", "find_locustfile", "load"]

#: The started exchange's worker processes and Locust's worker processes (beside its
#: master): together with the mock departments' own process they spread the day over
#: both cores of a small machine, where one ``exchange up`` process used one.
WORKERS = 2
PROCESSES = 1


def find_locustfile(explicit: Path | None = None) -> Path | None:
    """``loadtests/locustfile.py`` of the source checkout, else under the working directory."""
    candidates = [explicit] if explicit else []
    candidates += [
        Path(__file__).resolve().parents[3] / "loadtests" / "locustfile.py",
        Path.cwd() / "loadtests" / "locustfile.py",
    ]
    return next((p for p in candidates if p is not None and p.is_file()), None)


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
        with running_exchange(
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
                    code = watch(
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
    print_summary(summary, console)
    console.print(f"report {out / 'report.html'}, chart {prefix}_volume.png, CSVs {prefix}_*.csv")
    raise typer.Exit(code=code)
