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
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from exchange import ids
from exchange.departments import names

__all__ = [
    "REFERENCE_DATE",
    "City",
    "Enterprise",
    "Person",
    "Rng",
    "mix",
]

M64 = (1 << 64) - 1
# The city's "today": fixed so that ages, statuses and balances never drift between runs.
REFERENCE_DATE = dt.date(2024, 12, 31)
_FIRST_BIRTH = dt.date(1930, 1, 1)
_LAST_BIRTH = dt.date(2024, 6, 30)
_BASE_ORD = _FIRST_BIRTH.toordinal()
DAYS = _LAST_BIRTH.toordinal() - _BASE_ORD + 1
AREAS = ids.CURRENT_AREAS
N_AREAS = len(AREAS)
# Sequence halves: male sequence 2h+1 (001..997), female 2h+2 (002..998).
SEQ_HALVES = 499
UNIT_SLOTS = DAYS * N_AREAS * SEQ_HALVES

_RETIRE_2005 = dt.date(2005, 1, 1)
_LUOGANG_FROM, _LUOGANG_TO = dt.date(2005, 4, 28), dt.date(2014, 2, 12)

# Organisation-code bodies: 8 digits (issued before the 2015 reform) then "MA" + 6 characters.
_NUMERIC_BODIES = 10**8
_MA_CHARS = ids.CREDIT_ALPHABET
_MA_BODIES = len(_MA_CHARS) ** 6
ORG_SLOTS = _NUMERIC_BODIES + _MA_BODIES

PLATE_CHARS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_PLATE_VALUE = {c: i for i, c in enumerate(PLATE_CHARS)}
PLATE_SLOTS = len(PLATE_CHARS) ** 5
MAX_POPULATION = PLATE_SLOTS // 2

# Tags keep the PRNG streams of different facts independent.
_T_PERSON, _T_DEATH, _T_COUPLE, _T_HOUSE, _T_WORK, _T_ENT, _T_VEH = range(1, 8)
_T_PEOPLE_PERM, _T_EMP_PERM, _T_ORG_PERM, _T_PLATE_PERM, _T_TAU, _T_LIC = range(11, 17)


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


# Streets per current district (an illustrative subset of the real ones).
STREETS: dict[str, tuple[str, ...]] = {
    "440103": ("沙面街道", "多宝街道", "逢源街道", "花地街道", "石围塘街道", "白鹤洞街道"),
    "440104": ("北京街道", "人民街道", "东山街道", "农林街道", "大塘街道", "华乐街道"),
    "440105": ("赤岗街道", "新港街道", "江南中街道", "琶洲街道", "南华西街道", "昌岗街道"),
    "440106": ("石牌街道", "天河南街道", "林和街道", "猎德街道", "员村街道", "五山街道"),
    "440111": ("三元里街道", "景泰街道", "同德街道", "京溪街道", "永平街道", "嘉禾街道"),
    "440112": ("黄埔街道", "大沙街道", "萝岗街道", "夏港街道", "长洲街道", "联和街道"),
    "440113": ("市桥街道", "大石街道", "洛浦街道", "钟村街道", "南村镇", "石楼镇"),
    "440114": ("新华街道", "秀全街道", "花城街道", "狮岭镇", "炭步镇", "花东镇"),
    "440115": ("南沙街道", "珠江街道", "黄阁镇", "横沥镇", "万顷沙镇", "东涌镇"),
    "440117": ("街口街道", "江埔街道", "城郊街道", "温泉镇", "太平镇", "鳌头镇"),
    "440118": ("荔城街道", "增江街道", "新塘镇", "永宁街道", "石滩镇", "中新镇"),
}
ROADS = (
    "中山路",
    "解放路",
    "环市东路",
    "东风中路",
    "黄埔大道",
    "天河路",
    "广州大道",
    "工业大道",
    "江南大道",
    "人民路",
    "沿江路",
    "新港路",
    "白云大道",
    "广园路",
    "同和路",
    "迎宾路",
    "市桥路",
    "清华路",
    "兴业路",
    "建设路",
    "文化路",
    "公园路",
    "凤凰路",
    "荔景大道",
)
# Residence weights per district (roughly the 2020 census shares, per cent).
_RESIDENCE = (
    ("440103", 6),
    ("440104", 6),
    ("440105", 10),
    ("440106", 12),
    ("440111", 20),
    ("440112", 7),
    ("440113", 15),
    ("440114", 9),
    ("440115", 5),
    ("440117", 4),
    ("440118", 6),
)
_RESIDENCE_TABLE = tuple(code for code, w in _RESIDENCE for _ in range(w))

