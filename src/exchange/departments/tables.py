"""Exportable topics' records in bulk: a range of source rows derived as columns.

Each builder here is the bulk twin of one record generator in
:mod:`exchange.departments.records` (whose scalar code stays the definition): it derives
the rows ``[start, stop)`` from :mod:`exchange.departments.columns` and answers a
:class:`Table`, the records as one list per field, in the generator's field order. An
export turns a table into NDJSON lines with one ``orjson.dumps`` per record; nothing else
runs per record but list indexing and string formatting.

Every Rng draw of the scalar code is a row of :func:`columns.draws`; a draw that the scalar
code makes only on some branch moves the later ones, which the builders follow with
``np.where`` over draw rows. The tests compare each table record by record with the single
lookups of its keys, for every exportable topic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import orjson

from exchange.departments import bulk, ids, records
from exchange.departments.bulk import BOOL, I64, U64, feistel_forward, mix
from exchange.departments.city import _BASE_ORD, _T_VEH, AREAS, DAYS, INDUSTRIES, PLATE_CHARS, City
from exchange.departments.columns import (
    REF_ORD,
    Firms,
    People,
    _street_tables,
    draws,
    from_age,
    iso_dates,
    pick,
    years_of,
)

__all__ = ["TABLES", "Table"]

Record = dict[str, Any]
_AREA_NAMES = [ids.AREA_NAMES[a] for a in AREAS]
_NONE = np.int64(-1)


@dataclass(slots=True)
class Table:
    """Records of a range of source rows, one list per field (in the generator's order)."""

    rows: list[int]
    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.rows)

    def records(self) -> Iterator[tuple[int, Record]]:
        """(source row, record) of each record, in order: what ``export_rows`` yields."""
        names = tuple(self.columns)
        for row, values in zip(self.rows, zip(*self.columns.values(), strict=True), strict=True):
            yield row, dict(zip(names, values, strict=True))

    def lines(self, fields: tuple[str, ...]) -> list[bytes]:
        """Each record projected to ``fields`` as one NDJSON line, byte for byte what the
        single lookup serialises (all fields: the generator's order; fewer: ``fields``')."""
        if len(fields) == len(self.columns):
            fields = tuple(self.columns)
        dumps = orjson.dumps
        cols = [self.columns[f] for f in fields]
        return [dumps(dict(zip(fields, v, strict=True))) + b"\n" for v in zip(*cols, strict=True)]


# -- shared pieces ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _birth_iso() -> list[str]:
    """ISO date of every day a person can be born on (by day index)."""
    return iso_dates(np.arange(DAYS, dtype=np.int64) + _BASE_ORD)


def _iso(ordinals: I64) -> list[str]:
    return iso_dates(ordinals)


def _span(start: int, stop: int, limit: int) -> I64:
    return np.arange(max(0, start), min(stop, limit), dtype=np.int64)


def _ok(values: list[Any], keep: list[bool]) -> list[Any]:
    return [v for v, k in zip(values, keep, strict=True) if k]


def _people(city: City, start: int, stop: int) -> People:
    return People(city, _span(start, stop, city.population))


def _employers(p: People) -> tuple[People, Firms, I64]:
    """The employed people of a block, the firms employing them (each once) and, per
    person, the position of their employer among those firms."""
    staff = p.take(p.employer >= 0)
    found, pos = np.unique(staff.employer, return_inverse=True)
    return staff, Firms(p.city, found), pos.astype(np.int64)


def _enrolled(city: City, p: People, founded: I64) -> I64:
    """``records._enrolled_on`` in bulk (ordinals), from each employer's founding day."""
    first = from_age(p.day, 18, founded)
    d = draws(city, "enrol", 1, p.index)[0]
    return bulk._between(d, first, np.full(p.n, REF_ORD))


def _contribution_base(city: City, p: People) -> I64:
    return bulk._between(
        draws(city, "wage", 1, p.index)[0], np.full(p.n, 5284), np.full(p.n, 26421)
    )


