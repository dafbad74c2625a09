"""The table a load run ends with: records against the target, requests, latency, errors,
the exchange's memory and CPU, and the thresholds' verdict."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_summary"]


def print_summary(summary: dict[str, Any], console: Console) -> None:
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
