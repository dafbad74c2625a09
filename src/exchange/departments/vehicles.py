"""The city's vehicles: how many each adult owns, and their plates both ways."""

from __future__ import annotations

from exchange.departments.people import People, Person
from exchange.departments.prng import T_PLATE_PERM, T_VEH, Feistel, mix

__all__ = ["MAX_POPULATION", "PLATE_CHARS", "PLATE_SLOTS", "Vehicles"]

PLATE_CHARS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_PLATE_VALUE = {c: i for i, c in enumerate(PLATE_CHARS)}
PLATE_SLOTS = len(PLATE_CHARS) ** 5
MAX_POPULATION = PLATE_SLOTS // 2


class Vehicles(People):
    """The vehicles of a city's people (a part of :class:`~.city.City`)."""

    def __init__(self, seed: int, population: int, enterprises: int) -> None:
        super().__init__(seed, population, enterprises)
        self._plates = Feistel(mix(seed, T_PLATE_PERM), PLATE_SLOTS)

    # -- vehicles --------------------------------------------------------------------

    def vehicle_count(self, person: Person) -> int:
        """How many vehicles ``person`` owns (0..2)."""
        if not person.alive or person.age < 18:
            return 0
        z = mix(self.seed, T_VEH, person.index) % 100
        return 0 if z < 66 else 1 if z < 92 else 2

    def plate_of(self, index: int, k: int) -> str:
        """Plate number of person ``index``'s vehicle ``k`` (whether or not it exists)."""
        v = self._plates.forward(index * 2 + k)
        tail = ""
        for _ in range(5):
            v, d = divmod(v, len(PLATE_CHARS))
            tail = PLATE_CHARS[d] + tail
        return "粤A" + tail

    def vehicle_by_plate(self, plate: str) -> tuple[Person, int] | None:
        """(owner, vehicle number) of a well-formed plate, or ``None`` if not in the city."""
        if not plate.startswith("粤A") or len(plate) != 7:
            return None
        v = 0
        for c in plate[2:]:
            d = _PLATE_VALUE.get(c)
            if d is None:
                return None
            v = v * len(PLATE_CHARS) + d
        slot = self._plates.inverse(v)
        index, k = slot >> 1, slot & 1
        if index >= self.population:
            return None
        owner = self.person(index)
        if k >= self.vehicle_count(owner):
            return None
        return owner, k