ENT_WORDS = (
    "华信达创瑞恒泰丰盛源宏嘉鑫润联安德耀汇通新佳宝兴隆昌广粤穗珠江云天海科智博远凯和顺美福金诚"
)
INDUSTRIES: tuple[tuple[str, str, str], ...] = (
    # (industry, company suffix, individual-business suffix)
    ("批发和零售业", "贸易有限公司", "便利店"),
    ("住宿和餐饮业", "餐饮管理有限公司", "餐饮店"),
    ("信息传输、软件和信息技术服务业", "信息科技有限公司", "电脑维修部"),
    ("制造业", "实业有限公司", "五金加工厂"),
    ("租赁和商务服务业", "商务咨询有限公司", "文印店"),
    ("建筑业", "建设工程有限公司", "装修工作室"),
    ("交通运输、仓储和邮政业", "物流有限公司", "货运部"),
    ("科学研究和技术服务业", "技术有限公司", "技术服务部"),
    ("居民服务、修理和其他服务业", "家政服务有限公司", "理发店"),
    ("房地产业", "房地产开发有限公司", "房产中介部"),
)
COMPANY_TYPES = (
    "有限责任公司(自然人投资或控股)",
    "有限责任公司(自然人独资)",
    "有限责任公司(法人独资)",
    "股份有限公司(非上市、自然人投资或控股)",
)
ENT_STATUSES = (("存续(在业)", 880), ("注销", 70), ("吊销,未注销", 40), ("迁出", 10))
_ENT_STATUS_TABLE = tuple(s for s, w in ENT_STATUSES for _ in range(w // 10))


@dataclass(frozen=True, slots=True)
class Person:
    """One resident, as public security registers them; other facts hang off the index."""

    index: int
    id_number: str
    name: str
    sex: str  # 男 / 女
    birth_date: dt.date
    id_area: str  # area code printed in the ID number (may be a retired one)
    ethnicity: str
    household_number: str
    relation: str  # 户主 / 配偶
    district: str  # current residence district code
    street: str
    address: str
    death_date: dt.date | None
    spouse_index: int | None
    married_on: dt.date | None
    divorced_on: dt.date | None

    def age_on(self, day: dt.date) -> int:
        """Completed years of age on ``day``."""
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))

    @property
    def age(self) -> int:
        """Age on the city's reference date."""
        return self.age_on(REFERENCE_DATE)

    @property
    def alive(self) -> bool:
        return self.death_date is None


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


def _day_to_date(day: int) -> dt.date:
    return dt.date.fromordinal(_BASE_ORD + day)


def _id_area(area: str, birth: dt.date, h: int) -> str:
    """The area code printed on the ID: some older residents carry a retired district's."""
    if birth < _RETIRE_2005 and h % 3 == 0:
        if area == "440104":
            return "440102"
        if area == "440103":
            return "440107"
    if area == "440112" and _LUOGANG_FROM <= birth < _LUOGANG_TO and h % 2 == 0:
        return "440116"
    return area


_DISPLAY_TO_AREA = {"440102": "440104", "440107": "440103", "440116": "440112"}
_AREA_INDEX = {a: i for i, a in enumerate(AREAS)}


