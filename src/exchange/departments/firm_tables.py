"""Exportable enterprise topics' records in bulk (see :mod:`exchange.departments.tables`):
market registration, tax registration, e-licences and credit publicity, each the bulk twin
of its generator in :mod:`exchange.departments.records`."""

from __future__ import annotations

import numpy as np

from exchange import ids
from exchange.departments import json_columns as jc
from exchange.departments import jsonbytes, prng_arrays
from exchange.departments.city import City
from exchange.departments.columns import REF_ORD, draws, iso_dates, years_of
from exchange.departments.firm_columns import Firms
from exchange.departments.jsonbytes import U8, Vocab
from exchange.departments.ndjson import Table
from exchange.departments.people import AREAS
from exchange.departments.prng_arrays import BOOL, I64, feistel_forward
from exchange.departments.records import e_licences
from exchange.departments.vocabulary import COMPANY_TYPES, ENT_STATUS_TABLE, INDUSTRIES

__all__ = ["credit_publicity", "e_licence", "enterprise_registration", "tax_registration"]

_AREA_NAMES = [ids.AREA_NAMES[a] for a in AREAS]


def _iso(ordinals: I64) -> list[str]:
    return iso_dates(ordinals)


def _span(start: int, stop: int, limit: int) -> I64:
    return np.arange(max(0, start), min(stop, limit), dtype=np.int64)


def _firms(city: City, start: int, stop: int) -> Firms:
    return Firms(city, _span(start, stop, city.enterprises))


_TYPES = Vocab(["个体工商户", *COMPANY_TYPES])
_SCOPES = Vocab(
    [f"{i[0]}相关业务(依法须经批准的项目,经相关部门批准后方可开展经营活动)" for i in INDUSTRIES]
)


def _authority(f: Firms, before: str, after: str) -> U8:
    """``f"{before}{district name}{after}"`` of each enterprise, as JSON."""
    return jsonbytes.text(f.n, before.encode(), jc.AREA_NAMES.inner(f.district), after.encode())


def enterprise_registration(city: City, start: int, stop: int) -> Table:
    f = _firms(city, start, stop)
    rep_names, rep_ids = jc.legal_rep(f)
    kinds = (f._d[3] % np.uint64(len(COMPANY_TYPES))).astype(np.int64)
    return Table(
        f.e.tolist(),
        {
            "credit_code": jc.credit_code(f),
            "name": jc.firm_name(f),
            "entity_type": _TYPES.take(np.where(f.kind92, 0, 1 + kinds)),
            "legal_representative": rep_names,
            "legal_representative_id_number": rep_ids,
            "industry": jc.INDUSTRY.take(f.industry_i),
            "address": jc.firm_address(f),
            "registered_capital": jsonbytes.digits(np.asarray(f.capital, dtype=np.int64)),
            "founded_on": jsonbytes.iso_dates(f.founded),
            "registration_authority": _authority(f, "广州市", "市场监督管理局"),
            "status": jc.STATUS.take(f.status_i),
            "business_scope": _SCOPES.take(f.industry_i),
        },
    )


_REGISTRATION = Vocab(["私营有限责任公司", "个体经营"])
_QUALIFICATION = Vocab(["小规模纳税人", "增值税一般纳税人"])
_RATING = Vocab(["A", "B", "B", "M", "C", "D"])
_TAX_STATUS = Vocab(["非正常", "正常"])


def tax_registration(city: City, start: int, stop: int) -> Table:
    f = _firms(city, start, stop)
    r = draws(city, "tax", 3, f.e)
    company = ~f.kind92
    # Only a company (91) spends a draw on whether it is a general taxpayer.
    general = company & prng_arrays.chance(r[0], 0.35)
    rating = np.where(company, r[1], r[0])
    delay = np.where(company, r[2], r[1]) % np.uint64(28)
    registered = f.founded + 3 + delay.astype(np.int64)
    return Table(
        f.e.tolist(),
        {
            "credit_code": jc.credit_code(f),
            "taxpayer_name": jc.firm_name(f),
            "registration_type": _REGISTRATION.take(f.kind92.astype(np.int64)),
            "taxpayer_qualification": _QUALIFICATION.take(general.astype(np.int64)),
            "tax_authority": _authority(f, "国家税务总局广州市", "税务局"),
            "credit_rating": _RATING.take((rating % np.uint64(6)).astype(np.int64)),
            "registered_on": jsonbytes.iso_dates(registered),
            "status": _TAX_STATUS.take(f.operating.astype(np.int64)),
        },
    )


