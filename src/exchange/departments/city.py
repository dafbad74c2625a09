"""The synthetic city: one consistent population and set of enterprises, derived on demand.

Nothing is stored per person. Each person is an index ``0 <= i < population``; a keyed
Feistel permutation maps the index to an ID-number *slot* (birth day, district, sequence), so
``index -> ID number`` and ``ID number -> index`` are both a few integer operations, and a
well-formed Guangzhou ID number that no index maps to is simply not in the city. Everything
else about a person comes from a small PRNG seeded by ``(seed, tag, index)``, so any department
that derives a fact about person ``i`` derives the same fact.

People come in pairs: indices ``2u`` (male) and ``2u + 1`` (female) form *unit* ``u``. The
female's slot is a fixed bijection of the male's (a few years younger, maybe another district),
which is what lets marriages pair people of plausible ages without any lookup table.
Enterprises work the same way over organisation-code slots; employees are found through a
second permutation of the population, so ``employer(person)`` and ``employees(enterprise)``
agree in both directions.

The city is assembled from one module per idea: :mod:`~.prng` (the hash, the PRNG, the
permutation), :mod:`~.vocabulary` (word lists and weights), :mod:`~.people`,
:mod:`~.enterprises` (and employment) and :mod:`~.vehicles`.
"""

from __future__ import annotations

from functools import lru_cache

from exchange.departments.enterprises import Enterprise, Enterprises
from exchange.departments.people import REFERENCE_DATE, Person
from exchange.departments.prng import T_LIC, Feistel, Rng, mix
from exchange.departments.vehicles import MAX_POPULATION, Vehicles

__all__ = [
    "REFERENCE_DATE",
    "City",
    "Enterprise",
    "Person",
    "Rng",
    "mix",
]


class City(Enterprises, Vehicles):
    """A deterministic synthetic Guangzhou of ``population`` people and ``enterprises`` firms.

    Construction is O(1); every record is derived from its index on demand, with small LRU
    caches in front of the hot derivations.
    """

    def __init__(self, seed: int, population: int, enterprises: int) -> None:
        if not 2 <= population <= MAX_POPULATION:
            raise ValueError(f"population must be between 2 and {MAX_POPULATION:,}")
        if not 1 <= enterprises <= 50_000_000:
            raise ValueError("enterprises must be between 1 and 50,000,000")
        super().__init__(seed, population, enterprises)

    # -- misc keyed derivations used by department records ---------------------------

    def rng(self, tag: str, *parts: int) -> Rng:
        """A PRNG for a named fact of the entity ``parts`` (stable across runs)."""
        return Rng(mix(self.seed, sum(ord(c) << (8 * (i % 7)) for i, c in enumerate(tag)), *parts))

    def licence_feistel(self, type_index: int) -> Feistel:
        """The permutation that numbers licences of one type (12-digit serials)."""
        return _licence_perm(self.seed, type_index)


@lru_cache(maxsize=32)
def _licence_perm(seed: int, type_index: int) -> Feistel:
    return Feistel(mix(seed, T_LIC, type_index), 10**12)
