"""What a process keeps with a bound, and its resident memory, in /metrics (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import OPERATOR

from exchange.app import create_app
from exchange.audit.writer import MAX_BACKLOG
from exchange.broker.service import ROUTE_CACHE
from exchange.config import Settings
from exchange.context import AppContext
from exchange.memory import MemoryBounds, resident


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_budgets_are_the_bound_times_the_entry_or_the_byte_bound() -> None:
    bounds = MemoryBounds()
    held = [1, 2, 3]
    bounds.declare("b.entries", "a list", size=lambda: len(held), limit=10, entry_bytes=100)
    bounds.declare("a.bytes", "a buffer", size=lambda: 512, limit=4096)
    assert [(b.name, b.unit, b.limit, b.budget) for b in bounds] == [
        ("a.bytes", "bytes", 4096, 4096),
        ("b.entries", "entries", 10, 1000),
    ]
    assert bounds.declared_bytes == 5096
    held.append(4)
    assert [b.size() for b in bounds] == [512, 4]
    bounds.declare("a.bytes", "a smaller buffer", size=lambda: 0, limit=1024)  # replaced
    assert bounds.declared_bytes == 2024


def test_metrics_show_each_bound_beside_its_size_and_the_resident_memory(
    client: TestClient, ctx: AppContext
) -> None:
    text = client.get("/metrics", headers=OPERATOR).text
    found = samples(text)

    def value(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert value("exchange_bounded_limit", structure="broker.routes", unit="entries") == ROUTE_CACHE
    assert value("exchange_bounded_limit", structure="audit.backlog", unit="entries") == MAX_BACKLOG
    assert value("exchange_bounded_size", structure="audit.backlog", unit="entries") >= 0
    budgets = [v for (name, _), v in found.items() if name == "exchange_bounded_budget_bytes"]
    assert value("exchange_memory_declared_bytes") == sum(budgets) > 0
    assert ctx.memory is not None
    declared = {b.name for b in ctx.memory}
    assert ("sqlite.page_cache" in declared) == (ctx.db.engine.dialect.name == "sqlite")
    if Path("/proc/self/status").exists():
        assert value("exchange_memory_resident_bytes", part="total") > 0
        assert value("exchange_memory_resident_bytes", part="anonymous") > 0


def test_resident_reads_this_process() -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("Linux /proc only")
    before = resident()
    assert before["total"] >= before["anonymous"] > 0
    block = bytearray(32 << 20)  # touched: 32 MB more anonymous memory
    after = resident()
    assert after["anonymous"] - before["anonymous"] >= 16 << 20
    del block


def test_in_process_departments_declare_their_caches(settings: Settings) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the departments' caches do not depend on the database")
    app = create_app(settings.model_copy(update={"mock_departments": True}))
    ctx: AppContext = app.state.ctx
    try:
        assert ctx.memory is not None
        assert ctx.departments is not None
        bounds = {b.name: b for b in ctx.memory}
        assert {
            "departments.city.people",
            "departments.city.enterprises",
            "departments.export_chunks",
            "departments.nonces",
        } <= set(bounds)
        people = bounds["departments.city.people"]
        before = people.size()
        ctx.departments.city.person(before + 7)  # one more record derived
        assert people.size() == before + 1
        assert people.size() <= people.limit
    finally:
        ctx.db.dispose()
