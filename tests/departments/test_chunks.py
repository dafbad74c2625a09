"""How a cold export's chunks are shared between the export workers' calls."""

from __future__ import annotations

import pytest

from exchange.departments.chunks import balanced


@pytest.mark.parametrize(
    ("chunks", "sizes"),
    [
        (1, [1]),
        (4, [4]),  # one call: its own span, nothing to share
        (5, [3, 2]),
        (10, [3, 3, 2, 2]),  # not 4, 4, 2: one worker deriving 6 while the other waits
        (12, [3, 3, 3, 3]),
        (16, [4, 4, 4, 4]),
        (13, [4, 3, 3, 3]),
    ],
)
def test_calls_are_even_and_a_multiple_of_the_workers(chunks: int, sizes: list[int]) -> None:
    starts = [2048 * k for k in range(chunks)]
    groups = balanced(starts, 4, 2)
    assert [len(g) for g in groups] == sizes
    assert [s for g in groups for s in g] == starts  # every chunk once, in order


def test_calls_never_pass_the_span_and_one_worker_takes_them_as_they_come() -> None:
    starts = list(range(0, 49 * 2048, 2048))
    assert max(len(g) for g in balanced(starts, 4, 2)) == 4
    assert [len(g) for g in balanced(starts[:9], 4, 1)] == [3, 3, 3]
    assert balanced([], 4, 2) == []
