"""Enterprises of the city as columns (see :mod:`exchange.departments.people_columns`):
what an export derives of an enterprise, one array per fact, and the unified social credit
codes with their check characters computed over arrays."""

from __future__ import annotations

import datetime as dt
from functools import cached_property

import numpy as np
import numpy.typing as npt

from exchange import ids
from exchange.departments import bulk, bulk_enterprises, prng_arrays
from exchange.departments.city import City
from exchange.departments.columns import AREA_NAMES as _AREA_NAMES
from exchange.departments.columns import street_tables
from exchange.departments.enterprises import NUMERIC_BODIES
from exchange.departments.people import AREAS
from exchange.departments.people_columns import People
from exchange.departments.prng import T_ENT
from exchange.departments.prng_arrays import (
    BOOL,
    I64,
    U64,
    distinct,
    feistel_forward,
    mix,
    splitmix_draws,
)
from exchange.departments.vocabulary import (
    COMPANY_TYPES,
    ENT_STATUS_TABLE,
    ENT_WORDS,
    INDUSTRIES,
    RESIDENCE_TABLE,
    ROADS,
)

__all__ = ["Firms", "credit_chars", "credit_codes"]


_CREDIT_BYTES = np.frombuffer(ids.CREDIT_ALPHABET.encode(), dtype=np.uint8)
# Value of each ASCII character: GB 32100's (its alphabet's index) and GB 11714's (A=10).
_CREDIT_VALUE = np.zeros(128, dtype=np.int64)
_CREDIT_VALUE[_CREDIT_BYTES] = np.arange(len(_CREDIT_BYTES))
_ORG_VALUE = np.zeros(128, dtype=np.int64)
_ORG_VALUE[48:58] = np.arange(10)
_ORG_VALUE[65:91] = np.arange(10, 36)
_AREA_BYTES = np.array([list(a.encode()) for a in AREAS], dtype=np.uint8)


def credit_codes(kind92: BOOL, area_i: I64, slot: U64) -> list[str]:
    """``ids.make_credit_code(kind, area, City._org_body(slot))`` of each enterprise, the
    check characters computed over arrays (per code in Python it was most of an
    enterprise table's cost)."""
    out: list[str] = credit_chars(kind92, area_i, slot).view("S18").ravel().astype(str).tolist()
    return out


def credit_chars(kind92: BOOL, area_i: I64, slot: U64) -> npt.NDArray[np.uint8]:
    """ASCII of :func:`credit_codes`, one row of 18 bytes each."""
    n = len(slot)
    chars = np.empty((n, 18), dtype=np.uint8)
    chars[:, 0] = ord("9")
    chars[:, 1] = np.where(kind92, ord("2"), ord("1"))
    chars[:, 2:8] = _AREA_BYTES[area_i]
    # The organisation-code body: 8 digits, or "MA" and 6 characters of the alphabet.
    modern = slot >= np.uint64(NUMERIC_BODIES)
    v = np.where(modern, slot - np.uint64(NUMERIC_BODIES), slot).astype(np.int64)
    base = np.where(modern, len(_CREDIT_BYTES), 10)
    for i in range(15, 7, -1):
        v, d = np.divmod(v, base)
        chars[:, i] = np.where(modern, _CREDIT_BYTES[np.minimum(d, len(_CREDIT_BYTES) - 1)], 48 + d)
    chars[modern, 8] = ord("M")
    chars[modern, 9] = ord("A")
    org = (_ORG_VALUE[chars[:, 8:16]] * np.array(ids.ORG_WEIGHTS)).sum(axis=1)
    check = 11 - org % 11
    chars[:, 16] = np.where(check == 10, ord("X"), np.where(check == 11, ord("0"), 48 + check))
    total = (_CREDIT_VALUE[chars[:, :17]] * np.array(ids.CREDIT_WEIGHTS)).sum(axis=1)
    chars[:, 17] = _CREDIT_BYTES[(31 - total % 31) % 31]
    return chars


