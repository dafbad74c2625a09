"""A block of records held as columns (one list or byte matrix per field), and its NDJSON
lines.

The export builders of :mod:`exchange.departments.tables` make each field of a block of
records as one column: a Python list of values, or already the JSON of every value as a
byte matrix (:mod:`exchange.departments.jsonbytes`). A table of lists writes one line per
record with ``orjson.dumps`` of the record; a table with byte-matrix columns writes all its
lines at once from the matrices (lists among them encoded value by value first), which
makes no Python object per value at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from exchange.departments import jsonbytes
from exchange.departments.blocks import Block, cut_at

__all__ = ["Column", "Record", "Table"]

Record = dict[str, Any]
#: one value per row: the values, or the JSON of each (a ``jsonbytes`` matrix)
Column = list[Any] | jsonbytes.U8


@dataclass(slots=True)
class Table:
    """Records of a range of source rows, one column per field (in the generator's order)."""

    rows: list[int]
    columns: dict[str, Column]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def encoded(self) -> bool:
        """Whether some column is held as JSON bytes (then records are read back from the
        lines, which are what an export sends)."""
        return any(isinstance(c, np.ndarray) for c in self.columns.values())

    def records(self) -> Iterator[tuple[int, Record]]:
        """(source row, record) of each record, in order: what ``export_rows`` yields."""
        if self.encoded:
            loads = orjson.loads
            lines = self.lines(tuple(self.columns))
            yield from zip(self.rows, (loads(ln) for ln in lines), strict=True)
            return
        names = tuple(self.columns)
        for row, values in zip(self.rows, zip(*self.columns.values(), strict=True), strict=True):
            yield row, dict(zip(names, values, strict=True))

    def lines(self, fields: tuple[str, ...]) -> list[bytes]:
        """Each record projected to ``fields`` as one NDJSON line (see :meth:`block`)."""
        return self.block(fields).lines

    def block(self, fields: tuple[str, ...]) -> Block:
        """The records projected to ``fields`` as one block of NDJSON, byte for byte what
        the single lookup serialises: all fields in the generator's order (the lookup
        serves the record itself), fewer in ``fields``' order."""
        fields = self._order(fields)
        if self.encoded:
            if not self.rows:
                return Block.of_blob([], b"")
            blob = jsonbytes.ndjson(len(self.rows), [(f, self._json(f)) for f in fields])
            return Block.of_blob(self.rows, blob)
        dumps = orjson.dumps
        # Every column has one value per row (the builders make them so): zip unchecked,
        # as the check costs a tenth of the line.
        cols = [self.columns[f] for f in fields]
        lines = [dumps(dict(zip(fields, values))) + b"\n" for values in zip(*cols)]  # noqa: B905
        return Block.of_lines(self.rows, lines)

    def blocks(self, fields: tuple[str, ...], first: int, count: int, size: int) -> list[Block]:
        """:meth:`block` cut into ``count`` blocks of ``size`` source rows from row
        ``first`` (``Block.cut``), each written on its own from the columns: the lines'
        ends need not be found in the whole block, nor each block's bytes copied out of it
        (about a tenth of a worker's time on a household span)."""
        if not self.encoded:
            return self.block(fields).cut(first, count, size)
        rows = np.asarray(self.rows, dtype=np.int64)
        columns = [(f, self._json(f)) for f in self._order(fields)]
        out: list[Block] = []
        for lo, hi in cut_at(rows, first, count, size):
            lines = jsonbytes.ndjson_array(hi - lo, [(f, c[lo:hi]) for f, c in columns])
            # A view of the array: a span's chunks are written to its file, or pickled
            # (``Block.__reduce__`` makes bytes), as a mapped span's chunks are views too.
            out.append(Block(rows[lo:hi].copy(), lines.data))
        return out

    def _order(self, fields: tuple[str, ...]) -> tuple[str, ...]:
        """All fields in the generator's order, fewer in ``fields``' order."""
        return tuple(self.columns) if len(fields) == len(self.columns) else fields

    def _json(self, field: str) -> jsonbytes.U8:
        column = self.columns[field]
        if isinstance(column, np.ndarray):
            return column
        return jsonbytes.py_values(column)
