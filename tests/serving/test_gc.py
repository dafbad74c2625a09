"""The serving process's collector settings (``exchange.app.tune_gc``): applied when on,
the interpreter's own when off."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from exchange.app import tune_gc
from exchange.config import Settings


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record collect/freeze calls instead of freezing the test process's heap, and put
    the real thresholds back afterwards (other tests share this interpreter)."""
    calls: list[str] = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append("collect") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield calls
    finally:
        gc.set_threshold(*saved)


def test_defaults_freeze_and_keep_the_interpreters_thresholds(collector: list[str]) -> None:
    tune_gc(Settings())
    assert gc.get_threshold() == (700, 10, 10)
    # Collected first, so the garbage of start-up is not frozen with the live heap.
    assert collector == ["collect", "freeze"]


def test_on_raises_gen0_only(collector: list[str]) -> None:
    tune_gc(Settings(gc_gen0_threshold=50_000))
    assert gc.get_threshold() == (50_000, 10, 10)
    assert collector == ["collect", "freeze"]


def test_threshold_from_the_environment_keeps_older_generations(
    collector: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXCHANGE_GC_GEN0_THRESHOLD", "12345")
    monkeypatch.setenv("EXCHANGE_GC_FREEZE", "false")
    tune_gc(Settings())
    assert gc.get_threshold() == (12_345, 10, 10)
    assert collector == []


def test_off_leaves_the_interpreter_alone(collector: list[str]) -> None:
    tune_gc(Settings(gc_gen0_threshold=0, gc_freeze=False))
    assert gc.get_threshold() == (700, 10, 10)
    assert collector == []


def test_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="gc_gen0_threshold"):
        Settings(gc_gen0_threshold=-1)
