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
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from exchange import ids
from exchange.departments import bulk, calendar_arrays, firm_tables, jsonbytes, prng_arrays
from exchange.departments import json_columns as jc
from exchange.departments.city import City
from exchange.departments.columns import (
    REF_ORD,
    Firms,
    People,
    draws,
    from_age,
    iso_dates,
    pick,
    street_tables,
    years_of,
)
from exchange.departments.ndjson import Table
from exchange.departments.people import AREAS, BASE_ORD, DAYS
from exchange.departments.prng import T_VEH
from exchange.departments.prng_arrays import I64, U64, feistel_forward, mix
from exchange.departments.records import health, public_security
from exchange.departments.vehicles import PLATE_CHARS

__all__ = ["TABLES", "Table"]

Record = dict[str, Any]
_AREA_NAMES = [ids.AREA_NAMES[a] for a in AREAS]
_NONE = np.int64(-1)


# -- shared pieces ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _birth_iso() -> list[str]:
    """ISO date of every day a person can be born on (by day index)."""
    return iso_dates(np.arange(DAYS, dtype=np.int64) + BASE_ORD)


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
    """``records.social_security.enrolled_on`` in bulk (ordinals), from each employer's
    founding day."""
    first = from_age(p.day, 18, founded)
    d = draws(city, "enrol", 1, p.index)[0]
    return prng_arrays.between(d, first, np.full(p.n, REF_ORD))


def _contribution_base(city: City, p: People) -> I64:
    return prng_arrays.between(
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
def _police_stations() -> jsonbytes.Vocab:
    """Each street's police station, by ``json_columns.street_key``."""
    streets, _ = street_tables()
    width = max(len(row) for row in streets)
    return jsonbytes.Vocab(
        [
            f"广州市公安局{_AREA_NAMES[a]}分局{row[s].removesuffix('街道').removesuffix('镇')}派出所"
            if s < len(row)
            else ""
            for a, row in enumerate(streets)
            for s in range(width)
        ]
    )


def household_registration(city: City, start: int, stop: int) -> Table:
    p = _people(city, start, stop)
    n = p.n
    hh_id, district, street, _, _, _, _ = p.household_arrays
    key = jc.street_key(district, street)
    status, relation = jc.HOUSEHOLD
    spouse = p.together & p.female & (p.husband_death < 0)
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "name": jc.name(p),
            "sex": jc.SEX.take(p.female.astype(np.int64)),
            "birth_date": jsonbytes.iso_dates(p.birth),
            "ethnicity": jc.ethnicities().take(p.ethnicity_i),
            "household_number": jsonbytes.text(n, jsonbytes.digits(440100000000 + hh_id, 12)),
            "relation_to_head": relation.take(spouse.astype(np.int64)),
            "registered_address": jc.address(p),
            "registered_street": jc.streets().take(key),
            "police_station": _police_stations().take(key),
            "status": status.take(p.alive.astype(np.int64)),
            "photo_ref": jsonbytes.text(
                n, b"gaj-photo/", p.id_chars[:, :6], b"/", jsonbytes.digits(p.index, 9), b".jpg"
            ),
        },
    )


_CATEGORY = jsonbytes.Vocab(["城乡居民基本医疗保险", "职工基本医疗保险"])


def medical_insurance(city: City, start: int, stop: int) -> Table:
    p = _people(city, start, stop)
    employed = p.employer >= 0
    d = draws(city, "medical", 2, p.index)
    # Only the unemployed spend a draw on whether they are enrolled at all.
    keep = p.alive & (employed | prng_arrays.chance(d[0], 0.9))
    p, employed = p.take(keep), employed[keep]
    days = np.where(employed, d[0][keep], d[1][keep]) % np.uint64(901)
    enrolled = np.maximum(p.birth, dt.date(2008, 1, 1).toordinal()) + days.astype(np.int64)
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "name": jc.name(p),
            "insurance_category": _CATEGORY.take(employed.astype(np.int64)),
            "status": jsonbytes.repeat("正常参保", p.n),
            "enrolled_on": jsonbytes.iso_dates(np.minimum(enrolled, REF_ORD)),
        },
    )


