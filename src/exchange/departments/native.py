"""The departments' compiled kernels (``_kernels.c``), when this install built them.

``setup.py`` builds them where a C compiler is found; an install without one goes on, and
each caller keeps its NumPy way (the same bytes and numbers, more slowly). Callers read
:data:`KERNELS` when called, so a test can take the NumPy way by setting it to ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["KERNELS", "Kernels"]


class Kernels(Protocol):
    """What ``_kernels`` provides (its docstrings say more)."""

    def compact(self, n: int, parts: Sequence[object], out: object, /) -> int: ...

    def splitmix(self, seeds: object, out: object, /) -> None: ...

    def mix(self, out: object, parts: Sequence[object], /) -> None: ...

    def feistel(
        self, x: object, out: object, keys: Sequence[int], half: int, domain: int, backward: bool, /
    ) -> None: ...


def _load() -> Kernels | None:
    try:
        from exchange.departments import _kernels
    except ImportError:  # installed without a C compiler
        return None
    return _kernels


KERNELS: Kernels | None = _load()
