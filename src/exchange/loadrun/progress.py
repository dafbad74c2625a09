"""Following a run: the progress file the locustfile writes, shown as the simulated day's
progress bar and reported to the exchange's operations dashboard."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from exchange.loadrun.resources import Resources

__all__ = ["REPORTED", "Reporter", "read_progress", "watch"]


def read_progress(path: Path) -> dict[str, Any] | None:
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


def watch(
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
            data = read_progress(progress_file)
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
            reporter.send(read_progress(progress_file))
            reporter.close(proc.returncode)
        return proc.returncode
