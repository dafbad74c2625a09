"""JSON values of a whole column as one byte matrix, so a cold export writes its NDJSON
without making a Python object per value.

A column of ``n`` values is a ``(n, width)`` ``uint8`` matrix: row ``i`` holds the JSON of
value ``i`` (UTF-8), with NUL bytes as padding anywhere in the row. JSON text never holds
a raw NUL (a string's U+0000 is written ``\\u0000``), so the bytes of a record are its
row's non-zero bytes in order, and a whole block of NDJSON is one boolean compression of
the fields' matrices laid side by side (:func:`ndjson`). Every fragment is built over
arrays: a gather from a table of encoded values (:class:`Vocab`), decimal digits
(:func:`digits`), literal bytes, and the row by row choice between two (:func:`where`).

Why: a cold export spent most of its CPU making Python strings (f-strings, ``tolist``,
list indexing) and then one ``orjson.dumps`` per record; here the work per record is a
few NumPy passes over its bytes. Every table entry is encoded by ``orjson`` itself, so the
bytes are the ones the single lookup serialises (the tests compare them record by record).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from exchange.departments import native
from exchange.departments.prng_arrays import BOOL, I64

__all__ = [
    "U8",
    "Vocab",
    "ascii_text",
    "compact",
    "compact_numpy",
    "digits",
    "hundredths",
    "iso_dates",
    "join",
    "ndjson",
    "ndjson_array",
    "py_values",
    "repeat",
    "text",
    "where",
]

U8 = npt.NDArray[np.uint8]
#: a piece of a value: a matrix of ``n`` rows, or the same bytes on every row
Part = U8 | bytes


def _width(parts: Sequence[Part]) -> int:
    """The bytes of a row of ``parts``, padding included."""
    return sum(len(p) if isinstance(p, bytes) else p.shape[1] for p in parts)


def join(n: int, *parts: Part) -> U8:
    """The parts one after another on each row (constants as they are)."""
    # Every constant written into one row first, and that row into every row of the
    # matrix at once; then each matrix into its columns. Copying a constant a few bytes
    # wide row by row cost as much as a matrix's copy (NumPy's loop per row), a chunk's
    # NDJSON joins a dozen of them (joining a household table's chunks alone: 25 -> 18 ms
    # per 100,000 rows; its whole derivation 4-5 % less).
    width = _width(parts)
    row = np.zeros(width, dtype=np.uint8)
    mats: list[tuple[int, U8]] = []
    at = 0
    for p in parts:
        if isinstance(p, bytes):
            row[at : at + len(p)] = np.frombuffer(p, dtype=np.uint8)
            at += len(p)
        else:
            mats.append((at, p))
            at += p.shape[1]
    out: U8 = np.empty((n, width), dtype=np.uint8)
    if len(mats) < len(parts):
        out[:] = row
    for at, m in mats:
        out[:, at : at + m.shape[1]] = m
    return out


def text(n: int, *parts: Part) -> U8:
    """A JSON string of the parts (each already JSON string content: no quote, no escape
    needed; :meth:`Vocab.inner` and the names' character tables make such parts)."""
    return join(n, b'"', *parts, b'"')


def ascii_text(chars: U8) -> U8:
    """A JSON string of each row of printable ASCII characters (ID numbers, codes)."""
    return text(len(chars), chars)


def repeat(value: Any, n: int) -> U8:
    """The JSON of one value on each of ``n`` rows."""
    return join(n, orjson.dumps(value))


def hundredths(values: I64) -> U8:
    """The JSON number ``round(v / 100, 2)`` of each non-negative integer ``v``, as Python
    and orjson print it (shortest form: ``35.0``, ``35.5``, ``35.25``)."""
    v = np.asarray(values, dtype=np.int64)
    frac = v % 100
    two = digits(frac, 2)
    # A trailing zero is dropped, but one digit always stays ("35.0").
    two[:, -1] = np.where((frac % 10 == 0), 0, two[:, -1])
    return join(len(v), digits(v // 100), b".", two)


def where(cond: BOOL, a: U8, b: U8) -> U8:
    """Row by row ``a`` where ``cond``, else ``b`` (the narrower padded with NULs)."""
    width = max(a.shape[1], b.shape[1])
    n = len(cond)
    out = np.zeros((n, width), dtype=np.uint8)
    out[:, : a.shape[1]] = a
    keep = ~cond
    out[keep, : b.shape[1]] = b[keep]
    out[keep, b.shape[1] :] = 0
    return out


_POW10 = 10 ** np.arange(19, dtype=np.int64)
# Every number below 10,000 as four ASCII digits: a column's digits are gathered four at a
# time from it, where dividing them out one place at a time (int64 division, the slowest
# NumPy arithmetic) cost ~400 ns a 12-digit value.
_QUAD = 10_000
_QUADS: U8 = (48 + (np.arange(_QUAD)[:, None] // np.array([1000, 100, 10, 1])) % 10).astype(
    np.uint8
)


@lru_cache(maxsize=4)
def _short(width: int) -> U8:
    """``f"{k:0{width}d}"`` of every ``k`` below 10,000, right-aligned in four bytes after
    NUL padding (one gather writes a column of short numbers whole)."""
    out = _QUADS.copy()
    lead = 4 - np.maximum(width, _length(np.arange(_QUAD, dtype=np.int64)))
    out[np.arange(4)[None, :] < lead[:, None]] = 0
    return out


def digits(values: I64, width: int = 1) -> U8:
    """Decimal digits of each non-negative integer, at least ``width`` of them (zeros in
    front), right-aligned after NUL padding: ``f"{v:0{width}d}"``."""
    v = np.asarray(values, dtype=np.int64)
    n = len(v)
    if n and int(v.min()) < 0:
        raise ValueError("digits() writes non-negative integers only")
    top = int(v.max()) if n else 0
    count = max(width, len(str(top)))
    if count <= 4:
        short: U8 = _short(width)[v][:, 4 - count :]
        return short
    groups = -(-count // 4)
    out = np.empty((n, 4 * groups), dtype=np.uint8)
    rest = v
    for g in reversed(range(groups)):
        if g:
            rest, quad = np.divmod(rest, _QUAD)
        else:
            quad = rest
        out[:, 4 * g : 4 * g + 4] = _QUADS[quad]
    out = out[:, 4 * groups - count :]
    if count > width:
        # Leading zeros past ``width`` are padding.
        significant = np.maximum(width, _length(v))
        out[np.arange(count)[None, :] < (count - significant)[:, None]] = 0
    return out


def _length(v: I64) -> I64:
    """Decimal digits of each non-negative integer (1 for 0)."""
    out: I64 = np.searchsorted(_POW10, v, side="right").astype(np.int64)
    return np.maximum(out, 1)


class Vocab:
    """A fixed table of values, each encoded once: a column of picks from it is a gather."""

    def __init__(self, values: Sequence[Any]) -> None:
        encoded = [orjson.dumps(v) for v in values]
        self.json = _padded(encoded)
        # String content without its quotes, for a value spliced into a longer string.
        self.raw = _padded([e[1:-1] if e[:1] == b'"' else e for e in encoded])

    def take(self, idx: I64) -> U8:
        """The JSON of the value at each index."""
        out: U8 = self.json[idx]
        return out

    def inner(self, idx: I64) -> U8:
        """The string content (no quotes) of the value at each index."""
        out: U8 = self.raw[idx]
        return out


def _padded(encoded: list[bytes]) -> U8:
    width = max((len(e) for e in encoded), default=0)
    out = np.zeros((len(encoded), max(width, 1)), dtype=np.uint8)
    for i, e in enumerate(encoded):
        out[i, : len(e)] = np.frombuffer(e, dtype=np.uint8)
    return out


def py_values(values: Sequence[Any]) -> U8:
    """The JSON of each Python value (``orjson.dumps`` one by one): for a column that is
    no pick from a table (floats rounded by Python, text from elsewhere)."""
    encoded = [orjson.dumps(v) for v in values]
    if not encoded:
        return np.zeros((0, 1), dtype=np.uint8)
    out: U8 = np.array(encoded, dtype=bytes).view(np.uint8).reshape(len(encoded), -1)
    return out


def ndjson(n: int, fields: Sequence[tuple[str, U8]]) -> bytes:
    """The records' NDJSON: ``{"field":value,…}`` and a newline per row, in order."""
    return ndjson_array(n, fields).tobytes()


def ndjson_array(n: int, fields: Sequence[tuple[str, U8]]) -> U8:
    """:func:`ndjson`'s bytes as the array they are made in (a worker writes them to its
    span's file from it: copying them into ``bytes`` first cost a twentieth of a cold
    household chunk)."""
    parts: list[Part] = []
    for k, (name, value) in enumerate(fields):
        parts.append((b"," if k else b"{") + orjson.dumps(name) + b":")
        parts.append(value)
    parts.append(b"}\n")
    return compact(n, parts)


def compact(n: int, parts: Sequence[Part]) -> U8:
    """Each row's parts one after another, without their NUL padding, row after row: the
    compiled assembly when the package was built with it, else :func:`compact_numpy`."""
    kernels = native.KERNELS
    if kernels is None:
        return compact_numpy(n, parts)
    # 16 bytes of slack: the assembly writes sixteen bytes at a time. The array keeps its
    # padded size behind the view (a few per cent: a span's bytes are written to its file
    # and dropped, or kept as one chunk's in a process without workers).
    out: U8 = np.empty(n * _width(parts) + 16, dtype=np.uint8)
    return out[: kernels.compact(n, parts, out)]


def compact_numpy(n: int, parts: Sequence[Part]) -> U8:
    """:func:`compact` in NumPy: the parts joined into one matrix, then its non-NUL bytes
    (three passes over the bytes where the compiled assembly makes one)."""
    lines = join(n, *parts)
    out: U8 = lines[lines != 0]
    return out


_EPOCH = 719163  # date(1970, 1, 1).toordinal()
# The days an export writes as dates (births from 1930, registrations, expiries decades
# ahead) lie in these years; the JSON of each is made once per process and gathered.
_DATES_FROM = 693596  # date(1900, 1, 1).toordinal()
_DATES_TO = 767376  # date(2101, 1, 1).toordinal()


@lru_cache(maxsize=1)
def _date_table() -> U8:
    """``"YYYY-MM-DD"`` (with its quotes) of every day from 1900 to 2100, by ordinal minus
    ``_DATES_FROM``: ``np.datetime_as_string`` cost ~700 ns a value, a gather ~10 ns."""
    return _iso_dates(np.arange(_DATES_FROM, _DATES_TO, dtype=np.int64))


def iso_dates(ordinals: I64) -> U8:
    """A JSON string ``"YYYY-MM-DD"`` of each day (``date.fromordinal(o).isoformat()``)."""
    o = np.asarray(ordinals, dtype=np.int64)
    if not len(o) or int(o.min()) < _DATES_FROM or int(o.max()) >= _DATES_TO:
        return _iso_dates(o)
    out: U8 = _date_table()[o - _DATES_FROM]
    return out


def _iso_dates(ordinals: I64) -> U8:
    stamps = (np.asarray(ordinals, dtype=np.int64) - _EPOCH).astype("datetime64[D]")
    chars = np.datetime_as_string(stamps).astype("S10").view(np.uint8)
    return ascii_text(chars.reshape(len(stamps), 10))
