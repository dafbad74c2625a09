"""The compiled kernels (``exchange.departments._kernels``): built by the install, and
refusing what they cannot take with an error, never a read or write outside the arrays or a
walk that does not end. What they compute is compared with the scalar code and with NumPy
in test_jsonbytes.py, test_bulk.py and test_tables.py."""

from __future__ import annotations

import numpy as np
import pytest

from exchange.departments import native
from exchange.departments.prng import Feistel


def test_the_compiled_kernels_are_built() -> None:
    """The install builds them (setup.py); without them every cold export derives and
    assembles in NumPy, at about 1.5 times the cost, and nothing else would say so."""
    assert native.KERNELS is not None, (
        "exchange.departments._kernels is not built: reinstall with a C compiler "
        "(`pip install -e .`, gcc and the Python headers) to build it"
    )


@pytest.fixture
def kernels() -> native.Kernels:
    if native.KERNELS is None:
        pytest.skip("the compiled kernels are not built (see the test above)")
    return native.KERNELS


def test_compact_refuses_parts_that_do_not_fit(kernels: native.Kernels) -> None:
    """Bad parts are an error, never a read or write outside the buffers."""
    compact = kernels.compact
    good = np.ones((3, 4), dtype=np.uint8)
    out = np.zeros(12 + 16, dtype=np.uint8)  # the rows' bytes and 16 of slack
    assert compact(3, [good], out) == 12
    assert out[:12].tolist() == [1] * 12
    with pytest.raises(ValueError, match="has 2 rows, not 3"):
        compact(3, [good[:2]], out)
    with pytest.raises(ValueError, match="3 dimensions"):
        compact(3, [np.ones((3, 2, 2), dtype=np.uint8)], out)
    with pytest.raises(TypeError, match="not of bytes"):
        compact(3, [np.ones((3, 4), dtype=np.uint16)], out)
    with pytest.raises(ValueError, match="out holds 27 bytes"):
        compact(3, [good], out[:27])
    with pytest.raises(ValueError, match="must not be negative"):
        compact(-1, [good], out)
    with pytest.raises(TypeError):
        compact(3, [good], b"read-only" * 2)
    with pytest.raises(TypeError):
        compact(3, [object()], out)
    with pytest.raises(TypeError, match="must be a sequence"):
        compact(3, 5, out)  # type: ignore[arg-type]


def test_mix_and_splitmix_refuse_arrays_that_do_not_fit(kernels: native.Kernels) -> None:
    out = np.empty(4, dtype=np.uint64)
    with pytest.raises(ValueError, match="part 1 has 3 elements, not 4"):
        kernels.mix(out, [1, np.zeros(3, dtype=np.uint64)])
    with pytest.raises(TypeError, match="64-bit integers"):
        kernels.mix(out, [np.zeros(4, dtype=np.int32)])
    with pytest.raises(TypeError, match="64-bit integers"):
        kernels.mix(out, [np.zeros(4, dtype=np.float64)])
    with pytest.raises(TypeError, match="must be a sequence"):
        kernels.mix(out, 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not C-contiguous"):
        kernels.mix(np.zeros(4, dtype=np.uint64)[::2], [1])
    frozen = np.zeros(4, dtype=np.uint64)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        kernels.mix(frozen, [1])
    seeds = np.arange(3, dtype=np.uint64)
    with pytest.raises(ValueError, match="k rows of len"):
        kernels.splitmix(seeds, np.empty(7, dtype=np.uint64))
    with pytest.raises(ValueError, match="k rows of len"):
        kernels.splitmix(np.zeros(0, dtype=np.uint64), np.empty(2, dtype=np.uint64))


def test_feistel_refuses_what_it_cannot_walk(kernels: native.Kernels) -> None:
    perm = Feistel(0x5EED, 1_000)
    x = np.arange(10, dtype=np.uint64)
    out = np.empty(10, dtype=np.uint64)
    kernels.feistel(x, out, perm.keys, perm.half, perm.domain, False)
    assert out.tolist() == [perm.forward(v) for v in range(10)]
    with pytest.raises(ValueError, match="element 1 is outside the domain"):
        kernels.feistel(
            np.array([3, 1_000], dtype=np.uint64), out[:2], perm.keys, perm.half, perm.domain, False
        )
    with pytest.raises(ValueError, match="as long as x"):
        kernels.feistel(x, out[:9], perm.keys, perm.half, perm.domain, False)
    with pytest.raises(ValueError, match="four round keys"):
        kernels.feistel(x, out, perm.keys[:3], perm.half, perm.domain, False)
    with pytest.raises(ValueError, match="fit in 2 \\* half bits"):
        kernels.feistel(x, out, perm.keys, 2, 1_000, False)
    with pytest.raises(ValueError, match="1 to 32 bits"):
        kernels.feistel(x, out, perm.keys, 0, 1, False)
