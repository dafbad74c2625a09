"""The JSON byte matrices of :mod:`exchange.departments.jsonbytes` are the bytes orjson
and Python's formatting write, value by value, on the fast paths (gathers from tables of
digits and dates) and on the ways around them (long numbers, days outside the table)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import orjson
import pytest

from exchange.departments import jsonbytes


def _rows(matrix: jsonbytes.U8) -> list[bytes]:
    """Each row's bytes without its NUL padding."""
    return [bytes(r[r != 0]) for r in np.asarray(matrix)]


_VALUES = [0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10_000, 12_345, 99_999_999, 440_100_000_123]


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 6, 8, 12])
@pytest.mark.parametrize("top", [9, 99, 999, 9999, 99_999, 10**12, 10**18])
def test_digits_are_pythons_zero_padded_numbers(width: int, top: int) -> None:
    values = sorted({v for v in _VALUES if v <= top} | {top, top // 7, top // 3})
    got = _rows(jsonbytes.digits(np.array(values, dtype=np.int64), width))
    assert got == [f"{v:0{width}d}".encode() for v in values]


def test_digits_of_nothing_and_of_negatives() -> None:
    assert jsonbytes.digits(np.zeros(0, dtype=np.int64), 3).shape[0] == 0
    with pytest.raises(ValueError, match="non-negative"):
        jsonbytes.digits(np.array([5, -1], dtype=np.int64))


def test_hundredths_are_the_floats_python_prints() -> None:
    values = [0, 1, 10, 99, 100, 105, 110, 3_500, 3_550, 3_525, 1_600_001, 16_000_00]
    got = _rows(jsonbytes.hundredths(np.array(values, dtype=np.int64)))
    assert got == [orjson.dumps(round(v / 100, 2)) for v in values]


@pytest.mark.parametrize(
    "days",
    [
        # inside the table: its first and last day, leap days, the city's reference day
        [dt.date(1900, 1, 1), dt.date(2100, 12, 31), dt.date(2000, 2, 29), dt.date(2024, 12, 31)],
        # outside it on either side: the datetime64 way
        [dt.date(1899, 12, 31), dt.date(1930, 1, 1)],
        [dt.date(2101, 1, 1), dt.date(2024, 2, 29)],
        [dt.date(1, 1, 1), dt.date(9999, 12, 31)],
    ],
)
def test_iso_dates_are_the_isoformat_of_each_day(days: list[dt.date]) -> None:
    ordinals = np.array([d.toordinal() for d in days], dtype=np.int64)
    assert _rows(jsonbytes.iso_dates(ordinals)) == [orjson.dumps(d.isoformat()) for d in days]


def test_every_day_of_the_table_is_its_isoformat() -> None:
    first, last = dt.date(1900, 1, 1).toordinal(), dt.date(2100, 12, 31).toordinal()
    ordinals = np.arange(first, last + 1, dtype=np.int64)
    got = jsonbytes.iso_dates(ordinals).tobytes()
    expected = b"".join(
        orjson.dumps(dt.date.fromordinal(o).isoformat()) for o in range(first, last + 1)
    )
    assert got == expected


def _padded_parts(rng: np.random.Generator, n: int) -> list[jsonbytes.Part]:
    """Parts as the columns make them, and worse: NULs leading, trailing and inside a
    value, rows all NUL, widths across the 16-byte blocks, views that are not contiguous,
    rows in reverse, constants and empty parts."""
    parts: list[jsonbytes.Part] = [b"{"]
    for width in (0, 1, 7, 15, 16, 17, 31, 33, 40):
        m = rng.integers(1, 256, (n, width), dtype=np.uint8)
        m[rng.random((n, width)) < rng.choice([0.0, 0.05, 0.5, 1.0])] = 0
        if width:
            lead = rng.integers(0, width + 1, n)
            m[np.arange(width)[None, :] < lead[:, None]] = 0  # digits' leading padding
        parts.append(m)
        parts.append(b',"k":')
    wide = rng.integers(0, 256, (n, 64), dtype=np.uint8)
    parts.append(wide[:, ::3])  # a column step of 3
    parts.append(wide[::-1, 5:30])  # rows in reverse
    parts.append(np.asfortranarray(rng.integers(0, 3, (n, 20), dtype=np.uint8)))
    parts.append(b"")
    parts.append(b"}\n")
    return parts


@pytest.mark.parametrize("n", [0, 1, 2, 17, 1_000])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compact_is_each_rows_non_nul_bytes_in_order(n: int, seed: int) -> None:
    parts = _padded_parts(np.random.default_rng(seed), n)
    expected = b"".join(
        b"".join(p if isinstance(p, bytes) else p[r].tobytes() for p in parts).replace(b"\0", b"")
        for r in range(n)
    )
    assert jsonbytes.compact(n, parts).tobytes() == expected
    assert jsonbytes.compact_numpy(n, parts).tobytes() == expected