class Firms:
    """Columns of the enterprises at ``e`` (each ``0 <= e < enterprises``)."""

    def __init__(self, city: City, e: I64) -> None:
        self.city = city
        e = np.asarray(e, dtype=np.int64)
        self.e = e
        self.n = n = len(e)
        ue = e.astype(np.uint64)
        self.slot: U64 = feistel_forward(city._orgs, ue) if n else np.zeros(0, np.uint64)
        self.modern: BOOL = self.slot >= np.uint64(NUMERIC_BODIES)
        head = splitmix_draws(mix(n, city.seed, T_ENT, ue), 2)
        # ``modern and r.chance(0.3)``: only a modern body spends a draw on the kind.
        self.kind92: BOOL = self.modern & prng_arrays.chance(head[0], 0.3)
        drawn = np.where(self.modern, head[1], head[0])
        self.district: I64 = bulk.lookup_tables()["residence"][
            (drawn % np.uint64(len(RESIDENCE_TABLE))).astype(np.int64)
        ]
        # The body's draws: industry, two name characters, then one for an individual
        # business's capital or two for a company's type and capital, then the founding
        # date, street, road and three numbers.
        self._d = splitmix_draws(mix(n, city.seed, T_ENT, ue, 2), 11)
        self._after = np.where(self.kind92, 4, 5)
        status = mix(n, city.seed, T_ENT, ue, 1) % np.uint64(len(ENT_STATUS_TABLE))
        self.status_i: I64 = status.astype(np.int64)

    def _at(self, offset: int) -> U64:
        """The draw ``offset`` places after the kind-dependent ones, per enterprise."""
        out: U64 = self._d[self._after + offset, np.arange(self.n)]
        return out

    @cached_property
    def status(self) -> list[str]:
        return [ENT_STATUS_TABLE[s] for s in self.status_i.tolist()]

    @cached_property
    def operating(self) -> BOOL:
        """Whether the status starts with 存续 (the licences and taxes follow it)."""
        flags = np.array([s.startswith("存续") for s in ENT_STATUS_TABLE], dtype=np.bool_)
        out: BOOL = flags[self.status_i]
        return out

    @cached_property
    def credit_chars(self) -> npt.NDArray[np.uint8]:
        return credit_chars(self.kind92, self.district, self.slot)

    @cached_property
    def credit_code(self) -> list[str]:
        out: list[str] = self.credit_chars.view("S18").ravel().astype(str).tolist()
        return out

    @cached_property
    def industry_i(self) -> I64:
        out: I64 = (self._d[0] % np.uint64(len(INDUSTRIES))).astype(np.int64)
        return out

    @cached_property
    def industry(self) -> list[str]:
        return [INDUSTRIES[i][0] for i in self.industry_i.tolist()]

    @cached_property
    def name(self) -> list[str]:
        w = len(ENT_WORDS)
        w1 = (self._d[1] % np.uint64(w)).astype(np.int64).tolist()
        w2 = (self._d[2] % np.uint64(w)).astype(np.int64).tolist()
        out = []
        for k92, a, i, x, y in zip(
            self.kind92.tolist(),
            self.district.tolist(),
            self.industry_i.tolist(),
            w1,
            w2,
            strict=True,
        ):
            word = ENT_WORDS[x] + ENT_WORDS[y]
            _, company, shop = INDUSTRIES[i]
            out.append(f"广州市{_AREA_NAMES[a]}{word}{shop}" if k92 else f"广州{word}{company}")
        return out

    @cached_property
    def entity_type(self) -> list[str]:
        kinds = (self._d[3] % np.uint64(len(COMPANY_TYPES))).astype(np.int64).tolist()
        return [
            "个体工商户" if k92 else COMPANY_TYPES[t]
            for k92, t in zip(self.kind92.tolist(), kinds, strict=True)
        ]

    @cached_property
    def capital(self) -> list[int]:
        shop = 1 + (self._d[3] % np.uint64(50)).astype(np.int64)
        company = np.array([10, 50, 100, 200, 500, 1000, 5000])[
            (self._d[4] % np.uint64(7)).astype(np.int64)
        ]
        out: list[int] = np.where(self.kind92, shop, company).tolist()
        return out

    @cached_property
    def founded(self) -> I64:
        """Founding-day ordinals."""
        lo = np.where(
            self.modern, dt.date(2015, 10, 1).toordinal(), dt.date(1985, 1, 1).toordinal()
        )
        hi = np.where(
            self.modern, dt.date(2024, 12, 20).toordinal(), dt.date(2015, 9, 30).toordinal()
        )
        return prng_arrays.between(self._at(0), lo, hi)

    @cached_property
    def address(self) -> list[str]:
        _, bare = street_tables()
        counts = bulk.lookup_tables()["street_counts"][self.district]
        street = (self._at(1) % counts).astype(np.int64).tolist()
        road = (self._at(2) % np.uint64(len(ROADS))).astype(np.int64).tolist()
        no1 = (1 + (self._at(3) % np.uint64(999)).astype(np.int64)).tolist()
        no2 = (1 + (self._at(4) % np.uint64(20)).astype(np.int64)).tolist()
        no3 = (1 + (self._at(5) % np.uint64(9)).astype(np.int64)).tolist()
        return [
            f"广州市{_AREA_NAMES[a]}{bare[a][s]}{ROADS[r]}{x}号{y}0{z}室"
            for a, s, r, x, y, z in zip(
                self.district.tolist(), street, road, no1, no2, no3, strict=True
            )
        ]

    @cached_property
    def legal_rep_people(self) -> tuple[I64, People, I64]:
        """Each enterprise's legal representative (-1: none), those people (each once)
        and each enterprise's position among them."""
        reps = bulk_enterprises.legal_reps(self.city, self.e)
        found = distinct(reps[reps >= 0])
        return reps, People(self.city, found), np.searchsorted(found, reps)

    @cached_property
    def legal_rep(self) -> tuple[list[str | None], list[str | None]]:
        """(name, ID number) of each enterprise's legal representative (``None``: none)."""
        reps, people, pos = self.legal_rep_people
        who, idn = people.name, people.id_number
        rep_names: list[str | None] = []
        rep_ids: list[str | None] = []
        for r, p in zip(reps.tolist(), pos.tolist(), strict=True):
            rep_names.append(who[p] if r >= 0 else None)
            rep_ids.append(idn[p] if r >= 0 else None)
        return rep_names, rep_ids

    @cached_property
    def business_scope(self) -> list[str]:
        return [
            f"{INDUSTRIES[i][0]}相关业务(依法须经批准的项目,经相关部门批准后方可开展经营活动)"
            for i in self.industry_i.tolist()
        ]