_AREA_CODES = jsonbytes.Vocab(list(AREAS))
_ESTATES = ("花园", "雅苑", "名苑", "新村")
_ESTATE_NAMES = jsonbytes.Vocab(list(_ESTATES))
_CO_OWNERSHIP = jsonbytes.Vocab(["单独所有", "共同共有"])


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

    def num(row: int, hi: int) -> I64:
        out: I64 = 1 + (r[row] % np.uint64(hi)).astype(np.int64)
        return out

    digits, text = jsonbytes.digits, jsonbytes.text
    district = (r[0] % np.uint64(len(AREAS))).astype(np.int64)
    registered = prng_arrays.between(
        r[1], np.full(n, dt.date(2000, 1, 1).toordinal()), np.full(n, REF_ORD)
    )
    place = (r[8] % np.uint64(len(_ESTATES))).astype(np.int64)
    area = 3500 + (r[12] % np.uint64(12501)).astype(np.int64)
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "name": jc.name(p),
            "property_count": digits(count),
            "unit_number": text(
                n,
                _AREA_CODES.inner(district),
                digits(num(2, 999), 3),
                digits(num(3, 999), 3),
                b"GB",
                digits(num(4, 99999), 5),
                b"F",
                digits(num(5, 9999), 4),
                digits(num(6, 9999), 4),
            ),
            "certificate_number": text(
                n,
                "粤(".encode(),
                digits(years_of(registered)),
                ")广州市不动产权第".encode(),
                digits(num(7, 9999999), 7),
                "号".encode(),
            ),
            "location": text(
                n,
                "广州市".encode(),
                jc.AREA_NAMES.inner(district),
                _ESTATE_NAMES.inner(place),
                digits(num(9, 40)),
                "栋".encode(),
                digits(num(10, 33)),
                b"0",
                digits(num(11, 6)),
                "房".encode(),
            ),
            "floor_area": jsonbytes.hundredths(area),
            "usage": jsonbytes.repeat("住宅", n),
            "right_type": jsonbytes.repeat("国有建设用地使用权/房屋所有权", n),
            "co_ownership": _CO_OWNERSHIP.take(together.astype(np.int64)),
            "registered_on": jsonbytes.iso_dates(registered),
        },
    )


_MARRIAGE_TYPE = jsonbytes.Vocab(["结婚登记", "离婚登记"])
_MARRIAGE_LETTER = jsonbytes.Vocab(["J", "L"])


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
    office = p.district[man]
    idn, who = jc.id_number(p), jc.name(p)
    n = len(pos)
    kind = divorced.astype(np.int64)
    return Table(
        p.index[pos].tolist(),
        {
            "id_number": idn[pos],
            "name": who[pos],
            "registration_type": _MARRIAGE_TYPE.take(kind),
            "registered_on": jsonbytes.iso_dates(day),
            "certificate_number": jsonbytes.text(
                n,
                _MARRIAGE_LETTER.inner(kind),
                _AREA_CODES.inner(office),
                b"-",
                jsonbytes.digits(years_of(day)),
                b"-",
                jsonbytes.digits(serial, 6),
            ),
            "registration_office": jsonbytes.text(
                n, "广州市".encode(), jc.AREA_NAMES.inner(office), "民政局婚姻登记处".encode()
            ),
            "man_name": who[man],
            "man_id_number": idn[man],
            "woman_name": who[man + 1],
            "woman_id_number": idn[man + 1],
        },
    )


_VIN_LUT = np.zeros(128, dtype=np.int64)
for _c, _v in public_security.VIN_VALUES.items():
    _VIN_LUT[ord(_c)] = _v
_VIN_BYTES = np.frombuffer(public_security.VIN_CHARS.encode(), dtype=np.uint8)
_WMI = ("LVG", "LHG", "LGX", "LNB", "LGB", "L1N", "LFV", "LB3")
_WMI_BYTES = np.array([list(w.encode()) for w in _WMI], dtype=np.uint8)
_PLATE_BYTES = np.frombuffer(PLATE_CHARS.encode(), dtype=np.uint8)


def _vins(brand: I64, body_draws: U64) -> npt.NDArray[np.uint8]:
    """``vin_with_check(wmi + 14 drawn characters)`` of each vehicle."""
    n = len(brand)
    chars = np.empty((n, 17), dtype=np.uint8)
    chars[:, :3] = _WMI_BYTES[brand]
    chars[:, 3:] = _VIN_BYTES[(body_draws % np.uint64(len(_VIN_BYTES))).astype(np.int64).T]
    weights = np.array(public_security.VIN_WEIGHTS, dtype=np.int64)
    check = (_VIN_LUT[chars] * weights).sum(axis=1) % 11
    chars[:, 8] = np.where(check == 10, ord("X"), ord("0") + check)
    return chars


def _plates(city: City, slot: I64) -> npt.NDArray[np.uint8]:
    """``City.plate_of`` of each slot (``index * 2 + k``), without its 粤A."""
    v = feistel_forward(city._plates, slot.astype(np.uint64)).astype(np.int64)
    chars = np.empty((len(slot), 5), dtype=np.uint8)
    base = len(PLATE_CHARS)
    for i in range(4, -1, -1):
        v, d = np.divmod(v, base)
        chars[:, i] = _PLATE_BYTES[d]
    return chars