def _months_to_reference(ordinals: I64) -> I64:
    """Months from each day's month to the reference month, both counted."""
    stamps = (ordinals - dt.date(1970, 1, 1).toordinal()).astype("datetime64[D]")
    month = stamps.astype("datetime64[M]").astype(np.int64)
    ref = np.datetime64(dt.date(2024, 12, 1), "M").astype(np.int64)
    out: I64 = ref - month + 1
    return out


# -- people ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _police_stations() -> list[list[str]]:
    streets, _ = _street_tables()
    return [
        [
            f"广州市公安局{_AREA_NAMES[a]}分局{s.removesuffix('街道').removesuffix('镇')}派出所"
            for s in row
        ]
        for a, row in enumerate(streets)
    ]


def household_registration(city: City, start: int, stop: int) -> Table:
    p = _people(city, start, stop)
    idn, iso = p.id_number, _birth_iso()
    stations = _police_stations()
    index = p.index.tolist()
    return Table(
        index,
        {
            "id_number": idn,
            "name": p.name,
            "sex": p.sex,
            "birth_date": [iso[d] for d in p.day.tolist()],
            "ethnicity": p.ethnicity,
            "household_number": p.household_number,
            "relation_to_head": p.relation,
            "registered_address": p.address,
            "registered_street": p.street,
            "police_station": [
                stations[a][s] for a, s in zip(p.district.tolist(), p.street_i, strict=True)
            ],
            "status": ["正常" if a else "死亡注销" for a in p.alive.tolist()],
            "photo_ref": [
                f"gaj-photo/{k[:6]}/{i:09d}.jpg" for k, i in zip(idn, index, strict=True)
            ],
        },
    )


def medical_insurance(city: City, start: int, stop: int) -> Table:
    p = _people(city, start, stop)
    employed = p.employer >= 0
    d = draws(city, "medical", 2, p.index)
    # Only the unemployed spend a draw on whether they are enrolled at all.
    keep = p.alive & (employed | bulk._chance(d[0], 0.9))
    p, employed = p.take(keep), employed[keep]
    days = np.where(employed, d[0][keep], d[1][keep]) % np.uint64(901)
    enrolled = np.maximum(p.birth, dt.date(2008, 1, 1).toordinal()) + days.astype(np.int64)
    return Table(
        p.index.tolist(),
        {
            "id_number": p.id_number,
            "name": p.name,
            "insurance_category": [
                "职工基本医疗保险" if e else "城乡居民基本医疗保险" for e in employed.tolist()
            ],
            "status": ["正常参保"] * p.n,
            "enrolled_on": _iso(np.minimum(enrolled, REF_ORD)),
        },
    )


def real_estate(city: City, start: int, stop: int) -> Table:
    p = _people(city, start, stop)
    owner = np.where(p.together, (p.index >> 1) * 2, p.index)
    z = draws(city, "estate", 1, owner)[0] % np.uint64(100)
    count = np.select([z < 40, z < 85, z < 97], [0, 1, 2], 3)
    count = np.where(p.age < 20, 0, count)
    keep = (count > 0) & p.alive
    p, owner, count, together = p.take(keep), owner[keep], count[keep], p.together[keep]
    n = p.n
    r = draws(city, "estate-unit", 13, owner)

    def num(row: int, hi: int) -> list[int]:
        out: list[int] = (1 + (r[row] % np.uint64(hi)).astype(np.int64)).tolist()
        return out

    district = (r[0] % np.uint64(len(AREAS))).astype(np.int64).tolist()
    registered = bulk._between(
        r[1], np.full(n, dt.date(2000, 1, 1).toordinal()), np.full(n, REF_ORD)
    )
    reg_year = years_of(registered).tolist()
    u1, u2, u3, u4, u5 = num(2, 999), num(3, 999), num(4, 99999), num(5, 9999), num(6, 9999)
    cert = num(7, 9999999)
    place = pick(("花园", "雅苑", "名苑", "新村"), r[8])
    b1, b2, b3 = num(9, 40), num(10, 33), num(11, 6)
    area = (3500 + (r[12] % np.uint64(12501)).astype(np.int64)).tolist()
    return Table(
        p.index.tolist(),
        {
            "id_number": p.id_number,
            "name": p.name,
            "property_count": count.tolist(),
            "unit_number": [
                f"{AREAS[a]}{x1:03d}{x2:03d}GB{x3:05d}F{x4:04d}{x5:04d}"
                for a, x1, x2, x3, x4, x5 in zip(district, u1, u2, u3, u4, u5, strict=True)
            ],
            "certificate_number": [
                f"粤({y})广州市不动产权第{c:07d}号" for y, c in zip(reg_year, cert, strict=True)
            ],
            "location": [
                f"广州市{_AREA_NAMES[a]}{w}{x}栋{y}0{v}房"
                for a, w, x, y, v in zip(district, place, b1, b2, b3, strict=True)
            ],
            "floor_area": [round(v / 100, 2) for v in area],
            "usage": ["住宅"] * n,
            "right_type": ["国有建设用地使用权/房屋所有权"] * n,
            "co_ownership": ["共同共有" if t else "单独所有" for t in together.tolist()],
            "registered_on": _iso(registered),
        },
    )


