"""The volume-over-time chart of a run (a PNG), so a reader sees the day's shape.

Needs matplotlib (in the ``load`` extra); callers catch ImportError and go on without.
"""

from __future__ import annotations

from pathlib import Path

from loadtests.profile import DayPlan

__all__ = ["render"]


def render(day: DayPlan, series: list[tuple[int, int]], path: Path) -> None:
    """Records/s achieved (bars, by simulated hour) against the target rate, and the
    cumulative volume against the cumulative target."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server, and no GUI toolkit import
    import matplotlib.pyplot as plt

    if not series:
        return
    # At most ~240 bars: bucket seconds so a 10-minute day shows ~6-minute simulated steps.
    width = max(1, len(series) // 240)
    xs, ys = [], []
    for i in range(0, len(series), width):
        chunk = series[i : i + width]
        xs.append(day.hour_at(chunk[0][0] + len(chunk) / 2))
        ys.append(sum(n for _, n in chunk) / len(chunk))
    last = series[-1][0] + 1
    grid = [i * last / 400 for i in range(401)]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    bar_w = 24.0 * width / day.day_seconds
    top.bar(xs, ys, width=bar_w, color="#4c78a8", label="records/s achieved")
    top.plot([day.hour_at(t) for t in grid], [day.rate_at(t) for t in grid], color="#e45756",
             label="target records/s")  # fmt: skip
    top.set_ylabel("records per wall second")
    top.set_title(
        f"A day of the exchange: target {day.records_per_day:,} records "
        f"in {day.day_seconds / 60:g} min of wall time"
    )
    top.legend(loc="upper left")
    done, cum = 0, []
    for _, n in series:
        done += n
        cum.append(done)
    bottom.plot([day.hour_at(s + 1) for s, _ in series], cum, color="#4c78a8",
                label=f"achieved ({done:,})")  # fmt: skip
    bottom.plot([day.hour_at(t) for t in grid], [day.records_by(t) for t in grid],
                color="#e45756", linestyle="--", label="target")  # fmt: skip
    bottom.set_ylabel("records exchanged (cumulative)")
    bottom.set_xlabel("simulated hour of the day (Beijing time)")
    bottom.set_xticks(range(0, 25, 2))
    bottom.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
