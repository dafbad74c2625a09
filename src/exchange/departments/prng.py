"""The city's randomness: a 64-bit hash, a small PRNG and a keyed permutation.

Every fact of the synthetic city comes from these, seeded by ``(seed, tag, index)``: any
department that derives a fact about person ``i`` derives the same fact, and nothing is
stored. The tags name the independent streams (one per kind of fact).
"""

from __future__ import annotations

__all__ = [
    "M64",
    "T_COUPLE",
    "T_DEATH",
    "T_EMP_PERM",
    "T_ENT",
    "T_HOUSE",
    "T_LIC",
    "T_ORG_PERM",
    "T_PEOPLE_PERM",
    "T_PERSON",
    "T_PLATE_PERM",
    "T_TAU",
    "T_VEH",
    "T_WORK",
    "Feistel",
    "Rng",
    "mix",
]

M64 = (1 << 64) - 1

# Tags keep the PRNG streams of different facts independent.
T_PERSON, T_DEATH, T_COUPLE, T_HOUSE, T_WORK, T_ENT, T_VEH = range(1, 8)
T_PEOPLE_PERM, T_EMP_PERM, T_ORG_PERM, T_PLATE_PERM, T_TAU, T_LIC = range(11, 17)


def mix(*parts: int) -> int:
    """A 64-bit hash of integers (splitmix64 finaliser chained over the parts)."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (p & M64)) * 0xBF58476D1CE4E5B9 & M64
        h ^= h >> 31
        h = (h + 0x9E3779B97F4A7C15) * 0x94D049BB133111EB & M64
        h ^= h >> 29
    return h


class Rng:
    """splitmix64: tiny, fast and good enough for synthetic data; one per derived entity."""

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = seed & M64

    def next(self) -> int:
        """The next 64-bit value."""
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & M64
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & M64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform integer in ``[0, n)``."""
        return self.next() % n

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self.next() < p * 18446744073709551616.0

    def between(self, lo: int, hi: int) -> int:
        """Uniform integer in ``[lo, hi]``."""
        return lo + self.next() % (hi - lo + 1)

    def pick(self, seq: str | tuple[str, ...]) -> str:
        """A uniform element of ``seq``."""
        return seq[self.next() % len(seq)]


class Feistel:
    """A keyed permutation of ``[0, domain)``: balanced Feistel network plus cycle walking."""

    __slots__ = ("domain", "half", "keys", "mask")

    def __init__(self, key: int, domain: int) -> None:
        if domain < 1:
            raise ValueError("domain must be positive")
        bits = max(2, (domain - 1).bit_length())
        bits += bits % 2
        self.domain = domain
        self.half = bits // 2
        self.mask = (1 << self.half) - 1
        self.keys = tuple(mix(key, r) for r in range(4))

    def _f(self, x: int, k: int) -> int:
        h = ((x ^ k) * 0x9E3779B97F4A7C15) & M64
        h ^= h >> 32
        h = (h * 0xBF58476D1CE4E5B9) & M64
        return (h >> 19) & self.mask

    def forward(self, x: int) -> int:
        """The image of ``x``; walks the cycle until the value falls inside the domain."""
        half, mask, f = self.half, self.mask, self._f
        while True:
            left, right = x >> half, x & mask
            for k in self.keys:
                left, right = right, left ^ f(right, k)
            x = (left << half) | right
            if x < self.domain:
                return x

    def inverse(self, y: int) -> int:
        """The preimage of ``y``."""
        half, mask, f = self.half, self.mask, self._f
        while True:
            left, right = y >> half, y & mask
            for k in reversed(self.keys):
                left, right = right ^ f(left, k), left
            y = (left << half) | right
            if y < self.domain:
                return y