def marriage_registration(city: City, start: int, stop: int) -> Table:
    start, stop = max(0, start), min(stop, city.population)
    # Whole couples: each record names both partners.
    lo, hi = start & ~1, min(stop + (stop & 1), city.population)
    p = People(city, np.arange(lo, hi, dtype=np.int64))
    pos = np.arange(start - lo, stop - lo, dtype=np.int64)
    pos = pos[p.married[pos] >= 0]
    man = pos & ~1
    divorced = p.divorced[pos] >= 0
    day = np.where(divorced, p.divorced[pos], p.married[pos])
    man_index = p.index[man]
    serial = 1 + (draws(city, "marriage", 1, man_index)[0] % np.uint64(99999)).astype(np.int64)
    office = p.district[man].tolist()
    idn, who = p.id_number, p.name
    return Table(
        p.index[pos].tolist(),
        {
            "id_number": [idn[i] for i in pos.tolist()],
            "name": [who[i] for i in pos.tolist()],
            "registration_type": ["离婚登记" if d else "结婚登记" for d in divorced.tolist()],
            "registered_on": _iso(day),
            "certificate_number": [
                f"{'L' if d else 'J'}{AREAS[o]}-{y}-{s:06d}"
                for d, o, y, s in zip(
                    divorced.tolist(), office, years_of(day).tolist(), serial.tolist(), strict=True
                )
            ],
            "registration_office": [f"广州市{_AREA_NAMES[o]}民政局婚姻登记处" for o in office],
            "man_name": [who[i] for i in man.tolist()],
            "man_id_number": [idn[i] for i in man.tolist()],
            "woman_name": [who[i + 1] for i in man.tolist()],
            "woman_id_number": [idn[i + 1] for i in man.tolist()],
        },
    )


_VIN_LUT = np.zeros(128, dtype=np.int64)
for _c, _v in records._VIN_VALUES.items():
    _VIN_LUT[ord(_c)] = _v
_VIN_BYTES = np.frombuffer(records._VIN_CHARS.encode(), dtype=np.uint8)
_WMI = ("LVG", "LHG", "LGX", "LNB", "LGB", "L1N", "LFV", "LB3")
_WMI_BYTES = np.array([list(w.encode()) for w in _WMI], dtype=np.uint8)
_PLATE_BYTES = np.frombuffer(PLATE_CHARS.encode(), dtype=np.uint8)


def _vins(brand: I64, body_draws: U64) -> list[str]:
    """``vin_with_check(wmi + 14 drawn characters)`` of each vehicle."""
    n = len(brand)
    chars = np.empty((n, 17), dtype=np.uint8)
    chars[:, :3] = _WMI_BYTES[brand]
    chars[:, 3:] = _VIN_BYTES[(body_draws % np.uint64(len(_VIN_BYTES))).astype(np.int64).T]
    weights = np.array(records._VIN_WEIGHTS, dtype=np.int64)
    check = (_VIN_LUT[chars] * weights).sum(axis=1) % 11
    chars[:, 8] = np.where(check == 10, ord("X"), ord("0") + check)
    out: list[str] = chars.view("S17").ravel().astype(str).tolist()
    return out


