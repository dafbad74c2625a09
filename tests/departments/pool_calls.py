"""Calls the pool tests give their workers (a spawned process imports them by name)."""

from __future__ import annotations

import os
import time

offset = 0


def set_offset(value: int) -> None:
    global offset
    offset = value


def add(x: int) -> tuple[int, int]:
    return os.getpid(), x + offset


def fail(message: str) -> None:
    raise ValueError(message)


def nap(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def unpicklable() -> object:
    return lambda: None


def refuse() -> None:
    raise RuntimeError("no city here")


def refuse_in_turn(mark: str) -> None:
    """The first worker to get here refuses a second later, the next at once: the second's
    end is read before the first's answer (whose start then fails as 'worker ended')."""
    try:
        os.close(os.open(mark, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        raise RuntimeError("no city here") from None
    time.sleep(1.0)
    raise RuntimeError("no city here either")


def _explode() -> None:
    raise ValueError("cannot be rebuilt here")


class Poison:
    """Pickles fine; unpickling it raises (as a class the server cannot import would)."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_explode, ())


def poison() -> Poison:
    return Poison()
