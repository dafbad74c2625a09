"""The city's randomness over arrays: :mod:`~.prng`'s hash, PRNG draws and keyed
permutation on NumPy arrays of unsigned 64-bit integers (NumPy wraps on overflow exactly as
the ``& M64`` of the scalar code), for deriving many people or enterprises at once."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from exchange.departments import native
from exchange.departments.prng import Feistel

__all__ = [
    "BOOL",
    "I64",
    "U64",
    "between",
    "chance",
    "chance_each",
    "distinct",
    "feistel_forward",
    "feistel_inverse",
    "mix",
    "splitmix_draws",
]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]


def distinct(values: I64) -> I64:
    """The distinct values in order, as ``np.unique(values)`` gives them, by one sort.

    NumPy 2's ``unique`` hashes the values first and sorts what is left: on a chunk's few
    thousand couples, mostly distinct, that measured ~4× a sort (274 against 64 µs for
    3,000 values). Hashing wins only when most values repeat (5,000 values of 200: 73
    against 111 µs); the callers here pass people or their couples, which seldom repeat.
    Values already in order (a range of rows) are not sorted again.
    """
    in_order = len(values) < 2 or bool((values[1:] >= values[:-1]).all())
    ordered: I64 = values if in_order else np.sort(values)
    keep = np.empty(len(ordered), dtype=np.bool_)
    keep[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    out: I64 = ordered[keep]
    return out


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_M64 = (1 << 64) - 1


def _contiguous(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The array as the kernels read it: one run of 64-bit integers (signed ones are taken
    as their bits, as ``astype(np.uint64)`` takes them)."""
    if values.dtype.itemsize == 8 and values.dtype.kind in "iu":
        return np.ascontiguousarray(values)
    return np.ascontiguousarray(values, dtype=np.uint64)


def _u64(value: int | U64, n: int) -> U64:
    if isinstance(value, int):
        return np.full(n, value & _M64, dtype=np.uint64)
    return value.astype(np.uint64, copy=False)


def mix(n: int, *parts: int | U64) -> U64:
    """:func:`exchange.departments.city.mix` over arrays of length ``n`` (ints broadcast)."""
    kernels = native.KERNELS
    if kernels is not None:
        out: U64 = np.empty(n, dtype=np.uint64)
        kernels.mix(out, [p if isinstance(p, int) else _contiguous(p) for p in parts])
        return out
    h = np.full(n, _GOLDEN, dtype=np.uint64)
    for p in parts:
        h = (h ^ _u64(p, n)) * _C1
        h ^= h >> np.uint64(31)
        h = (h + _GOLDEN) * _C2
        h ^= h >> np.uint64(29)
    return h


def splitmix_draws(seeds: U64, k: int) -> U64:
    """The first ``k`` values of :class:`Rng` seeded with each of ``seeds``: shape (k, n).

    splitmix64's state only ever adds the golden gamma, so draw ``j`` is a function of
    ``seed + j * gamma`` alone and every draw of every stream is computed at once.
    """
    kernels = native.KERNELS
    if kernels is not None:
        drawn: U64 = np.empty((k, len(seeds)), dtype=np.uint64)
        kernels.splitmix(_contiguous(seeds), drawn)
        return drawn
    steps = np.arange(1, k + 1, dtype=np.uint64)[:, None] * _GOLDEN
    z = seeds[None, :] + steps
    z = (z ^ (z >> np.uint64(30))) * _C1
    z = (z ^ (z >> np.uint64(27))) * _C2
    out: U64 = z ^ (z >> np.uint64(31))
    return out


def _below_threshold(p: float) -> np.uint64 | None:
    """``Rng.chance(p)`` is ``draw < p * 2**64`` with an exact int/float comparison: for an
    integer draw that is ``draw < ceil(p * 2**64)``. ``None``: always true."""
    limit = math.ceil(p * 18446744073709551616.0)
    return None if limit > _M64 else np.uint64(limit)


def chance(draw: U64, p: float) -> BOOL:
    limit = _below_threshold(p)
    if limit is None:
        return np.ones(draw.shape, dtype=np.bool_)
    return draw < limit


def chance_each(draw: U64, p: npt.NDArray[np.float64]) -> BOOL:
    """:meth:`Rng.chance` with a probability per element (each below 1)."""
    limit = np.ceil(p * 18446744073709551616.0)  # exact: an integral float below 2**64
    return draw < limit.astype(np.uint64)


def between(draw: U64, lo: I64, hi: I64) -> I64:
    """:meth:`Rng.between`: ``lo + draw % (hi - lo + 1)`` (where ``hi >= lo``)."""
    span = np.maximum(hi - lo + 1, 1).astype(np.uint64)
    out: I64 = lo + (draw % span).astype(np.int64)
    return out


def _rounds(cur: U64, perm: Feistel, backward: bool) -> U64:
    """The Feistel network's four rounds over every element, in place over three
    buffers (each round as the scalar ``_f``: xor the key, multiply, fold, multiply,
    shift, mask): a round made six arrays of temporaries, and a people table permutes
    each person once or twice."""
    half, mask = np.uint64(perm.half), np.uint64(perm.mask)
    left, right = cur >> half, cur & mask
    if backward:
        # The inverse runs the rounds in reverse with the halves' roles swapped.
        left, right = right, left
    f, fold = np.empty_like(left), np.empty_like(left)
    for k in reversed(perm.keys) if backward else perm.keys:
        np.bitwise_xor(right, np.uint64(k), out=f)
        f *= _GOLDEN
        np.right_shift(f, np.uint64(32), out=fold)
        f ^= fold
        f *= _C1
        f >>= np.uint64(19)
        f &= mask
        f ^= left
        # (left, right) <- (right, left ^ f(right)); the old left's buffer is free.
        left, right, f = right, f, left
    if backward:
        left, right = right, left
    out: U64 = (left << half) | right
    return out


def _walk(perm: Feistel, x: U64, backward: bool) -> U64:
    """Cycle walking: the rounds again for the elements that fell outside the domain.

    The first pass's result is the answer for every element inside the domain; only the
    others are indexed, gathered and scattered (a pass over all of them through index
    arrays cost a fifth of the walk, measured on 10,000 elements)."""
    kernels = native.KERNELS
    if kernels is not None:
        walked: U64 = np.empty(len(x), dtype=np.uint64)
        kernels.feistel(_contiguous(x), walked, perm.keys, perm.half, perm.domain, backward)
        return walked
    domain = np.uint64(perm.domain)
    out = _rounds(x.astype(np.uint64, copy=False), perm, backward)
    todo = np.flatnonzero(out >= domain)
    cur = out[todo]
    while len(todo):
        cur = _rounds(cur, perm, backward)
        inside = cur < domain
        out[todo[inside]] = cur[inside]
        todo, cur = todo[~inside], cur[~inside]
    return out


def feistel_forward(perm: Feistel, x: U64) -> U64:
    """:meth:`Feistel.forward` of every element (cycle walking until inside the domain)."""
    return _walk(perm, x, backward=False)


def feistel_inverse(perm: Feistel, y: U64) -> U64:
    """:meth:`Feistel.inverse` of every element."""
    return _walk(perm, y, backward=True)