class City:
    """A deterministic synthetic Guangzhou of ``population`` people and ``enterprises`` firms.

    Construction is O(1); every record is derived from its index on demand, with small LRU
    caches in front of the hot derivations.
    """

    def __init__(self, seed: int, population: int, enterprises: int) -> None:
        if not 2 <= population <= MAX_POPULATION:
            raise ValueError(f"population must be between 2 and {MAX_POPULATION:,}")
        if not 1 <= enterprises <= 50_000_000:
            raise ValueError("enterprises must be between 1 and 50,000,000")
        self.seed = seed
        self.population = population
        self.enterprises = enterprises
        self.units = (population + 1) // 2
        self._people = Feistel(mix(seed, _T_PEOPLE_PERM), UNIT_SLOTS)
        self._emp = Feistel(mix(seed, _T_EMP_PERM), population)
        self._orgs = Feistel(mix(seed, _T_ORG_PERM), ORG_SLOTS)
        self._plates = Feistel(mix(seed, _T_PLATE_PERM), PLATE_SLOTS)
        self._tau_key = mix(seed, _T_TAU)
        # Per-instance caches: a module-level cache would leak between cities of other seeds.
        self.person = lru_cache(maxsize=131_072)(self._person)  # type: ignore[method-assign]
        self.enterprise = lru_cache(maxsize=65_536)(  # type: ignore[method-assign]
            self._enterprise
        )

    # -- people: slots ---------------------------------------------------------------

    def _tau_params(self, h: int) -> tuple[int, int]:
        """(area shift, key) for sequence half ``h``; the shift alone keeps areas bijective."""
        z = mix(self._tau_key, h)
        # The wife lives in her husband's birth district a third of the time.
        shift = 0 if z % 3 == 0 else 1 + (z >> 8) % (N_AREAS - 1)
        return shift, z

    @staticmethod
    def _tau_delta(z: int, wife_area_i: int) -> int:
        # Wife 3 years older .. 8 years younger, varied by her district.
        return int(mix(z, wife_area_i) % (11 * 365)) - 3 * 365

    def _slot_parts(self, index: int) -> tuple[int, int, int]:
        """(day, area index, sequence half) of person ``index``."""
        mslot = self._people.forward(index >> 1)
        h = mslot % SEQ_HALVES
        rest = mslot // SEQ_HALVES
        area_i = rest % N_AREAS
        day = rest // N_AREAS
        if index & 1:
            shift, z = self._tau_params(h)
            area_i = (area_i + shift) % N_AREAS
            day = (day + self._tau_delta(z, area_i)) % DAYS
        return day, area_i, h

    def _index_of_parts(self, day: int, area_i: int, h: int, female: bool) -> int:
        if female:
            shift, z = self._tau_params(h)
            day = (day - self._tau_delta(z, area_i)) % DAYS
            area_i = (area_i - shift) % N_AREAS
        mslot = (day * N_AREAS + area_i) * SEQ_HALVES + h
        return self._people.inverse(mslot) * 2 + int(female)

    def birth_date_of(self, index: int) -> dt.date:
        """Birth date of person ``index`` without deriving the whole person."""
        return _day_to_date(self._slot_parts(index)[0])

    def id_number_of(self, index: int) -> str:
        """The resident ID number of person ``index``."""
        day, area_i, h = self._slot_parts(index)
        birth = _day_to_date(day)
        seq = 2 * h + 2 if index & 1 else 2 * h + 1
        return ids.make_id_number(_id_area(AREAS[area_i], birth, h), birth, seq)

    def index_of_id_number(self, id_number: str) -> int | None:
        """The person index of a well-formed ID number, or ``None`` if not in the city."""
        shown = id_number[:6]
        area = _DISPLAY_TO_AREA.get(shown, shown)
        area_i = _AREA_INDEX.get(area)
        if area_i is None:
            return None
        try:
            birth = dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
        except ValueError:
            return None
        day = birth.toordinal() - _BASE_ORD
        if not 0 <= day < DAYS:
            return None
        seq = int(id_number[14:17])
        female = seq % 2 == 0
        h = (seq - 2) // 2 if female else (seq - 1) // 2
        if not 0 <= h < SEQ_HALVES or _id_area(area, birth, h) != shown:
            return None
        index = self._index_of_parts(day, area_i, h, female)
        if not 0 <= index < self.population:
            return None
        return index

    # -- people: facts ---------------------------------------------------------------

    def _death_date(self, index: int, birth: dt.date) -> dt.date | None:
        age = REFERENCE_DATE.year - birth.year
        if age < 55:
            return None
        r = Rng(mix(self.seed, _T_DEATH, index))
        if not r.chance(min(0.6, (age - 55) / 70)):
            return None
        first = max(birth.toordinal() + 55 * 365, dt.date(1995, 1, 1).toordinal())
        last = REFERENCE_DATE.toordinal()
        if first > last:
            return None
        return dt.date.fromordinal(r.between(first, last))

    def _couple(self, unit: int) -> tuple[dt.date, dt.date | None] | None:
        """(married on, divorced on) of unit ``unit``'s two people, or ``None``."""
        wife = 2 * unit + 1
        if wife >= self.population:
            return None
        hd, _, hh = self._slot_parts(2 * unit)
        wd, wa, _ = self._slot_parts(wife)
        if wd != hd + self._tau_delta(
            self._tau_params(hh)[1], wa
        ):  # wrapped around the birth range: an implausible pair
            return None
        hb, wb = _day_to_date(hd), _day_to_date(wd)
        r = Rng(mix(self.seed, _T_COUPLE, unit))
        if not r.chance(0.72):
            return None
        try:
            start = max(hb.replace(year=hb.year + 22), wb.replace(year=wb.year + 20))
        except ValueError:  # 29 February
            start = max(dt.date(hb.year + 22, 3, 1), dt.date(wb.year + 20, 3, 1))
        start = max(start, dt.date(1950, 5, 1))
        end = min(REFERENCE_DATE, start + dt.timedelta(days=15 * 365))
        if start > end:
            return None
        married = dt.date.fromordinal(r.between(start.toordinal(), end.toordinal()))
        for i, b in ((2 * unit, hb), (wife, wb)):
            died = self._death_date(i, b)
            if died is not None and died <= married:
                return None
        divorced = None
        if r.chance(0.09) and married.toordinal() + 400 < REFERENCE_DATE.toordinal():
            divorced = dt.date.fromordinal(
                r.between(married.toordinal() + 365, REFERENCE_DATE.toordinal())
            )
        return married, divorced

    def _person(self, index: int) -> Person:
        if not 0 <= index < self.population:
            raise IndexError(f"person index {index} is outside 0..{self.population - 1}")
        day, area_i, h = self._slot_parts(index)
        birth = _day_to_date(day)
        female = bool(index & 1)
        area = AREAS[area_i]
        id_area = _id_area(area, birth, h)
        id_number = ids.make_id_number(id_area, birth, 2 * h + 2 if female else 2 * h + 1)
        r = Rng(mix(self.seed, _T_PERSON, index))
        surname = names.pick_surname(r.next())
        chars = names.FEMALE_CHARS if female else names.MALE_CHARS
        given = r.pick(chars)
        if r.chance(0.78):
            given += r.pick(chars if r.chance(0.6) else names.NEUTRAL_CHARS)
        ethnicity = names.pick_ethnicity(r.next())
        death = self._death_date(index, birth)
        unit = index >> 1
        couple = self._couple(unit)
        spouse = married = divorced = None
        if couple is not None:
            married, divorced = couple
            spouse = index ^ 1
        together = couple is not None and divorced is None
        head_alive = self._death_date(2 * unit, self.birth_date_of(2 * unit)) is None
        hh_id = 2 * unit if together else index
        relation = "配偶" if together and female and head_alive else "户主"
        hr = Rng(mix(self.seed, _T_HOUSE, hh_id))
        district = _RESIDENCE_TABLE[hr.below(len(_RESIDENCE_TABLE))]
        street = hr.pick(STREETS[district])
        address = (
            f"广州市{ids.AREA_NAMES[district]}{street.removesuffix('街道')}"
            f"{hr.pick(ROADS)}{hr.between(1, 899)}号{hr.between(1, 30)}0{hr.between(1, 8)}房"
        )
        return Person(
            index=index,
            id_number=id_number,
            name=surname + given,
            sex="女" if female else "男",
            birth_date=birth,
            id_area=id_area,
            ethnicity=ethnicity,
            household_number=f"{440100000000 + hh_id:012d}",
            relation=relation,
            district=district,
            street=street,
            address=address,
            death_date=death,
            spouse_index=spouse,
            married_on=married,
            divorced_on=divorced,
        )

    def surname_of(self, index: int) -> str:
        """The surname of person ``index`` (a newborn takes a parent's)."""
        return names.pick_surname(Rng(mix(self.seed, _T_PERSON, index)).next())

    @staticmethod
    def residence_district(draw: int) -> str:
        """A district code drawn with the city's residence weights."""
        return _RESIDENCE_TABLE[draw % len(_RESIDENCE_TABLE)]

    def person(self, index: int) -> Person:
        """Person ``index`` (0-based); raises ``IndexError`` outside the population."""
        return self._person(index)

    def person_by_id_number(self, id_number: str) -> Person | None:
        """The person with this (well-formed) ID number, or ``None`` if not in the city."""
        index = self.index_of_id_number(id_number)
        return None if index is None else self.person(index)

    def sample_indices(self, n: int, seed: int = 0) -> list[int]:
        """``n`` distinct person indices chosen deterministically from ``seed``."""
        n = min(n, self.population)
        picker = Feistel(mix(self.seed, seed, 0x5A3), self.population)
        return [picker.forward(k) for k in range(n)]

    def sample_id_numbers(self, n: int, seed: int = 0) -> list[str]:
        """``n`` distinct ID numbers of people in the city (for load tests and demos)."""
        return [self.id_number_of(i) for i in self.sample_indices(n, seed)]

    def iter_people(self, start: int = 0, stop: int | None = None) -> Iterator[Person]:
        """People in index order, deriving each on the fly (no caching)."""
        stop = self.population if stop is None else min(stop, self.population)
        for i in range(max(0, start), stop):
            yield self._person(i)

    # -- employment ------------------------------------------------------------------

    def enterprise_active(self, e: int) -> bool:
        """Whether enterprise ``e`` is still operating (cheap; no full derivation)."""
        return self._enterprise_status(e) == ENT_STATUSES[0][0]

    def _enterprise_status(self, e: int) -> str:
        return _ENT_STATUS_TABLE[mix(self.seed, _T_ENT, e, 1) % len(_ENT_STATUS_TABLE)]

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
        if mix(self.seed, _T_WORK, index) % 100 >= 74:
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
        if slot < _NUMERIC_BODIES:
            return f"{slot:08d}"
        v = slot - _NUMERIC_BODIES
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
        return _NUMERIC_BODIES + v

    def _enterprise_head(self, e: int) -> tuple[str, str, str, bool]:
        """(credit code, kind, district, founded after the 2015 reform) of enterprise ``e``."""
        slot = self._orgs.forward(e)
        body = self._org_body(slot)
        r = Rng(mix(self.seed, _T_ENT, e))
        modern = slot >= _NUMERIC_BODIES
        kind = "92" if modern and r.chance(0.3) else "91"
        district = _RESIDENCE_TABLE[r.below(len(_RESIDENCE_TABLE))]
        return ids.make_credit_code(kind, district, body), kind, district, modern

    def unused_credit_code(self, kind: str, district: str, draw: int) -> str:
        """A well-formed credit code that no enterprise of the derived city holds, for a
        registration made since the start (post-2015 ``MA`` organisation codes, as every new
        registration gets); ``draw`` picks which."""
        while True:
            body = self._org_body(_NUMERIC_BODIES + draw % _MA_BODIES)
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
        r = Rng(mix(self.seed, _T_ENT, e, 2))
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

    # -- vehicles --------------------------------------------------------------------

    def vehicle_count(self, person: Person) -> int:
        """How many vehicles ``person`` owns (0..2)."""
        if not person.alive or person.age < 18:
            return 0
        z = mix(self.seed, _T_VEH, person.index) % 100
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

    # -- misc keyed derivations used by department records ---------------------------

    def rng(self, tag: str, *parts: int) -> Rng:
        """A PRNG for a named fact of the entity ``parts`` (stable across runs)."""
        return Rng(mix(self.seed, sum(ord(c) << (8 * (i % 7)) for i, c in enumerate(tag)), *parts))

    def licence_feistel(self, type_index: int) -> Feistel:
        """The permutation that numbers licences of one type (12-digit serials)."""
        return _licence_perm(self.seed, type_index)


@lru_cache(maxsize=32)
def _licence_perm(seed: int, type_index: int) -> Feistel:
    return Feistel(mix(seed, _T_LIC, type_index), 10**12)
