"""The mock departments' double-publicity submissions, in step with the synthetic city.

The living city's own permit and penalty events (:mod:`exchange.departments.lifeevents`)
carry only what the data bureau's summary topic holds (a count, the latest penalty) and
only for market regulation; they are gathered by :mod:`exchange.credit.ingest`. This feed
gives the other units their decisions with every field of the standard, derived: each
platform day, every submitting unit (the 37
departments and 11 districts of :mod:`exchange.credit.baseline`) decides about
enterprises (and, for penalties, some residents) of the city, the same decisions for the
same seed and day. A unit's business system announces each decision on its day
(``/notices``) and publishes it (``/records``) after a lag: mostly within the 7 working
days, a ``late_rate`` share 16-25 calendar days later (always past the deadline), a
``miss_rate`` share never.

:func:`run` is stateless and idempotent: called at platform day T it announces and
publishes everything due by T over the last ``days`` days, and the exchange answers
decisions it has already seen as duplicates. Call it once per simulated day (``exchange
credit feed`` after ``exchange clock advance 1d``) and the publication statistics move
with the platform clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exchange.credit.baseline import SUBMITTERS
from exchange.departments.city import City, Rng, mix

#: (unit code, unit name, unit credit code)
Unit = tuple[str, str, str]
#: ``post(unit, path, body)`` → the answer's JSON: one API call as that unit.
Post = Callable[[str, str, dict[str, Any]], dict[str, Any]]

_TAG = 0x6372_6564  # "cred"
_PERMIT_BASIS = "《中华人民共和国行政许可法》第三十八条"
_PENALTY_BASIS = (
    ("《中华人民共和国食品安全法》第一百二十四条", "销售不符合食品安全标准的食品"),
    ("《中华人民共和国广告法》第五十五条", "发布虚假广告"),
    ("《中华人民共和国市场主体登记管理条例》第四十三条", "未取得营业执照从事经营活动"),
    ("《中华人民共和国安全生产法》第一百零一条", "未按规定对重大危险源登记建档"),
    ("《中华人民共和国环境保护法》第五十九条", "超标排放污染物"),
    ("《中华人民共和国道路运输条例》第六十三条", "未取得道路运输经营许可擅自从事经营"),
)
#: (categories, share in per mille, fine range in yuan)
_PENALTY_KINDS: tuple[tuple[tuple[str, ...], int, tuple[int, int]], ...] = (
    (("罚款",), 600, (500, 50_000)),
    (("警告",), 180, (0, 0)),
    (("罚款", "没收违法所得"), 120, (10_000, 300_000)),
    (("责令停产停业",), 40, (0, 0)),
    (("罚款", "责令停产停业"), 35, (50_000, 500_000)),
    (("吊销许可证件",), 25, (0, 0)),
)
_PERMITS = (
    ("普通", "食品经营许可"),
    ("普通", "建设工程规划许可"),
    ("特许", "道路运输经营许可"),
    ("核准", "企业投资项目核准"),
    ("登记", "排污许可登记"),
    ("认可", "检验检测机构资质认定"),
)


@dataclass(frozen=True)
class Decision:
    unit: str
    day: dt.date
    #: the platform day it is published on; None: never (a missing submission)
    publish_on: dt.date | None
    record: dict[str, Any]

    @property
    def notice(self) -> dict[str, Any]:
        return {
            "kind": self.record["kind"],
            "decision_number": self.record["decision_number"],
            "decision_date": self.day.isoformat(),
        }


@dataclass
class FeedReport:
    notices: int = 0
    published: int = 0
    duplicates: int = 0
    late: int = 0
    calls: int = 0
    per_unit: dict[str, int] = field(default_factory=dict)


def _pick_penalty(r: Rng) -> tuple[tuple[str, ...], tuple[int, int]]:
    roll = r.below(1000)
    for cats, share, fines in _PENALTY_KINDS:
        if roll < share:
            return cats, fines
        roll -= share
    return _PENALTY_KINDS[0][0], _PENALTY_KINDS[0][2]


def decisions_on(
    city: City,
    day: dt.date,
    units: Iterable[Unit],
    *,
    per_unit: int = 4,
    late_rate: float = 0.01,
    miss_rate: float = 0.0,
    seed: int = 2020,
) -> list[Decision]:
    """Every unit's decisions of ``day``: about ``per_unit`` each (0 to twice that), 70 %
    permits, deterministic for the seed, city and day."""
    out: list[Decision] = []
    for code, name, authority_code in units:
        r = Rng(mix(seed, _TAG, day.toordinal(), sum(ord(c) << i for i, c in enumerate(code))))
        for i in range(r.between(0, 2 * per_unit)):
            e = city.enterprise(r.below(city.enterprises))
            permit = r.chance(0.7)
            roll = r.below(1_000_000) / 1_000_000
            if roll < miss_rate:
                publish_on = None
            elif roll < miss_rate + late_rate:
                publish_on = day + dt.timedelta(days=r.between(16, 25))
            else:
                publish_on = day + dt.timedelta(days=r.between(0, 6))
            prefix = f"穗{code[:4]}{'许' if permit else '罚'}〔{day.year}〕{day:%m%d}{i:03d}号"
            party: dict[str, Any] = {
                "party_kind": "legal_person" if e.kind == "91" else "individual_business",
                "party_name": e.name,
                "credit_code": e.credit_code,
                "legal_representative": e.legal_rep_name if e.kind == "91" else None,
            }
            if party["party_kind"] == "legal_person" and not party["legal_representative"]:
                party["legal_representative"] = "未登记"
            common = {
                "decision_number": prefix,
                "decision_date": day.isoformat(),
                "authority": name,
                "authority_code": authority_code,
            }
            if permit:
                category, content = _PERMITS[r.below(len(_PERMITS))]
                record = {
                    "kind": "permit",
                    **common,
                    **party,
                    "legal_basis": _PERMIT_BASIS,
                    "content": content,
                    "category": category,
                    "licence_number": f"{code[:2].upper()}{day:%Y%m%d}{i:04d}",
                    "valid_from": day.isoformat(),
                    "valid_until": (day + dt.timedelta(days=365 * r.between(1, 5))).isoformat(),
                }
            else:
                cats, (lo, hi) = _pick_penalty(r)
                basis, facts = _PENALTY_BASIS[r.below(len(_PENALTY_BASIS))]
                if r.chance(0.1):
                    person = city.person(r.below(city.population))
                    party = {
                        "party_kind": "natural_person",
                        "party_name": person.name,
                        "credit_code": None,
                        "legal_representative": None,
                        "id_number": person.id_number,
                    }
                fine = r.between(lo, hi) if "罚款" in cats else None
                record = {
                    "kind": "penalty",
                    **common,
                    **party,
                    "legal_basis": basis,
                    "content": "、".join(cats),
                    "violation_facts": facts,
                    "categories": list(cats),
                    "fine_amount": None if fine is None else f"{fine}.00",
                    "major": r.chance(0.03),
                }
            out.append(Decision(code, day, publish_on, record))
    return out


def _batches(items: list[dict[str, Any]], size: int = 1000) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run(
    post: Post,
    city: City,
    units: Iterable[Unit],
    today: dt.date,
    *,
    days: int = 30,
    per_unit: int = 4,
    late_rate: float = 0.01,
    miss_rate: float = 0.0,
    seed: int = 2020,
) -> FeedReport:
    """Announce and publish, as each unit, what is due by ``today`` over the last
    ``days`` days (see the module docstring)."""
    report = FeedReport()
    notices: dict[str, list[dict[str, Any]]] = {}
    records: dict[str, list[dict[str, Any]]] = {}
    unit_list = list(units)
    for back in range(days - 1, -1, -1):
        day = today - dt.timedelta(days=back)
        for d in decisions_on(
            city, day, unit_list, per_unit=per_unit, late_rate=late_rate,
            miss_rate=miss_rate, seed=seed,
        ):  # fmt: skip
            notices.setdefault(d.unit, []).append(d.notice)
            if d.publish_on is not None and d.publish_on <= today:
                records.setdefault(d.unit, []).append(d.record)
    for unit, items in notices.items():
        for batch in _batches(items):
            answer = post(unit, "/api/v1/credit/notices", {"notices": batch})
            report.notices += int(answer["recorded"])
            report.calls += 1
    for unit, items in records.items():
        for batch in _batches(items):
            answer = post(unit, "/api/v1/credit/records", {"records": batch})
            report.published += int(answer["published"])
            report.duplicates += int(answer["duplicates"])
            report.late += int(answer["late"])
            report.calls += 1
            report.per_unit[unit] = report.per_unit.get(unit, 0) + int(answer["published"])
    return report


def submitting_units(departments: Iterable[Mapping[str, Any]]) -> list[Unit]:
    """The feed's units among ``departments`` (``GET /api/v1/departments`` answers)."""
    return [
        (d["code"], d["name"], d["credit_code"])
        for d in departments
        if d["code"] in SUBMITTERS and d.get("credit_code")
    ]