def _holds(f: Firms) -> list[BOOL]:
    """Per licence type, whether each enterprise holds one (its industry qualifies)."""
    out = []
    for _, _, _, industry in e_licences.LICENCE_TYPES:
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
    n = len(pos)
    valid = issued + 5 * 365
    expired = (types > 0) & (valid < REF_ORD)
    operating = f.operating[pos]
    prefix, kind, authority = _LICENCE_VOCABS
    luhn = (48 + _luhn(serial)).astype(np.uint8)[:, None]
    city_wide = jsonbytes.join(n, jc.AREA_NAMES.inner(f.district[pos]), authority.inner(types))
    return Table(
        f.e[pos].tolist(),
        {
            "licence_number": jsonbytes.text(
                n, prefix.inner(types), jsonbytes.digits(serial, 12), luhn
            ),
            "licence_type": kind.take(types),
            "holder_name": jc.firm_name(f)[pos],
            "holder_credit_code": jc.credit_code(f)[pos],
            # The first type is issued by the district's bureau, the others city-wide.
            "issuing_authority": jsonbytes.text(
                n, "广州市".encode(), jsonbytes.where(types > 0, authority.inner(types), city_wide)
            ),
            "issued_on": jsonbytes.iso_dates(issued),
            "valid_until": jsonbytes.where(
                types > 0, jsonbytes.iso_dates(valid), _FOREVER.take(np.zeros(n, dtype=np.int64))
            ),
            "status": _LICENCE_STATUS.take(np.where(~operating, 1, np.where(expired, 2, 0))),
        },
    )


_LICENCE_VOCABS = tuple(Vocab([t[k] for t in e_licences.LICENCE_TYPES]) for k in range(3))
_FOREVER = Vocab(["长期"])
_LICENCE_STATUS = Vocab(["有效", "注销", "过期"])
_REASONS = Vocab(list(e_licences.PENALTY_REASONS))
_LIST_STATUS = Vocab(["无", "红名单", "黑名单"])


def credit_publicity(city: City, start: int, stop: int) -> Table:
    f = _firms(city, start, stop)
    n = f.n
    cols = np.arange(n)
    r = draws(city, "credit", 7, f.e)
    penalised = ~prng_arrays.chance(r[0], 0.85)
    penalties = np.where(penalised, 1 + (r[1] % np.uint64(4)).astype(np.int64), 0)
    # Draw positions after the branches: a penalised firm draws its count and its latest
    # penalty's date; an unpenalised one whether it is on the red list.
    latest = prng_arrays.between(r[2], f.founded, np.full(n, REF_ORD))
    red = ~penalised & prng_arrays.chance(r[1], 0.03)
    after = np.where(penalised, 3, 2)
    extra = (r[after, cols] % np.uint64(4)).astype(np.int64)
    licences = sum(h.astype(np.int64) for h in _holds(f))
    number = 1 + (r[4] % np.uint64(9999)).astype(np.int64)
    reason = _REASONS.take((r[5] % np.uint64(len(e_licences.PENALTY_REASONS))).astype(np.int64))
    amount = (1 + (r[6] % np.uint64(200)).astype(np.int64)) * 500
    revoked = np.array([s.startswith("吊销") for s in ENT_STATUS_TABLE], dtype=np.bool_)
    black = (penalties >= 3) | revoked[f.status_i]
    null = jsonbytes.join(n, b"null")

    def penalty(value: U8) -> U8:
        return jsonbytes.where(penalised, value, null)

    return Table(
        f.e.tolist(),
        {
            "credit_code": jc.credit_code(f),
            "name": jc.firm_name(f),
            "licensing_count": jsonbytes.digits(licences + extra),
            "penalty_count": jsonbytes.digits(penalties),
            "latest_penalty_number": penalty(
                jsonbytes.text(
                    n,
                    "穗市监处罚〔".encode(),
                    jsonbytes.digits(years_of(latest)),
                    "〕".encode(),
                    jsonbytes.digits(number),
                    "号".encode(),
                )
            ),
            "latest_penalty_reason": penalty(reason),
            "latest_penalty_date": penalty(jsonbytes.iso_dates(latest)),
            "latest_penalty_amount": penalty(jsonbytes.digits(amount)),
            "list_status": _LIST_STATUS.take(np.where(black, 2, red.astype(np.int64))),
        },
    )
