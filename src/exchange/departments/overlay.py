"""The records that changed since the city was derived: consulted first by lookups and exports.

The synthetic city is a pure function of its seed, so a change cannot be written into it.
Instead each changed record is kept here, per record generator (every topic served from a
generator sees the same change): by key for lookups, and by *source row* (the person or
enterprise index an export pages over) so an export can splice the changed rows into the
chunks it derived from the seed. People and enterprises registered after the start are new
rows past the derived ones.

Only changed keys are held, so lookups of unchanged keys cost one dict miss and an export
chunk with no changed row is served as before. The overlay is bounded (``max_keys``): the
change engine stops making changes when it is full rather than forget one, because a
forgotten change would make the city inconsistent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from exchange.departments.city import City
from exchange.departments.records import GENERATORS, Generator, licences_of

__all__ = ["DELETED", "Overlay", "Record"]

Record = dict[str, Any]
#: What :meth:`Overlay.get` answers for a key whose record was removed at the source.
DELETED: Record = {}
_MISS: Record = {"__miss__": True}
# Source rows of a generator are people for these, enterprises for the rest.
_PEOPLE_ROWS = frozenset(
    name for name, g in GENERATORS.items() if g.key_type in ("id_number", "plate_number")
)


class _Layer:
    """The changes of one generator."""

    __slots__ = ("by_key", "by_row", "chunks", "versions")

    def __init__(self) -> None:
        self.by_key: dict[str, Record] = {}
        #: row -> every record of that row after the changes, in export order
        self.by_row: dict[int, list[Record]] = {}
        #: chunk start -> rows of that chunk that changed
        self.chunks: dict[int, set[int]] = {}
        #: chunk start -> how many changes it has seen (keys a cache of spliced chunks)
        self.versions: dict[int, int] = {}


class Overlay:
    """Changed records of one city, by generator; see the module docstring."""

    def __init__(self, city: City, *, chunk: int, max_keys: int = 200_000) -> None:
        self.city = city
        self.chunk = chunk
        self.max_keys = max_keys
        self.keys = 0
        #: people and enterprises registered since the start (rows past the city's own)
        self.people_added = 0
        self.enterprises_added = 0
        self._layers: dict[str, _Layer] = {}

    # -- reading --------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        return self.keys >= self.max_keys

    def layer_keys(self, generator: str) -> dict[str, Record]:
        """The key map of one generator (empty when nothing changed): the lookup's hot path
        holds on to it and does one ``get``."""
        return self._layer(generator).by_key

    def get(self, generator: str, key: str) -> Record | None:
        """The changed record of ``key``, :data:`DELETED` if it was removed, ``None`` if the
        key did not change (the city's own record stands)."""
        layer = self._layers.get(generator)
        if layer is None:
            return None
        hit = layer.by_key.get(key, _MISS)
        return None if hit is _MISS else hit

    def current(self, generator: str, key: str) -> Record | None:
        """The record a lookup of ``key`` answers now (changed or derived), ``None`` if none."""
        hit = self.get(generator, key)
        if hit is not None:
            return None if hit is DELETED else hit
        return GENERATORS[generator].lookup(self.city, key)

    def row_records(self, generator: str, row: int) -> list[Record]:
        """Every record of source row ``row`` now (changed or derived), in export order."""
        layer = self._layers.get(generator)
        if layer is not None and row in layer.by_row:
            return list(layer.by_row[row])
        return list(_derived_row(GENERATORS[generator], self.city, row))

    def rows(self, generator: str) -> int:
        """How many source rows an export of ``generator`` pages over now."""
        gen = GENERATORS[generator]
        added = self.people_added if generator in _PEOPLE_ROWS else self.enterprises_added
        return gen.rows(self.city) + added

    def chunk_version(self, generator: str, start: int) -> int:
        """How many changes the export chunk at ``start`` has seen (0: none)."""
        layer = self._layers.get(generator)
        return 0 if layer is None else layer.versions.get(start, 0)

    def changed_rows(self, generator: str, start: int) -> dict[int, list[Record]] | None:
        """Changed rows of the export chunk starting at ``start`` (``None`` when none)."""
        layer = self._layers.get(generator)
        if layer is None:
            return None
        rows = layer.chunks.get(start)
        if not rows:
            return None
        # A copy of the set first: the change engine may add to it from its thread.
        return {r: layer.by_row[r] for r in tuple(rows)}

    # -- writing --------------------------------------------------------------------------

    def put(self, generator: str, row: int, key: str, record: Record | None) -> None:
        """Record that ``key`` (in source row ``row``) now reads ``record`` (``None``: removed)."""
        gen = GENERATORS[generator]
        layer = self._layer(generator)
        if key not in layer.by_key:
            self.keys += 1
        layer.by_key[key] = DELETED if record is None else record
        records = layer.by_row.get(row)
        start = row - row % self.chunk
        if records is None:
            records = list(_derived_row(gen, self.city, row))
            layer.chunks.setdefault(start, set()).add(row)
        else:
            # A new list, swapped in whole: an export reading the old one is not disturbed.
            records = list(records)
        field = gen.key_field
        at = next((i for i, r in enumerate(records) if r[field] == key), None)
        if at is None:
            if record is not None:
                records.append(record)
        elif record is None:
            del records[at]
        else:
            records[at] = record
        layer.by_row[row] = records
        layer.versions[start] = layer.versions.get(start, 0) + 1

    def _layer(self, generator: str) -> _Layer:
        layer = self._layers.get(generator)
        if layer is None:
            layer = self._layers[generator] = _Layer()
        return layer


def _derived_row(gen: Generator, city: City, row: int) -> Iterable[Record]:
    """The records the city derives for one source row.

    By key where a row has one record: the export path derives in blocks of thousands,
    which is the wrong trade for a single row (milliseconds instead of microseconds).
    """
    if row >= gen.rows(city):
        return ()
    if gen.key_type == "id_number":
        rec = gen.lookup(city, city.id_number_of(row))
    elif gen.key_type == "credit_code":
        rec = gen.lookup(city, city.credit_code_of(row))
    elif gen.key_type == "licence_number":
        return licences_of(city, row)
    else:
        return gen.export(city, row, row + 1)
    return () if rec is None else (rec,)


def splice(
    rows: list[int],
    lines: list[bytes],
    changed: dict[int, list[Record]],
    serialise: Callable[[Record], bytes],
) -> tuple[list[int], list[bytes]]:
    """An export chunk's (rows, lines) with the changed rows' lines put in their place."""
    out = [(r, ln) for r, ln in zip(rows, lines, strict=True) if r not in changed]
    for r in sorted(changed):
        out.extend((r, serialise(rec)) for rec in changed[r])
    # Stable: the records of one row keep their order.
    out.sort(key=lambda pair: pair[0])
    return [r for r, _ in out], [ln for _, ln in out]
