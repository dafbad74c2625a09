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
