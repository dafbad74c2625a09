"""A provision the peer refuses is not asked again every tick: the background pass waits
a doubling time (up to a ceiling) before asking again, an unreachable peer is asked next
tick, success clears the wait, and the operator's pull asks every one at once."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace
from typing import Any

import pytest

from exchange.broker.errors import client_error
from exchange.federation import runtime
from exchange.federation.connection import SYNC_SECONDS
from exchange.federation.peer import PeerUnreachable
from exchange.federation.receiving import RETRY_CEILING
from exchange.federation.runtime import Federation


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(runtime.time, "monotonic", clock)
    return clock


def _federation(
    outcomes: dict[str, Any], alone: dict[str, list[bool]] | None = None
) -> tuple[Federation, list[str]]:
    """A Federation with only what provision_all uses: provisions whose pulls give
    ``outcomes`` in turn (a number of records, or an exception raised); ``alone`` notes
    whether each pull was told that no other provision waits."""
    fed = Federation.__new__(Federation)
    fed._pulling = asyncio.Lock()
    fed._retry = {}
    fed.provision_errors = {}
    fed.provisions_behind = set()
    asked: list[str] = []
    alone_of = alone
    mounts = [SimpleNamespace(resource_code=code) for code in outcomes]
    turns = {code: iter(seq) for code, seq in outcomes.items()}

    async def pull(mount: Any, *, alone: bool = False) -> int:
        asked.append(mount.resource_code)
        if alone_of is not None:
            alone_of.setdefault(mount.resource_code, []).append(alone)
        got = next(turns[mount.resource_code])
        if isinstance(got, Exception):
            raise got
        return int(got)

    fed._provisions = lambda: [(m, 0, None) for m in mounts]  # type: ignore[method-assign]
    fed.pull = pull  # type: ignore[method-assign]
    return fed, asked


def test_a_refused_provision_waits_longer_each_time(clock: _Clock) -> None:
    refused = client_error("not_exportable", "no export", 409)
    fed, asked = _federation({"bad": itertools.repeat(refused), "good": itertools.repeat(5)})

    waits = []
    for _ in range(8):
        before = asked.count("bad")
        assert await_(fed.provision_all())["good"] == 5  # the other goes on every tick
        if asked.count("bad") > before:
            waits.append(fed._retry["bad"][1] - clock.now)
        clock.now += SYNC_SECONDS
    assert waits[:3] == [SYNC_SECONDS, 2 * SYNC_SECONDS, 4 * SYNC_SECONDS]
    # Asked at ticks 0, 1, 3, 7: not at every one of the 8 ticks.
    assert asked.count("bad") == 4
    assert asked.count("good") == 8
    assert "no export" in (fed.provision_errors["bad"] or "")
    # The wait stops growing at the ceiling.
    fed._retry["bad"] = (30, 0.0)
    await_(fed.provision_all())
    assert fed._retry["bad"][1] - clock.now == RETRY_CEILING
    # The operator's pull asks it at once, whatever the wait.
    n = asked.count("bad")
    await_(fed.provision_all(now=True))
    assert asked.count("bad") == n + 1


def test_success_clears_the_wait_and_an_unreachable_peer_is_asked_next_tick(
    clock: _Clock,
) -> None:
    refused = client_error("not_exportable", "no export", 409)
    fed, asked = _federation(
        {"t": [refused, 3, PeerUnreachable("down"), PeerUnreachable("down"), 1]}
    )
    await_(fed.provision_all())
    assert "t" in fed._retry
    clock.now += SYNC_SECONDS
    assert await_(fed.provision_all()) == {"t": 3}
    assert fed._retry == {}
    assert fed.provision_errors["t"] is None
    for _ in range(3):  # down twice, then back: asked every tick
        clock.now += SYNC_SECONDS
        await_(fed.provision_all())
    assert asked == ["t"] * 5
    assert fed._retry == {}


def test_only_the_last_provision_due_may_go_on_past_its_slice(clock: _Clock) -> None:
    """A pull goes on past its slice only when no provision after it in the pass waits
    for its turn (one waiting out a refusal does not), none before it was left behind on
    its slice, and it is not the operator's pull (which answers when its slice ends)."""
    refused = client_error("not_exportable", "no export", 409)
    alone: dict[str, list[bool]] = {}
    fed, _ = _federation(
        {"a": itertools.repeat(5), "b": itertools.repeat(5), "c": itertools.repeat(refused)},
        alone,
    )
    await_(fed.provision_all())  # c is due: only c, the last, is alone
    assert alone == {"a": [False], "b": [False], "c": [True]}
    clock.now += SYNC_SECONDS / 2  # c waits out its refusal: b is the last one due
    await_(fed.provision_all())
    assert alone == {"a": [False, False], "b": [False, True], "c": [True]}
    await_(fed.provision_all(now=True))  # the operator's pull: never alone
    assert [v[-1] for v in alone.values()] == [False, False, False]
    # a stopped on its slice (left behind): b, after it, must leave it a turn.
    pull = fed.pull

    async def a_left_behind(mount: Any, *, alone: bool = False) -> int:
        if mount.resource_code == "a":
            fed.provisions_behind.add("a")
        return int(await pull(mount, alone=alone))

    fed.pull = a_left_behind  # type: ignore[method-assign]
    await_(fed.provision_all())
    assert alone["b"][-1] is False


def await_(coro: Any) -> Any:
    return asyncio.run(coro)
