"""A serialised export chunk as one block of NDJSON: its source rows, the block, and where
each line ends.

A cold chunk is derived in an export worker process and sent to the departments' server.
It travelled as a list of one ``bytes`` per line: split out of the block the builders
write (``bytes.splitlines``, ~1 µs a household line), pickled and unpickled one object per
line (the unpickling in the server, beside its event loop) and joined back into one block
there, which is what an export sends. As a :class:`Block` a chunk is three objects
whatever its length; its lines are cut out only where one is wanted alone: a page that
starts or ends inside the chunk, a changed record spliced in, a grant's items cut the
per-line way.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from exchange.departments.prng_arrays import I64

__all__ = ["Blob", "Block", "cut_at", "line_ends"]

#: A block's NDJSON: bytes, or a read-only view of memory shared with the export worker
#: that wrote it (:func:`exchange.departments.exporter._unspill`), sent as it is.
Blob = bytes | memoryview


def line_ends(blob: Blob) -> I64:
    """Where each line of NDJSON ends (the offset after its newline): JSON text holds no
    raw line break, so every newline ends a record."""
    out: I64 = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == 10) + 1
    return out


def cut_at(rows: I64, first: int, count: int, size: int) -> list[tuple[int, int]]:
    """The positions ``(lo, hi)`` in ``rows`` (source rows, in order) of each of ``count``
    runs of ``size`` source rows from row ``first``: where a span is cut into chunks."""
    bounds = np.searchsorted(rows, first + size * np.arange(count + 1, dtype=np.int64), "left")
    return list(pairwise(bounds.tolist()))


class Block:
    """Records of consecutive source rows (in row order) as NDJSON: ``rows[i]`` is the
    source row of the line ``blob[ends[i - 1]:ends[i]]``."""

    __slots__ = ("_ends", "_lines", "blob", "rows")

    def __init__(self, rows: I64, blob: Blob, ends: I64 | None = None) -> None:
        self.rows = rows
        self.blob = blob
        self._ends = ends
        self._lines: list[bytes] | None = None

    @property
    def ends(self) -> I64:
        """Where each line ends, found when first needed: a chunk streamed whole never
        needs them (only a page that starts or ends inside it, a splice or its lines)."""
        if self._ends is None:
            self._ends = line_ends(self.blob)
        return self._ends

    @property
    def found_ends(self) -> I64 | None:
        """The line ends if found already (sent along with a chunk, never found for it)."""
        return self._ends

    @classmethod
    def of_blob(cls, rows: Sequence[int] | I64, blob: Blob) -> Block:
        """The block of lines ``blob`` (one per row, in order)."""
        return cls(np.asarray(rows, dtype=np.int64), blob)

    @classmethod
    def of_lines(cls, rows: Sequence[int], lines: Sequence[bytes]) -> Block:
        """The block of these lines (each ending in its newline)."""
        ends = np.cumsum(np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)))
        block = cls(np.asarray(rows, dtype=np.int64), b"".join(lines), ends)
        block._lines = list(lines)
        return block

    def __len__(self) -> int:
        return len(self.rows)

    def __reduce__(self) -> tuple[Any, ...]:
        # The arrays and the block as they are (the lines, if cut, are not sent along).
        return (Block, (self.rows, bytes(self.blob), self._ends))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Block):
            return NotImplemented
        return (
            self.blob == other.blob
            and np.array_equal(self.rows, other.rows)
            and np.array_equal(self.ends, other.ends)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Block({len(self)} rows, {len(self.blob)} bytes)"

    @property
    def row_list(self) -> list[int]:
        out: list[int] = self.rows.tolist()
        return out

    @property
    def lines(self) -> list[bytes]:
        """Each line on its own (cut once, when first asked for)."""
        if self._lines is None:
            blob, ends = self.blob, self.ends.tolist()
            self._lines = [bytes(blob[a:b]) for a, b in pairwise([0, *ends])]
        return self._lines

    def _at(self, row: int) -> int:
        """Byte offset of the first line of a source row ``>= row``."""
        i = int(np.searchsorted(self.rows, row, side="left"))
        return int(self.ends[i - 1]) if i else 0

    def between(self, lo: int, hi: int) -> Blob:
        """The lines of the source rows ``lo <= row < hi``, joined."""
        return self.blob[self._at(lo) : self._at(hi)]

    def cut(self, first: int, count: int, size: int) -> list[Block]:
        """The block cut into ``count`` blocks of ``size`` source rows from row ``first``
        (a worker's span into its chunks): each the block of those rows alone."""
        out: list[Block] = []
        ends = self.ends
        for lo, hi in cut_at(self.rows, first, count, size):
            a = int(ends[lo - 1]) if lo else 0
            b = int(ends[hi - 1]) if hi else 0
            out.append(Block(self.rows[lo:hi].copy(), self.blob[a:b], ends[lo:hi] - a))
        return out
