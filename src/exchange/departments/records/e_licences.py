"""The platform operator: e-licences and double publicity (credit)."""

from __future__ import annotations

import datetime as dt

from exchange import ids
from exchange.departments.city import REFERENCE_DATE, City, Enterprise
from exchange.departments.records.generator import Record, Rows, firms_of, iso

LICENCE_FIELDS = (
    "licence_number",
    "licence_type",
    "holder_name",
    "holder_credit_code",
    "issuing_authority",
    "issued_on",
    "valid_until",
    "status",
)
# (code, name, issuer, who holds one: industry prefix or "" for everyone)
LICENCE_TYPES: tuple[tuple[str, str, str, str], ...] = (
    ("YZ", "营业执照", "市场监督管理局", ""),
    ("JY", "食品经营许可证", "市场监督管理局", "住宿和餐饮业"),
    ("YS", "道路运输经营许可证", "交通运输局", "交通运输"),
)


def _licence(city: City, e: Enterprise, t: int) -> Record | None:
    code, name, issuer, industry = LICENCE_TYPES[t]
    if industry and not e.industry.startswith(industry):
        return None
    serial = f"{city.licence_feistel(t).forward(e.index):012d}"
    r = city.rng("licence", e.index, t)
    issued = e.founded_on + dt.timedelta(days=r.between(0, 60) if t else 0)
    valid = "长期" if t == 0 else (issued + dt.timedelta(days=5 * 365)).isoformat()
    if not e.status.startswith("存续"):
        status = "注销"
    elif valid != "长期" and valid < REFERENCE_DATE.isoformat():
        status = "过期"
    else:
        status = "有效"
    return {
        "licence_number": code + serial + ids.luhn_digit(serial),
        "licence_type": name,
        "holder_name": e.name,
        "holder_credit_code": e.credit_code,
        "issuing_authority": f"广州市{issuer}"
        if t
        else f"广州市{ids.AREA_NAMES[e.district]}{issuer}",
        "issued_on": issued.isoformat(),
        "valid_until": valid,
        "status": status,
    }


def licence_lookup(city: City, key: str) -> Record | None:
    t = next((i for i, lt in enumerate(LICENCE_TYPES) if lt[0] == key[:2]), None)
    if t is None:
        return None
    e = city.licence_feistel(t).inverse(int(key[2:14]))
    if e >= city.enterprises:
        return None
    return _licence(city, city.enterprise(e), t)


def licence_export(city: City, start: int, stop: int) -> Rows:
    for e in firms_of(city, start, stop):
        for t in range(len(LICENCE_TYPES)):
            rec = _licence(city, e, t)
            if rec is not None:
                yield e.index, rec


def licences_of(city: City, e: int) -> list[Record]:
    """The e-licence records enterprise ``e`` holds, in type order."""
    ent = city.enterprise(e)
    return [rec for t in range(len(LICENCE_TYPES)) if (rec := _licence(city, ent, t)) is not None]


def licence_numbers_of(city: City, e: int) -> list[str]:
    """Licence numbers an enterprise holds (for tests and demos)."""
    ent = city.enterprise(e)
    out = []
    for t in range(len(LICENCE_TYPES)):
        rec = _licence(city, ent, t)
        if rec is not None:
            out.append(str(rec["licence_number"]))
    return out


CREDIT_FIELDS = (
    "credit_code",
    "name",
    "licensing_count",
    "penalty_count",
    "latest_penalty_number",
    "latest_penalty_reason",
    "latest_penalty_date",
    "latest_penalty_amount",
    "list_status",
)
PENALTY_REASONS = (
    "未按规定公示年度报告",
    "销售不符合食品安全标准的食品",
    "发布虚假广告",
    "未取得许可从事经营活动",
    "未按规定办理税务登记变更",
    "违反价格管理规定",
)


def credit_publicity(city: City, e: Enterprise) -> Record:
    """双公示信息: licensing and penalty decisions about the enterprise, and its list status."""
    r = city.rng("credit", e.index)
    licences = sum(1 for t in range(len(LICENCE_TYPES)) if _licence(city, e, t) is not None)
    penalties = 0 if r.chance(0.85) else r.between(1, 4)
    latest: dt.date | None = None
    if penalties:
        latest = dt.date.fromordinal(
            r.between(e.founded_on.toordinal(), REFERENCE_DATE.toordinal())
        )
    black = penalties >= 3 or e.status.startswith("吊销")
    red = not penalties and r.chance(0.03)
    return {
        "credit_code": e.credit_code,
        "name": e.name,
        "licensing_count": licences + r.between(0, 3),
        "penalty_count": penalties,
        "latest_penalty_number": None
        if latest is None
        else f"穗市监处罚〔{latest.year}〕{r.between(1, 9999)}号",
        "latest_penalty_reason": None if latest is None else r.pick(PENALTY_REASONS),
        "latest_penalty_date": iso(latest),
        "latest_penalty_amount": None if latest is None else r.between(1, 200) * 500,
        "list_status": "黑名单" if black else "红名单" if red else "无",
    }
