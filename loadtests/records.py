"""Records accounting: records exchanged per second, per department, topic group and topic.

Locust counts requests; the platform's figure is *records* (日均交换数据). Every exchange
call fires Locust's ``request`` event with ``context={"records": n, "department": …,
"group": …, "topic": …}``; :func:`attach` adds a listener that books those into a
:class:`Ledger`. In distributed mode each worker's ledger travels to the master with
Locust's periodic worker report (``report_to_master`` → ``worker_report``) as a delta, so
the master's ledger is the whole run's.

:class:`Ledger` is plain Python (no Locust import) so it can be unit-tested; :func:`attach`
only uses the ``environment`` object Locust passes in.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["REPORT_KEY", "Ledger", "attach"]

#: Key of the ledger delta inside a worker's report to the master.
REPORT_KEY = "exchange_records"


@dataclass
class Ledger:
    """Records exchanged, bucketed by wall second and totalled by dimension."""

    per_second: Counter[int] = field(default_factory=Counter)
    departments: Counter[str] = field(default_factory=Counter)
    groups: Counter[str] = field(default_factory=Counter)
    topics: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    calls: int = 0

    @property
    def total(self) -> int:
        return sum(self.per_second.values())

    def book(
        self,
        records: int,
        *,
        department: str,
        group: str,
        topic: str,
        action: str,
        at: float | None = None,
    ) -> None:
        """Count ``records`` delivered by one successful call."""
        second = int(time.time() if at is None else at)
        self.per_second[second] += records
        self.departments[department] += records
        self.groups[group] += records
        self.topics[topic] += records
        self.actions[action] += records
        self.calls += 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and msgpack-safe copy (second keys as strings)."""
        return {
            "per_second": {str(k): v for k, v in self.per_second.items()},
            "departments": dict(self.departments),
            "groups": dict(self.groups),
            "topics": dict(self.topics),
            "actions": dict(self.actions),
            "calls": self.calls,
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add a delta produced by :meth:`to_dict` (a worker's report)."""
        self.per_second.update({int(k): int(v) for k, v in data.get("per_second", {}).items()})
        self.departments.update(data.get("departments", {}))
        self.groups.update(data.get("groups", {}))
        self.topics.update(data.get("topics", {}))
        self.actions.update(data.get("actions", {}))
        self.calls += int(data.get("calls", 0))

    def drain(self) -> dict[str, Any]:
        """The delta since the last drain, and reset (what a worker sends its master)."""
        out = self.to_dict()
        self.clear()
        return out

    def clear(self) -> None:
        self.per_second.clear()
        self.departments.clear()
        self.groups.clear()
        self.topics.clear()
        self.actions.clear()
        self.calls = 0

    def rate(self, now: float | None = None, window: int = 5) -> float:
        """Mean records/s over the last ``window`` complete seconds."""
        end = int(time.time() if now is None else now)
        return sum(self.per_second.get(s, 0) for s in range(end - window, end)) / window

    def series(self, start: float, end: float) -> list[tuple[int, int]]:
        """(second since ``start``, records) for every second of the run, zeros included."""
        s0 = int(start)
        return [(s - s0, self.per_second.get(s, 0)) for s in range(s0, int(end) + 1)]


def attach(environment: Any, ledger: Ledger) -> None:
    """Book records from Locust's ``request`` events; ship/merge deltas between nodes.

    Which side does what is decided from the runner class name so this module needs no
    Locust import: a worker drains its ledger into each report, the master merges them, a
    local runner just books.
    """
    events = environment.events

    def on_request_event(
        context: dict[str, Any] | None = None, exception: BaseException | None = None, **_: Any
    ) -> None:
        if exception is not None or not context or "records" not in context:
            return
        ledger.book(
            int(context["records"]),
            department=str(context.get("department", "?")),
            group=str(context.get("group", "?")),
            topic=str(context.get("topic", "?")),
            action=str(context.get("action", "?")),
        )

    def on_report_to_master(data: dict[str, Any], **_: Any) -> None:
        data[REPORT_KEY] = ledger.drain()

    def on_worker_report(data: dict[str, Any], **_: Any) -> None:
        if REPORT_KEY in data:
            ledger.merge(data[REPORT_KEY])

    events.request.add_listener(on_request_event)
    events.report_to_master.add_listener(on_report_to_master)
    events.worker_report.add_listener(on_worker_report)