def vehicle_registration(city: City, start: int, stop: int) -> Table:
    p = _people(city, start, stop)
    z = mix(p.n, city.seed, T_VEH, p.index.astype(np.uint64)) % np.uint64(100)
    count = np.where(z < 66, 0, np.where(z < 92, 1, 2))
    count = np.where(p.alive & (p.age >= 18), count, 0)
    # One record per vehicle, a person's vehicles in order.
    owners = np.repeat(np.arange(p.n), count)
    k = np.arange(len(owners)) - np.repeat(np.cumsum(count) - count, count)
    o = p.take(owners)
    r = draws(city, "vehicle", 18, o.index, k)
    brand = (r[0] % np.uint64(len(public_security.BRANDS))).astype(np.int64)
    first = from_age(o.day, 18, dt.date(1995, 1, 1).toordinal())
    registered = prng_arrays.between(r[16], first, np.full(o.n, REF_ORD))
    n = o.n
    return Table(
        o.index.tolist(),
        {
            "plate_number": jsonbytes.text(n, "粤A".encode(), _plates(city, o.index * 2 + k)),
            "plate_type": jsonbytes.repeat("小型汽车", n),
            "vehicle_type": _VEHICLE_TYPE.take(prng_arrays.chance(r[15], 0.85).astype(np.int64)),
            "brand": _BRANDS.take(brand),
            "vin": jsonbytes.ascii_text(_vins(brand, r[1:15])),
            "owner_name": jc.name(o),
            "owner_id_number": jc.id_number(o),
            "registered_on": jsonbytes.iso_dates(registered),
            "status": _VEHICLE_STATUS.take(prng_arrays.chance(r[17], 0.9).astype(np.int64)),
        },
    )


_VEHICLE_TYPE = jsonbytes.Vocab(["小型越野客车", "小型普通客车"])
_VEHICLE_STATUS = jsonbytes.Vocab(["抵押", "正常"])
_BRANDS = jsonbytes.Vocab(list(public_security.BRANDS))


# Candidate mothers a birth certificate's Rng draws (``records.health.birth_certificate``).
_MOTHER_DRAWS = 24
# Draws examined together: wider later, for the few children still without a mother.
_MOTHER_BATCHES = ((0, 6), (6, 14), (14, _MOTHER_DRAWS))
_BIRTH_CERTS_FROM = health.BIRTH_CERTS_FROM.toordinal()


def birth_certificate(city: City, start: int, stop: int) -> Table:
    # Birth days first (a permutation and a few draws): only the children born late
    # enough to hold a certificate, about a third, are derived whole (couples, deaths).
    index = _span(start, stop, city.population)
    day, _, _ = bulk.slots(city, index)
    p = People(city, index[day + BASE_ORD >= _BIRTH_CERTS_FROM])
    n = p.n
    r = draws(city, "birth", _MOTHER_DRAWS + 1, p.index)
    _, years, months, mdays, _ = calendar_arrays.calendar_tables()
    child_y, child_md = years[p.day], months[p.day] * 100 + mdays[p.day]
    unit = np.full(n, -1, dtype=np.int64)
    married = np.full(n, -1, dtype=np.int64)
    spent = np.full(n, _MOTHER_DRAWS, dtype=np.int64)  # draws used before the hospital's
    open_ = np.arange(n)
    # Candidates a few draws at a time, for the children still without a mother: most
    # find one in the first draws, so this derives a few couples per child, not 24.
    for lo, hi in _MOTHER_BATCHES:
        if not len(open_):
            break
        u = (r[lo:hi, open_] % np.uint64(city.units)).astype(np.int64).T  # (open, draws)
        wife = 2 * u + 1
        exists = wife < city.population
        cand = np.where(exists, wife, 1).ravel()
        cday, _, _ = bulk.slots(city, cand)
        wy = years[cday].reshape(u.shape)
        wmd = (months[cday] * 100 + mdays[cday]).reshape(u.shape)
        age = child_y[open_, None] - wy - (child_md[open_, None] < wmd)
        # Only candidates of an age to be the mother are derived whole, for their marriage.
        aged = (exists & (age >= 20) & (age <= 42)).ravel()
        wed_flat = np.full(len(cand), -1, dtype=np.int64)
        if aged.any():
            wed_flat[aged] = People(city, cand[aged]).married
        wed = wed_flat.reshape(u.shape)
        fit = wed >= 0
        found = fit.any(axis=1)
        first = np.argmax(fit, axis=1)[found]
        hit = open_[found]
        unit[hit] = u[found, first]
        married[hit] = wed[found, first]
        spent[hit] = lo + first + 1
        open_ = open_[~found]
    has_mother = unit >= 0
    has_father = has_mother & (married <= p.birth)
    parents = np.unique(np.concatenate([2 * unit[has_mother], 2 * unit[has_mother] + 1]))
    folk = People(city, parents)
    at = np.searchsorted(parents, 2 * np.maximum(unit, 0))
    place = r[spent, np.arange(n)]
    null = jsonbytes.repeat(None, n)
    if folk.n:
        names, idns = jc.name(folk), jc.id_number(folk)
        mother = jsonbytes.where(has_mother, names[at + 1], null)
        mother_id = jsonbytes.where(has_mother, idns[at + 1], null)
        father = jsonbytes.where(has_father, names[at], null)
        father_id = jsonbytes.where(has_father, idns[at], null)
    else:
        mother = mother_id = father = father_id = null
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "certificate_number": jsonbytes.text(
                n,
                _LETTERS.inner(years[p.day] % 26),
                b"44",
                jsonbytes.digits(p.index, 8),
            ),
            "child_name": jc.name(p),
            "sex": jc.SEX.take(p.female.astype(np.int64)),
            "birth_date": jsonbytes.iso_dates(p.birth),
            "birth_place": _HOSPITALS.take(
                (place % np.uint64(len(health.HOSPITALS))).astype(np.int64)
            ),
            "mother_name": mother,
            "mother_id_number": mother_id,
            "father_name": father,
            "father_id_number": father_id,
        },
    )


