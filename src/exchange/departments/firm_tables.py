"""Exportable enterprise topics' records in bulk (see :mod:`exchange.departments.tables`):
market registration, tax registration, e-licences and credit publicity, each the bulk twin
of its generator in :mod:`exchange.departments.records`."""

from __future__ import annotations

import numpy as np

from exchange import ids
from exchange.departments import prng_arrays
from exchange.departments.city import City
from exchange.departments.columns import REF_ORD, Firms, draws, iso_dates, pick, years_of
from exchange.departments.ndjson import Table
from exchange.departments.people import AREAS
from exchange.departments.prng_arrays import BOOL, I64, feistel_forward
from exchange.departments.records import e_licences
from exchange.departments.vocabulary import INDUSTRIES

__all__ = ["credit_publicity", "e_licence", "enterprise_registration", "tax_registration"]

_AREA_NAMES = [ids.AREA_NAMES[a] for a in AREAS]


def _iso(ordinals: I64) -> list[str]:
    return iso_dates(ordinals)


def _span(start: int, stop: int, limit: int) -> I64:
    return np.arange(max(0, start), min(stop, limit), dtype=np.int64)


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
    general = company & prng_arrays.chance(r[0], 0.35)
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
    check = _luhn(serial).tolist()
    valid = issued + 5 * 365
    expired = (types > 0) & (valid < REF_ORD)
    operating = f.operating[pos]
    valid_iso = _iso(valid)
    names, codes, district = f.name, f.credit_code, f.district.tolist()
    lt = e_licences.LICENCE_TYPES
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
    reason = pick(e_licences.PENALTY_REASONS, r[5])
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
