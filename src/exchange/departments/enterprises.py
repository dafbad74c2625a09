"""The city's enterprises and who works for them.

Enterprises are indices over organisation-code slots (a keyed permutation, as people are
over ID-number slots); employees are found through a second permutation of the population,
so ``employer(person)`` and ``employees(enterprise)`` agree in both directions.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from exchange import ids
from exchange.departments.people import REFERENCE_DATE, People, Person
from exchange.departments.prng import T_EMP_PERM, T_ENT, T_ORG_PERM, T_WORK, Feistel, Rng, mix
from exchange.departments.vocabulary import (
    COMPANY_TYPES,
    ENT_STATUS_TABLE,
    ENT_STATUSES,
    ENT_WORDS,
    INDUSTRIES,
    RESIDENCE_TABLE,
    ROADS,
    STREETS,
)

__all__ = ["NUMERIC_BODIES", "ORG_SLOTS", "Derive", "Enterprise", "Enterprises"]

# Organisation-code bodies: 8 digits (issued before the 2015 reform) then "MA" + 6 characters.
NUMERIC_BODIES = 10**8
_MA_CHARS = ids.CREDIT_ALPHABET
_MA_BODIES = len(_MA_CHARS) ** 6
ORG_SLOTS = NUMERIC_BODIES + _MA_BODIES


@dataclass(frozen=True, slots=True)
class Enterprise:
    """One market entity: a company (type 91) or an individual business (type 92)."""

    index: int
    credit_code: str
    name: str
    kind: str  # 91 / 92
    entity_type: str
    industry: str
    district: str
    address: str
    founded_on: dt.date
    registered_capital: int  # 万元
    status: str
    legal_rep_index: int | None
    legal_rep_name: str | None
    legal_rep_id_number: str | None
    business_scope: str


class Derive(enum.Enum):
    """A fact the callee derives itself (not passed in by a caller that has it)."""

    HERE = 0


class Enterprises(People):
    """The enterprises of a city and their employees (a part of :class:`~.city.City`)."""

    def __init__(self, seed: int, population: int, enterprises: int) -> None:
        super().__init__(seed, population, enterprises)
        self._emp = Feistel(mix(seed, T_EMP_PERM), population)
        self._orgs = Feistel(mix(seed, T_ORG_PERM), ORG_SLOTS)
        self.enterprise = lru_cache(maxsize=65_536)(  # type: ignore[method-assign]
            self._enterprise
        )

    # -- employment ------------------------------------------------------------------

    def enterprise_active(self, e: int) -> bool:
        """Whether enterprise ``e`` is still operating (cheap; no full derivation)."""
        return self._enterprise_status(e) == ENT_STATUSES[0][0]

    def _enterprise_status(self, e: int) -> str:
        return ENT_STATUS_TABLE[mix(self.seed, T_ENT, e, 1) % len(ENT_STATUS_TABLE)]

    def employer_of(self, person: Person) -> int | None:
        """Index of the enterprise employing ``person`` (social insurance, fund), if any."""
        return self.employer_of_index(person.index)

    def employer_of_index(self, index: int) -> int | None:
        """Like :meth:`employer_of` but from the index alone (cheap: no name or address)."""
        birth = self.birth_date_of(index)
        age = (
            REFERENCE_DATE.year
            - birth.year
            - ((REFERENCE_DATE.month, REFERENCE_DATE.day) < (birth.month, birth.day))
        )
        if age < 18 or age >= (55 if index & 1 else 60):
            return None
        if mix(self.seed, T_WORK, index) % 100 >= 74:
            return None
        if self._death_date(index, birth) is not None:
            return None
        e = self._emp.forward(index) % self.enterprises
        return e if self.enterprise_active(e) else None

    def employees_of(self, e: int, limit: int = 100, scan: int | None = None) -> list[int]:
        """Person indices employed by enterprise ``e`` (first ``limit``, in a fixed order).

        ``scan`` bounds how many candidates are examined (all by default); a city of
        20 million has about a thousand candidates per enterprise.
        """
        found: list[int] = []
        j = e
        scanned = 0
        while j < self.population and len(found) < limit:
            if scan is not None and scanned >= scan:
                break
            i = self._emp.inverse(j)
            if self.employer_of_index(i) == e:
                found.append(i)
            j += self.enterprises
            scanned += 1
        return found

    # -- enterprises -----------------------------------------------------------------

    def _org_body(self, slot: int) -> str:
        if slot < NUMERIC_BODIES:
            return f"{slot:08d}"
        v = slot - NUMERIC_BODIES
        tail = ""
        for _ in range(6):
            v, d = divmod(v, len(_MA_CHARS))
            tail = _MA_CHARS[d] + tail
        return "MA" + tail

    def _slot_of_org_body(self, body: str) -> int | None:
        if body.isdigit():
            return int(body)
        if not body.startswith("MA"):
            return None
        v = 0
        for c in body[2:]:
            d = _MA_CHARS.find(c)
            if d < 0:
                return None
            v = v * len(_MA_CHARS) + d
        return NUMERIC_BODIES + v

    def _enterprise_head(self, e: int) -> tuple[str, str, str, bool]:
        """(credit code, kind, district, founded after the 2015 reform) of enterprise ``e``."""
        slot = self._orgs.forward(e)
        body = self._org_body(slot)
        r = Rng(mix(self.seed, T_ENT, e))
        modern = slot >= NUMERIC_BODIES
        kind = "92" if modern and r.chance(0.3) else "91"
        district = RESIDENCE_TABLE[r.below(len(RESIDENCE_TABLE))]
        return ids.make_credit_code(kind, district, body), kind, district, modern

    def unused_credit_code(self, kind: str, district: str, draw: int) -> str:
        """A well-formed credit code that no enterprise of the derived city holds, for a
        registration made since the start (post-2015 ``MA`` organisation codes, as every new
        registration gets); ``draw`` picks which."""
        while True:
            body = self._org_body(NUMERIC_BODIES + draw % _MA_BODIES)
            code = ids.make_credit_code(kind, district, body)
            if self.index_of_credit_code(code) is None:
                return code
            draw = mix(draw, 1)

    def credit_code_of(self, e: int) -> str:
        """The unified social credit code of enterprise ``e``."""
        return self._enterprise_head(e)[0]

    def index_of_credit_code(self, code: str) -> int | None:
        """The enterprise index of a well-formed credit code, or ``None`` if not in the city."""
        if code[:2] not in ("91", "92"):
            return None
        slot = self._slot_of_org_body(code[8:16])
        if slot is None or slot >= ORG_SLOTS:
            return None
        e = self._orgs.inverse(slot)
        if e >= self.enterprises or self.credit_code_of(e) != code:
            return None
        return e

    def _enterprise(self, e: int, legal_rep: Person | Derive | None = Derive.HERE) -> Enterprise:
        """Enterprise ``e``; ``legal_rep``: its legal representative (:meth:`_legal_rep`)
        when the caller derived it already (in bulk), else derived here."""
        if not 0 <= e < self.enterprises:
            raise IndexError(f"enterprise index {e} is outside 0..{self.enterprises - 1}")
        code, kind, district, modern = self._enterprise_head(e)
        r = Rng(mix(self.seed, T_ENT, e, 2))
        industry, company_suffix, shop_suffix = INDUSTRIES[r.below(len(INDUSTRIES))]
        word = r.pick(ENT_WORDS) + r.pick(ENT_WORDS)
        district_name = ids.AREA_NAMES[district]
        if kind == "92":
            name = f"广州市{district_name}{word}{shop_suffix}"
            entity_type = "个体工商户"
            capital = r.between(1, 50)
        else:
            name = f"广州{word}{company_suffix}"
            entity_type = COMPANY_TYPES[r.below(len(COMPANY_TYPES))]
            capital = int(r.pick(("10", "50", "100", "200", "500", "1000", "5000")))
        if modern:
            lo, hi = dt.date(2015, 10, 1), dt.date(2024, 12, 20)
        else:
            lo, hi = dt.date(1985, 1, 1), dt.date(2015, 9, 30)
        founded = dt.date.fromordinal(r.between(lo.toordinal(), hi.toordinal()))
        street = r.pick(STREETS[district])
        address = (
            f"广州市{district_name}{street.removesuffix('街道')}{r.pick(ROADS)}"
            f"{r.between(1, 999)}号{r.between(1, 20)}0{r.between(1, 9)}室"
        )
        if isinstance(legal_rep, Derive):
            rep = self._legal_rep(e, r)
            rep_person = None if rep is None else self.person(rep)
        else:
            rep_person = legal_rep
            rep = None if rep_person is None else rep_person.index
        return Enterprise(
            index=e,
            credit_code=code,
            name=name,
            kind=kind,
            entity_type=entity_type,
            industry=industry,
            district=district,
            address=address,
            founded_on=founded,
            registered_capital=capital,
            status=self._enterprise_status(e),
            legal_rep_index=rep,
            legal_rep_name=None if rep_person is None else rep_person.name,
            legal_rep_id_number=None if rep_person is None else rep_person.id_number,
            business_scope=f"{industry}相关业务(依法须经批准的项目,经相关部门批准后方可开展经营活动)",
        )

    def _legal_rep(self, e: int, r: Rng) -> int | None:
        """An adult living resident; preferably one of the enterprise's own employees."""
        for i in self.employees_of(e, limit=3, scan=48):
            if self.person(i).age >= 22:
                return i
        for _ in range(40):
            i = r.below(self.population)
            p = self.person(i)
            if p.alive and 22 <= p.age <= 75:
                return i
        return None

    def enterprise(self, index: int) -> Enterprise:
        """Enterprise ``index`` (0-based); raises ``IndexError`` outside the range."""
        return self._enterprise(index)

    def enterprise_by_credit_code(self, code: str) -> Enterprise | None:
        """The enterprise with this (well-formed) credit code, or ``None`` if not in the city."""
        e = self.index_of_credit_code(code)
        return None if e is None else self.enterprise(e)

    def sample_enterprise_indices(self, n: int, seed: int = 0) -> list[int]:
        """``n`` distinct enterprise indices chosen deterministically from ``seed``."""
        n = min(n, self.enterprises)
        picker = Feistel(mix(self.seed, seed, 0xE5), self.enterprises)
        return [picker.forward(k) for k in range(n)]

    def sample_credit_codes(self, n: int, seed: int = 0) -> list[str]:
        """``n`` distinct credit codes of enterprises in the city."""
        return [self.credit_code_of(e) for e in self.sample_enterprise_indices(n, seed)]

    def iter_enterprises(self, start: int = 0, stop: int | None = None) -> Iterator[Enterprise]:
        """Enterprises in index order."""
        stop = self.enterprises if stop is None else min(stop, self.enterprises)
        for e in range(max(0, start), stop):
            yield self._enterprise(e)
