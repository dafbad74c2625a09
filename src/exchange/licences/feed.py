"""The mock departments' licence issuing derived from the synthetic city, day by day.

Marriages and enterprise registrations are change events of the living city: the
departments' systems issue their certificates and business licences as they publish them
(:mod:`exchange.departments.licence_issue`). What has no event is derived here from the city itself,
per platform day, the same for the same seed and day: by default professional
qualifications; with ``rates`` naming them, marriage certificates and business licences
too, for an exchange whose departments do not publish their changes:

* **结婚证** (``JHZ``, 民政局 ``mzj``): couples of the city who are not married in it — a
  man and the woman the city pairs him with (:mod:`exchange.departments.city`: index
  ``2u`` and ``2u + 1``, of plausible ages), both alive and of marriageable age; each gets
  a certificate naming the other;
* **营业执照** (``YYZZ``, 市场监管局 ``scjgj``): enterprises of the city in business
  (存续), their registration as the city holds it;
* **职业资格证书** (``ZYZG``, 人社局 ``rsj``): residents of working age.

Residence permits (居住证) are not fed: they are for residents registered elsewhere, and
every person of the synthetic city is registered in Guangzhou (their count stays the
profile's starting state until the city has a migrant population).

Each licence carries an ``external_ref`` naming its type, day and index, so :func:`run` is
idempotent: called at platform day T it issues what is due over the last ``days`` days and
the exchange answers what it already issued with that licence (200, not a second one).
Call it after each ``exchange clock advance`` and the counts per type grow with the
simulated time (``GET /api/v1/licences/stats``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from exchange.departments.city import City, Person, Rng, mix

#: ``post(issuer, body)`` → (status code, answer): one issue call as that department.
Post = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]

_TAG = 0x6C69_6365  # "lice"
#: Licences per day and 100,000 residents (20,000 enterprises for business licences):
#: the source's stock over the platform's ~15 years, scaled to the synthetic city.
DEFAULT_RATES: dict[str, float] = {"ZYZG": 6.0}
#: what the city's change events do not issue, at their rates (``--all-types``)
DERIVED_RATES: dict[str, float] = {"JHZ": 4.0, "YYZZ": 4.0, "ZYZG": 6.0}
ISSUERS = {"JHZ": "mzj", "YYZZ": "scjgj", "ZYZG": "rsj"}
#: candidates a day looks at per type (people and firms that do not qualify are skipped)
SLOTS = 256
_OCCUPATIONS = (
    ("电工", "四级/中级工"),
    ("育婴员", "五级/初级工"),
    ("中式烹调师", "三级/高级工"),
    ("保育师", "四级/中级工"),
    ("汽车维修工", "三级/高级工"),
    ("企业人力资源管理师", "二级/技师"),
)


@dataclass
class FeedReport:
    issued: int = 0
    already: int = 0
    refused: int = 0
    per_type: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _count(r: Rng, mean: float) -> int:
    """0 to twice the mean, the mean on average (fractions carried by chance)."""
    whole = int(mean)
    n = r.between(0, 2 * whole) if whole else 0
    return n + (1 if r.chance(mean - whole) else 0)


def _adult(p: Person, day: dt.date, least: int) -> bool:
    return p.death_date is None and p.age_on(day) >= least


def _walk(day: dt.date, size: int) -> Iterator[int]:
    """Indices in ``[0, size)`` for ``day``: a stride permutation over the days, so one
    entity is picked again only after ``size / SLOTS`` days (no couple married twice)."""
    step = 1_000_003 if size % 1_000_003 else 999_983  # a prime not dividing size
    base = day.toordinal() * SLOTS
    for k in range(SLOTS):
        yield ((base + k) * step) % size


def _marriages(city: City, day: dt.date, n: int) -> Iterator[tuple[str, dict[str, Any]]]:
    found = 0
    for unit in _walk(day, city.units):
        if found == n:
            return
        if 2 * unit + 1 >= city.population:
            continue
        man, woman = city.person(2 * unit), city.person(2 * unit + 1)
        if man.spouse_index is not None or woman.spouse_index is not None:
            continue  # married (or once married) in the city already
        if not (_adult(man, day, 22) and _adult(woman, day, 20)):
            continue
        found += 1
        for i, (holder, spouse) in enumerate(((man, woman), (woman, man))):
            yield (
                f"{found}{'ab'[i]}",
                {
                    "type_code": "JHZ",
                    "holder_id": holder.id_number,
                    "holder_name": holder.name,
                    "content": {
                        "name": holder.name,
                        "spouse_name": spouse.name,
                        "spouse_id_number": spouse.id_number,
                        "registered_on": day.isoformat(),
                    },
                },
            )


def _business(city: City, day: dt.date, n: int) -> Iterator[tuple[str, dict[str, Any]]]:
    i = 0
    for index in _walk(day, city.enterprises):
        if i == n:
            return
        e = city.enterprise(index)
        if not e.status.startswith("存续"):
            continue
        i += 1
        content: dict[str, Any] = {
            "name": e.name,
            "entity_type": e.entity_type,
            "legal_representative": e.legal_rep_name or "未登记",
            "registered_capital": e.registered_capital,
            "founded_on": e.founded_on.isoformat(),
            "address": e.address,
            "business_scope": e.business_scope,
        }
        yield (
            str(i),
            {
                "type_code": "YYZZ",
                "holder_id": e.credit_code,
                "holder_name": e.name,
                "content": content,
            },
        )


def _people(city: City, r: Rng, n: int, keep: Callable[[Person], bool]) -> Iterator[Person]:
    found = 0
    for _ in range(40 * n):
        if found == n:
            return
        p = city.person(r.below(city.population))
        if keep(p):
            found += 1
            yield p


def licences_on(
    city: City, day: dt.date, *, rates: dict[str, float] | None = None, seed: int = 2020
) -> list[tuple[str, dict[str, Any]]]:
    """(issuer, issue body) of every licence the city's departments issue on ``day``."""
    rates = rates or DEFAULT_RATES
    scale = city.population / 100_000
    out: list[tuple[str, dict[str, Any]]] = []
    for type_code in ("JHZ", "YYZZ", "ZYZG"):
        if type_code not in rates:
            continue
        r = Rng(mix(seed, _TAG, day.toordinal(), sum(map(ord, type_code))))
        if type_code == "YYZZ":
            mean = rates[type_code] * city.enterprises / 20_000
        else:
            mean = rates[type_code] * scale
        n = _count(r, mean)
        bodies: Iterator[tuple[str, dict[str, Any]]]
        if type_code == "JHZ":
            bodies = _marriages(city, day, n)
        elif type_code == "YYZZ":
            bodies = _business(city, day, n)
        else:
            workers = _people(city, r, n, lambda p: 18 <= p.age_on(day) <= 60 and p.alive)
            bodies = (
                (
                    str(i),
                    {
                        "type_code": "ZYZG",
                        "holder_id": p.id_number,
                        "holder_name": p.name,
                        "content": {
                            "name": p.name,
                            "occupation": _OCCUPATIONS[(p.index + i) % len(_OCCUPATIONS)][0],
                            "level": _OCCUPATIONS[(p.index + i) % len(_OCCUPATIONS)][1],
                            "certified_on": day.isoformat(),
                        },
                    },
                )
                for i, p in enumerate(workers)
            )
        for ref, body in bodies:
            body["issued_on"] = day.isoformat()
            body["external_ref"] = f"{type_code}-{day:%Y%m%d}-{ref}"
            out.append((ISSUERS[type_code], body))
    return out


def run(
    post: Post,
    city: City,
    today: dt.date,
    *,
    days: int = 7,
    rates: dict[str, float] | None = None,
    seed: int = 2020,
) -> FeedReport:
    """Issue, as each department, the licences due over the last ``days`` platform days."""
    report = FeedReport()
    for back in range(days - 1, -1, -1):
        day = today - dt.timedelta(days=back)
        for issuer, body in licences_on(city, day, rates=rates, seed=seed):
            status, answer = post(issuer, body)
            code = body["type_code"]
            if status == 201:
                report.issued += 1
                report.per_type[code] = report.per_type.get(code, 0) + 1
            elif status == 200:
                report.already += 1
            else:
                report.refused += 1
                error = answer.get("error", {}) if isinstance(answer, dict) else {}
                report.errors.append(f"{issuer} {code}: {status} {error.get('code')}")
    return report