_LETTERS = jsonbytes.Vocab([chr(65 + k) for k in range(26)])
_HOSPITALS = jsonbytes.Vocab(list(health.HOSPITALS))


# -- people through their employer -------------------------------------------------------------


def social_insurance_enrolment(city: City, start: int, stop: int) -> Table:
    p, firms, at = _employers(_people(city, start, stop))
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "name": jc.name(p),
            "employer_credit_code": jc.credit_code(firms)[at],
            "employer_name": jc.firm_name(firms)[at],
            "insurance_types": jsonbytes.repeat("养老,医疗,失业,工伤,生育", p.n),
            "status": jsonbytes.repeat("参保缴费", p.n),
            "enrolled_on": jsonbytes.iso_dates(_enrolled(city, p, firms.founded[at])),
            "contribution_base": jsonbytes.digits(_contribution_base(city, p)),
        },
    )


_FUND_RATES = ("0.05", "0.08", "0.10", "0.12")
_FUND_RATE_VALUES = jsonbytes.Vocab([float(x) for x in _FUND_RATES])


def provident_fund(city: City, start: int, stop: int) -> Table:
    p = _people(city, start, stop)
    p = p.take(p.employer >= 0)
    r = draws(city, "fund", 3, p.index)
    p, r = p.take(prng_arrays.chance(r[0], 0.82)), r[:, prng_arrays.chance(r[0], 0.82)]
    found, at = np.unique(p.employer, return_inverse=True)
    firms = Firms(city, found)
    at = at.astype(np.int64)
    base_i = _contribution_base(city, p)
    base = base_i.tolist()
    rate_i = (r[1] % np.uint64(len(_FUND_RATES))).astype(np.int64)
    rate = [float(x) for x in pick(_FUND_RATES, r[1])]
    opened = _enrolled(city, p, firms.founded[at])
    months = _months_to_reference(opened).tolist()
    withdrawn = (r[2] % np.uint64(61)).astype(np.int64).tolist()
    # Money rounded as the scalar code rounds it (Python's float arithmetic and round),
    # then encoded value by value: a few columns of a small table.
    monthly = [round(b * x * 2, 2) for b, x in zip(base, rate, strict=True)]
    return Table(
        p.index.tolist(),
        {
            "id_number": jc.id_number(p),
            "name": jc.name(p),
            "account_number": jsonbytes.text(p.n, b"1100", jsonbytes.digits(p.index, 10)),
            "employer_credit_code": jc.credit_code(firms)[at],
            "employer_name": jc.firm_name(firms)[at],
            "deposit_base": jsonbytes.digits(base_i),
            "deposit_rate": _FUND_RATE_VALUES.take(rate_i),
            "monthly_deposit": monthly,
            "balance": [
                round(m * k * (1 - w / 100), 2)
                for m, k, w in zip(monthly, months, withdrawn, strict=True)
            ],
            "status": jsonbytes.repeat("正常", p.n),
            "opened_on": jsonbytes.iso_dates(opened),
        },
    )


#: Bulk twins of the exportable generators, by generator name.
TABLES: dict[str, Callable[[City, int, int], Table]] = {
    "household_registration": household_registration,
    "vehicle_registration": vehicle_registration,
    "enterprise_registration": firm_tables.enterprise_registration,
    "marriage_registration": marriage_registration,
    "social_insurance_enrolment": social_insurance_enrolment,
    "provident_fund": provident_fund,
    "real_estate": real_estate,
    "tax_registration": firm_tables.tax_registration,
    "birth_certificate": birth_certificate,
    "medical_insurance": medical_insurance,
    "e_licence": firm_tables.e_licence,
    "credit_publicity": firm_tables.credit_publicity,
}