def _plates(city: City, slot: I64) -> list[str]:
    """``City.plate_of`` of each slot (``index * 2 + k``)."""
    v = feistel_forward(city._plates, slot.astype(np.uint64)).astype(np.int64)
    chars = np.empty((len(slot), 5), dtype=np.uint8)
    base = len(PLATE_CHARS)
    for i in range(4, -1, -1):
        v, d = np.divmod(v, base)
        chars[:, i] = _PLATE_BYTES[d]
    return ["粤A" + s for s in chars.view("S5").ravel().astype(str).tolist()]


def vehicle_registration(city: City, start: int, stop: int) -> Table:
    p = _people(city, start, stop)
    z = mix(p.n, city.seed, _T_VEH, p.index.astype(np.uint64)) % np.uint64(100)
    count = np.where(z < 66, 0, np.where(z < 92, 1, 2))
    count = np.where(p.alive & (p.age >= 18), count, 0)
    # One record per vehicle, a person's vehicles in order.
    owners = np.repeat(np.arange(p.n), count)
    k = np.arange(len(owners)) - np.repeat(np.cumsum(count) - count, count)
    o = p.take(owners)
    r = draws(city, "vehicle", 18, o.index, k)
    brand = (r[0] % np.uint64(len(records._BRANDS))).astype(np.int64)
    first = from_age(o.day, 18, dt.date(1995, 1, 1).toordinal())
    registered = bulk._between(r[16], first, np.full(o.n, REF_ORD))
    return Table(
        o.index.tolist(),
        {
            "plate_number": _plates(city, o.index * 2 + k),
            "plate_type": ["小型汽车"] * o.n,
            "vehicle_type": [
                "小型普通客车" if c else "小型越野客车" for c in bulk._chance(r[15], 0.85).tolist()
            ],
            "brand": [records._BRANDS[b] for b in brand.tolist()],
            "vin": _vins(brand, r[1:15]),
            "owner_name": o.name,
            "owner_id_number": o.id_number,
            "registered_on": _iso(registered),
            "status": ["正常" if c else "抵押" for c in bulk._chance(r[17], 0.9).tolist()],
        },
    )


# Candidate mothers a birth certificate's Rng draws (``records.birth_certificate``).
_MOTHER_DRAWS = 24
_BIRTH_CERTS_FROM = records._BIRTH_CERTS_FROM.toordinal()


