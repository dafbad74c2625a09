"""The process's memory, and the bound of everything it keeps that grows with traffic.

Every long-lived structure whose size follows the calls (caches, replay sets, backlogs,
the SQLite page cache) declares itself in the app's :class:`MemoryBounds` with its bound
and the bytes it may hold at that bound (its *budget*: the bound times a measured size per
entry, or a byte bound itself). ``/metrics`` shows each one's size beside its bound, the
sum of the budgets (``exchange_memory_declared_bytes``) and the resident memory of the
process, so a long run can be judged: it should end within twice its start memory plus
the declared budgets (issue 17). Structures that copy a table (the grants, the catalog's
search index) grow with the data, not the traffic, and are not declared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client.core import Metric

#: /proc/self/status fields and the ``part`` label each becomes
_STATUS = {"VmRSS": "total", "RssAnon": "anonymous", "RssFile": "file"}


def resident() -> dict[str, int]:
    """This process's resident memory in bytes: ``total``, ``anonymous`` (the heap, page
    caches of SQLite, thread stacks) and ``file`` (mapped files: libraries, the audit
    journal); empty where /proc is not there."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return {}
    found: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        part = _STATUS.get(name)
        if part is not None:
            found[part] = int(value.split()[0]) * 1024
    return found


@dataclass(frozen=True, slots=True)
class Bounded:
    """One declared structure."""

    name: str
    #: what it holds, one line (the /metrics help and the README say the same)
    what: str
    #: its size now, in ``unit``
    size: Callable[[], int]
    #: the most it holds, in ``unit``
    limit: int
    #: "entries" or "bytes"
    unit: str
    #: bytes it may hold at ``limit``
    budget: int


class MemoryBounds:
    """The bounded structures of one app (``ctx.memory``)."""

    def __init__(self) -> None:
        self._items: dict[str, Bounded] = {}

    def declare(
        self,
        name: str,
        what: str,
        *,
        size: Callable[[], int],
        limit: int,
        entry_bytes: int | None = None,
    ) -> None:
        """Declare a structure of at most ``limit`` entries of about ``entry_bytes`` each
        (measured), or, with ``entry_bytes`` None, of at most ``limit`` bytes. A name
        declared again is replaced (one app per name)."""
        unit = "bytes" if entry_bytes is None else "entries"
        budget = limit if entry_bytes is None else limit * entry_bytes
        self._items[name] = Bounded(name, what, size, limit, unit, budget)

    def __iter__(self) -> Iterator[Bounded]:
        return iter(sorted(self._items.values(), key=lambda b: b.name))

    @property
    def declared_bytes(self) -> int:
        return sum(b.budget for b in self._items.values())


class MemoryCollector(Collector):
    """The gauges of :mod:`exchange.memory`, read when scraped."""

    def __init__(self, bounds: MemoryBounds) -> None:
        self._bounds = bounds

    def collect(self) -> Iterator[Metric]:
        rss = GaugeMetricFamily(
            "exchange_memory_resident_bytes",
            "Resident memory of the answering process (total, anonymous, file-backed)",
            labels=["part"],
        )
        for part, value in resident().items():
            rss.add_metric([part], value)
        yield rss
        items = list(self._bounds)
        yield GaugeMetricFamily(
            "exchange_memory_declared_bytes",
            "Bytes the process's bounded structures may hold at their bounds, together",
            value=sum(b.budget for b in items),
        )
        size = GaugeMetricFamily(
            "exchange_bounded_size",
            "Size now of a bounded structure (entries or bytes, see unit)",
            labels=["structure", "unit"],
        )
        limit = GaugeMetricFamily(
            "exchange_bounded_limit",
            "The bound of a structure (entries or bytes, see unit)",
            labels=["structure", "unit"],
        )
        budget = GaugeMetricFamily(
            "exchange_bounded_budget_bytes",
            "Bytes a structure may hold at its bound (declared)",
            labels=["structure"],
        )
        for b in items:
            size.add_metric([b.name, b.unit], b.size())
            limit.add_metric([b.name, b.unit], b.limit)
            budget.add_metric([b.name], b.budget)
        yield size
        yield limit
        yield budget
