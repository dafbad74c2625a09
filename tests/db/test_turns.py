"""Background writers of a SQLite database take turns in the order they asked."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from exchange.db.engine import Database
from exchange.db.turns import WriteTurns


def _wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_turns_are_served_first_come_first_served() -> None:
    turns = WriteTurns()
    order: list[int] = []

    def writer(n: int) -> None:
        with turns.turn():
            order.append(n)

    threads = []
    with turns.turn():
        # Each writer asks while the turn is held, one after the other.
        for n in range(5):
            t = threading.Thread(target=writer, args=(n,))
            t.start()
            threads.append(t)
            _wait_for(lambda n=n: turns.waiting == n + 2)
        assert order == []
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]
    assert turns.waiting == 0


def test_a_turn_is_released_when_its_block_raises() -> None:
    turns = WriteTurns()
    try:
        with turns.turn():
            raise RuntimeError("commit failed")
    except RuntimeError:
        pass
    with turns.turn():  # not stuck behind the failed writer
        assert turns.waiting == 1


def test_only_sqlite_databases_take_turns(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/t.db")
    try:
        with db.writing():
            assert db._turns.waiting == 1
        assert db._turns.waiting == 0
    finally:
        db.dispose()
