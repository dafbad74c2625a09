"""The records ledger: booking, worker deltas, the master's merge and the time series."""

from __future__ import annotations

import json

from loadtests.records import REPORT_KEY, Ledger, attach


def _book(ledger: Ledger, n: int, at: float, dept: str = "mzj", group: str = "basic") -> None:
    ledger.book(n, department=dept, group=group, topic="101001001/000001", action="batch", at=at)


def test_book_totals_every_dimension() -> None:
    ledger = Ledger()
    _book(ledger, 100, 1000.2)
    _book(ledger, 50, 1000.9, dept="gaj", group="departmental")
    _book(ledger, 7, 1002.0)
    assert ledger.total == 157
    assert ledger.per_second == {1000: 150, 1002: 7}
    assert ledger.departments == {"mzj": 107, "gaj": 50}
    assert ledger.groups == {"basic": 107, "departmental": 50}
    assert ledger.actions == {"batch": 157}
    assert ledger.calls == 3
    assert ledger.series(1000.0, 1003.0) == [(0, 150), (1, 0), (2, 7), (3, 0)]
    assert ledger.rate(now=1003.0, window=3) == 157 / 3


def test_worker_deltas_merge_into_the_master_exactly_once() -> None:
    worker, master = Ledger(), Ledger()
    _book(worker, 10, 5.0)
    # The delta crosses the wire as msgpack/JSON: keys become strings.
    master.merge(json.loads(json.dumps(worker.drain())))
    assert worker.total == 0
    assert worker.calls == 0
    _book(worker, 5, 6.0, dept="gaj")
    master.merge(json.loads(json.dumps(worker.drain())))
    master.merge(worker.drain())  # an empty report changes nothing
    assert master.total == 15
    assert master.per_second == {5: 10, 6: 5}
    assert master.departments == {"mzj": 10, "gaj": 5}
    assert master.calls == 2


class _Event:
    def __init__(self) -> None:
        self.listeners: list = []

    def add_listener(self, f: object) -> object:
        self.listeners.append(f)
        return f

    def fire(self, **kw: object) -> None:
        for f in self.listeners:
            f(**kw)


class _Events:
    def __init__(self) -> None:
        self.request, self.report_to_master, self.worker_report = _Event(), _Event(), _Event()


class _Env:
    def __init__(self) -> None:
        self.events = _Events()


def test_attach_books_successful_calls_and_ships_deltas() -> None:
    worker_env, master_env = _Env(), _Env()
    worker, master = Ledger(), Ledger()
    attach(worker_env, worker)
    attach(master_env, master)
    ctx = {"records": 42, "department": "mzj", "group": "basic", "topic": "t", "action": "export"}
    worker_env.events.request.fire(context=ctx, exception=None, name="export", response_time=3)
    worker_env.events.request.fire(context=ctx, exception=RuntimeError("502"), name="export")
    worker_env.events.request.fire(context={}, exception=None, name="catalog search")
    assert worker.total == 42
    assert worker.calls == 1
    data: dict = {}
    worker_env.events.report_to_master.fire(client_id="w1", data=data)
    master_env.events.worker_report.fire(client_id="w1", data=data)
    master_env.events.worker_report.fire(client_id="w2", data={"stats": []})  # no ledger
    assert REPORT_KEY in data
    assert master.total == 42
    assert master.departments == {"mzj": 42}
    assert worker.total == 0
