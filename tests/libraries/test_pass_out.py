"""A gathering pass's report as the status answer shows it."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from exchange.libraries.report import PassReport
from exchange.libraries.router import _pass_out


def test_the_answer_is_the_report_with_its_total_and_does_not_follow_it() -> None:
    report = PassReport(full=True, started_at=dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC))
    report.gathered.update({"a": 3, "b": 4})
    report.removed.update({"a": 1, "b": 0})
    report.events.update(Counter({"a": 2}))
    report.skipped["c"] = "no grant"
    report.seconds, report.check_seconds = 1.5, 0.25
    out = _pass_out(report)
    assert out is not None
    assert out.model_dump() == {
        "full": True,
        "started_at": report.started_at,
        "finished_at": None,
        "gathered": {"a": 3, "b": 4},
        "total": 7,
        "removed": {"a": 1, "b": 0},
        "total_removed": 1,
        "skipped": {"c": "no grant"},
        "errors": {},
        "events": {"a": 2},
        "conflicts": {},
        "seconds": 1.5,
        "check_seconds": 0.25,
    }
    report.gathered["a"] += 10  # the pass goes on; the answer already given stays
    assert out.gathered == {"a": 3, "b": 4}
    assert _pass_out(None) is None
