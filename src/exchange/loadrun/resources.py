"""The CPU and memory a load run cost: the started exchange's process tree at the day's
start and end, and Locust's CPU."""

from __future__ import annotations

from typing import Any

from exchange import proctree

__all__ = ["Resources"]


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