def birth_certificate(city: City, start: int, stop: int) -> Table:
    p = _people(city, start, stop)
    p = p.take(p.birth >= _BIRTH_CERTS_FROM)
    n = p.n
    r = draws(city, "birth", _MOTHER_DRAWS + 1, p.index)
    _, years, months, mdays, _ = bulk._calendar()
    child_y, child_md = years[p.day], months[p.day] * 100 + mdays[p.day]
    unit = np.full(n, -1, dtype=np.int64)
    married = np.full(n, -1, dtype=np.int64)
    spent = np.full(n, _MOTHER_DRAWS, dtype=np.int64)  # draws used before the hospital's
    open_ = np.arange(n)
    # Candidates one draw at a time, for the children still without a mother: most find
    # one in a few draws, so this derives a few couples per child, not 24.
    for k in range(_MOTHER_DRAWS):
        if not len(open_):
            break
        u = (r[k][open_] % np.uint64(city.units)).astype(np.int64)
        wife = 2 * u + 1
        exists = wife < city.population
        cand = People(city, np.where(exists, wife, 1))
        wy, wmd = years[cand.day], months[cand.day] * 100 + mdays[cand.day]
        age = child_y[open_] - wy - (child_md[open_] < wmd)
        fit = exists & (cand.married >= 0) & (age >= 20) & (age <= 42)
        hit = open_[fit]
        unit[hit], married[hit], spent[hit] = u[fit], cand.married[fit], k + 1
        open_ = open_[~fit]
    has_mother = unit >= 0
    has_father = has_mother & (married <= p.birth)
    parents = np.unique(np.concatenate([2 * unit[has_mother], 2 * unit[has_mother] + 1]))
    folk = People(city, parents)
    at = np.searchsorted(parents, 2 * np.maximum(unit, 0))
    fname, fid = folk.name, folk.id_number
    place = r[spent, np.arange(n)]
    mothers = [
        (fname[a + 1], fid[a + 1]) if m else (None, None)
        for a, m in zip(at.tolist(), has_mother.tolist(), strict=True)
    ]
    fathers = [
        (fname[a], fid[a]) if f else (None, None)
        for a, f in zip(at.tolist(), has_father.tolist(), strict=True)
    ]
    iso = _birth_iso()
    return Table(
        p.index.tolist(),
        {
            "id_number": p.id_number,
            "certificate_number": [
                f"{chr(65 + y % 26)}44{i:08d}"
                for y, i in zip(years[p.day].tolist(), p.index.tolist(), strict=True)
            ],
            "child_name": p.name,
            "sex": p.sex,
            "birth_date": [iso[d] for d in p.day.tolist()],
            "birth_place": pick(records._HOSPITALS, place),
            "mother_name": [m[0] for m in mothers],
            "mother_id_number": [m[1] for m in mothers],
            "father_name": [f[0] for f in fathers],
            "father_id_number": [f[1] for f in fathers],
        },
    )


# -- people through their employer -------------------------------------------------------------


def social_insurance_enrolment(city: City, start: int, stop: int) -> Table:
    p, firms, at = _employers(_people(city, start, stop))
    codes, names = firms.credit_code, firms.name
    return Table(
        p.index.tolist(),
        {
            "id_number": p.id_number,
            "name": p.name,
            "employer_credit_code": [codes[a] for a in at.tolist()],
            "employer_name": [names[a] for a in at.tolist()],
            "insurance_types": ["养老,医疗,失业,工伤,生育"] * p.n,
            "status": ["参保缴费"] * p.n,
            "enrolled_on": _iso(_enrolled(city, p, firms.founded[at])),
            "contribution_base": _contribution_base(city, p).tolist(),
        },
    )


_FUND_RATES = ("0.05", "0.08", "0.10", "0.12")


def provident_fund(city: City, start: int, stop: int) -> Table:
    p = _people(city, start, stop)
    p = p.take(p.employer >= 0)
    r = draws(city, "fund", 3, p.index)
    p, r = p.take(bulk._chance(r[0], 0.82)), r[:, bulk._chance(r[0], 0.82)]
    found, at = np.unique(p.employer, return_inverse=True)
    firms = Firms(city, found)
    at = at.astype(np.int64)
    base = _contribution_base(city, p).tolist()
    rate = [float(x) for x in pick(_FUND_RATES, r[1])]
    opened = _enrolled(city, p, firms.founded[at])
    months = _months_to_reference(opened).tolist()
    withdrawn = (r[2] % np.uint64(61)).astype(np.int64).tolist()
    monthly = [round(b * x * 2, 2) for b, x in zip(base, rate, strict=True)]
    codes, names = firms.credit_code, firms.name
    return Table(
        p.index.tolist(),
        {
            "id_number": p.id_number,
            "name": p.name,
            "account_number": [f"1100{i:010d}" for i in p.index.tolist()],
            "employer_credit_code": [codes[a] for a in at.tolist()],
            "employer_name": [names[a] for a in at.tolist()],
            "deposit_base": base,
            "deposit_rate": rate,
            "monthly_deposit": monthly,
            "balance": [
                round(m * k * (1 - w / 100), 2)
                for m, k, w in zip(monthly, months, withdrawn, strict=True)
            ],
            "status": ["正常"] * p.n,
            "opened_on": _iso(opened),
        },
    )


# -- enterprises -----------------------------------------------------------------------------


def _firms(city: City, start: int, stop: int) -> Firms:
    return Firms(city, _span(start, stop, city.enterprises))


def enterprise_registration(city: City, start: int, stop: int) -> Table:
    f = _firms(city, start, stop)
    rep_names, rep_ids = f.legal_rep
    return Table(
        f.e.tolist(),
        {
            "credit_code": f.credit_code,
            "name": f.name,
            "entity_type": f.entity_type,
            "legal_representative": rep_names,
            "legal_representative_id_number": rep_ids,
            "industry": f.industry,
            "address": f.address,
            "registered_capital": f.capital,
            "founded_on": _iso(f.founded),
            "registration_authority": [
                f"广州市{_AREA_NAMES[a]}市场监督管理局" for a in f.district.tolist()
            ],
            "status": f.status,
            "business_scope": f.business_scope,
        },
    )


def tax_registration(city: City, start: int, stop: int) -> Table:
    f = _firms(city, start, stop)
    r = draws(city, "tax", 3, f.e)
    company = ~f.kind92
    # Only a company (91) spends a draw on whether it is a general taxpayer.
    general = company & bulk._chance(r[0], 0.35)
    rating = np.where(company, r[1], r[0])
    delay = np.where(company, r[2], r[1]) % np.uint64(28)
    registered = f.founded + 3 + delay.astype(np.int64)
    return Table(
        f.e.tolist(),
        {
            "credit_code": f.credit_code,
            "taxpayer_name": f.name,
            "registration_type": [
                "个体经营" if k else "私营有限责任公司" for k in f.kind92.tolist()
            ],
            "taxpayer_qualification": [
                "增值税一般纳税人" if g else "小规模纳税人" for g in general.tolist()
            ],
            "tax_authority": [
                f"国家税务总局广州市{_AREA_NAMES[a]}税务局" for a in f.district.tolist()
            ],
            "credit_rating": pick(("A", "B", "B", "M", "C", "D"), rating),
            "registered_on": _iso(registered),
            "status": ["正常" if o else "非正常" for o in f.operating.tolist()],
        },
    )


def _holds(f: Firms) -> list[BOOL]:
    """Per licence type, whether each enterprise holds one (its industry qualifies)."""
    out = []
    for _, _, _, industry in records.LICENCE_TYPES:
        ok = np.array([i[0].startswith(industry) for i in INDUSTRIES], dtype=np.bool_)
        out.append(ok[f.industry_i])
    return out


def _luhn(serial: I64) -> I64:
    """``ids.luhn_digit`` of each 12-digit serial."""
    total = np.zeros(len(serial), dtype=np.int64)
    v = serial.copy()
    for i in range(12):
        v, d = np.divmod(v, 10)
        if i % 2 == 0:
            d = 2 * d
            d = np.where(d > 9, d - 9, d)
        total += d
    out: I64 = (10 - total % 10) % 10
    return out


def e_licence(city: City, start: int, stop: int) -> Table:
    f = _firms(city, start, stop)
    parts: list[tuple[I64, int, I64, I64]] = []  # (positions, type, serials, issued)
    for t, held in enumerate(_holds(f)):
        pos = np.flatnonzero(held)
        e = f.e[pos]
        serial = feistel_forward(city.licence_feistel(t), e.astype(np.uint64)).astype(np.int64)
        issued = f.founded[pos]
        if t:
            d = draws(city, "licence", 1, e, t)[0]
            issued = issued + (d % np.uint64(61)).astype(np.int64)
        parts.append((pos, t, serial, issued))
    # Records in enterprise order, a firm's licences in type order.
    pos = np.concatenate([p[0] for p in parts])
    types = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    serial = np.concatenate([p[2] for p in parts])
    issued = np.concatenate([p[3] for p in parts])
    order = np.lexsort((types, pos))
    pos, types, serial, issued = pos[order], types[order], serial[order], issued[order]
    check = _luhn(serial).tolist()
    valid = issued + 5 * 365
    expired = (types > 0) & (valid < REF_ORD)
    operating = f.operating[pos]
    valid_iso = _iso(valid)
    names, codes, district = f.name, f.credit_code, f.district.tolist()
    lt = records.LICENCE_TYPES
    return Table(
        f.e[pos].tolist(),
        {
            "licence_number": [
                f"{lt[t][0]}{s:012d}{c}"
                for t, s, c in zip(types.tolist(), serial.tolist(), check, strict=True)
            ],
            "licence_type": [lt[t][1] for t in types.tolist()],
            "holder_name": [names[i] for i in pos.tolist()],
            "holder_credit_code": [codes[i] for i in pos.tolist()],
            "issuing_authority": [
                f"广州市{lt[t][2]}" if t else f"广州市{_AREA_NAMES[district[i]]}{lt[t][2]}"
                for t, i in zip(types.tolist(), pos.tolist(), strict=True)
            ],
            "issued_on": _iso(issued),
            "valid_until": [
                v if t else "长期" for t, v in zip(types.tolist(), valid_iso, strict=True)
            ],
            "status": [
                "有效" if o and not x else "注销" if not o else "过期"
                for o, x in zip(operating.tolist(), expired.tolist(), strict=True)
            ],
        },
    )


def credit_publicity(city: City, start: int, stop: int) -> Table:
    f = _firms(city, start, stop)
    n = f.n
    cols = np.arange(n)
    r = draws(city, "credit", 7, f.e)
    penalised = ~bulk._chance(r[0], 0.85)
    penalties = np.where(penalised, 1 + (r[1] % np.uint64(4)).astype(np.int64), 0)
    # Draw positions after the branches: a penalised firm draws its count and its latest
    # penalty's date; an unpenalised one whether it is on the red list.
    latest = bulk._between(r[2], f.founded, np.full(n, REF_ORD))
    red = ~penalised & bulk._chance(r[1], 0.03)
    after = np.where(penalised, 3, 2)
    extra = (r[after, cols] % np.uint64(4)).astype(np.int64)
    licences = sum(h.astype(np.int64) for h in _holds(f))
    number = 1 + (r[4] % np.uint64(9999)).astype(np.int64)
    reason = pick(records._PENALTY_REASONS, r[5])
    amount = (1 + (r[6] % np.uint64(200)).astype(np.int64)) * 500
    revoked = np.array([s.startswith("吊销") for s in f.status], dtype=np.bool_)
    black = (penalties >= 3) | revoked
    latest_iso = _iso(latest)
    latest_year = years_of(latest).tolist()
    pen = penalised.tolist()
    return Table(
        f.e.tolist(),
        {
            "credit_code": f.credit_code,
            "name": f.name,
            "licensing_count": (licences + extra).tolist(),
            "penalty_count": penalties.tolist(),
            "latest_penalty_number": [
                f"穗市监处罚〔{y}〕{x}号" if p else None
                for p, y, x in zip(pen, latest_year, number.tolist(), strict=True)
            ],
            "latest_penalty_reason": [x if p else None for p, x in zip(pen, reason, strict=True)],
            "latest_penalty_date": [x if p else None for p, x in zip(pen, latest_iso, strict=True)],
            "latest_penalty_amount": [
                x if p else None for p, x in zip(pen, amount.tolist(), strict=True)
            ],
            "list_status": [
                "黑名单" if b else "红名单" if x else "无"
                for b, x in zip(black.tolist(), red.tolist(), strict=True)
            ],
        },
    )


#: Bulk twins of the exportable generators, by generator name.
TABLES: dict[str, Callable[[City, int, int], Table]] = {
    "household_registration": household_registration,
    "vehicle_registration": vehicle_registration,
    "enterprise_registration": enterprise_registration,
    "marriage_registration": marriage_registration,
    "social_insurance_enrolment": social_insurance_enrolment,
    "provident_fund": provident_fund,
    "real_estate": real_estate,
    "tax_registration": tax_registration,
    "birth_certificate": birth_certificate,
    "medical_insurance": medical_insurance,
    "e_licence": e_licence,
    "credit_publicity": credit_publicity,
}
