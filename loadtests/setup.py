"""Setup of a load test: discover the exchange, plan who consumes what, create the grants.

Everything goes through the public API (no database back door), as a real rollout would:

1. the operator lists the member units and pages through the catalog;
2. a deterministic plan (seeded) gives each unit a few topics to consume, drawn with Zipf
   popularity over the *exchangeable* topics — those whose provider runs an API (a
   ``base_url``) and that name an ``api_path`` and a key item;
3. each consumer applies with its own key (seeded units' keys are
   ``demo_key(operator_key, code)``); unconditional items are granted at once, conditional
   ones are approved by the provider with *its* key, with a daily quota large enough for
   the run. Pairs that already hold an active grant with every planned item are skipped,
   so a second run against the same exchange only checks.

The plan depends only on the catalog, the units and the seed, so Locust workers recompute
it (read-only) instead of receiving it from the master.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from loadtests.profile import weighted_sample, zipf_weights

__all__ = [
    "Plan",
    "SetupReport",
    "Topic",
    "discover",
    "ensure_grants",
    "make_plan",
]

KEY_TYPES = ("id_number", "credit_code", "plate_number", "licence_number")
#: Records per day a grant allows: far above any run (the API's maximum is 10^9).
DAILY_QUOTA = 1_000_000_000
#: Relative exchange activity of a unit by kind (an assumption): the provincial platform
#: pulls in bulk, municipal bureaus and districts serve the public every day, banks and
#: utilities verify now and then.
KIND_ACTIVITY = {
    "provincial": 6.0,
    "municipal": 3.0,
    "vertical": 2.0,
    "district": 1.5,
    "institution": 1.0,
    "financial": 1.0,
    "utility": 1.0,
}


@dataclass(frozen=True)
class Topic:
    """One catalog topic, as much of it as the load needs."""

    code: str
    name: str
    provider: str
    group: str
    resource_type: str
    key_type: str | None
    shareable: tuple[str, ...]
    conditional: bool
    exchangeable: bool
    #: the uses the catalog offers the topic's data for (an application must name one)
    scopes: tuple[str, ...] = ("data_verification",)
    slug: str = ""

    @property
    def purpose_scope(self) -> str:
        """The use a load-test application declares: data verification where offered."""
        return "data_verification" if "data_verification" in self.scopes else self.scopes[0]

    @property
    def path(self) -> str:
        front, seq = self.code.split("/")
        return f"/api/v1/exchange/{front}/{seq}"

    @property
    def exportable(self) -> bool:
        return self.resource_type == "table"


@dataclass(frozen=True)
class Plan:
    """Who consumes what, and how popular everything is."""

    #: unit code → its activity weight (share of the day's actions)
    departments: dict[str, float]
    #: unit code → the topics it holds grants for, most popular first
    grants: dict[str, tuple[str, ...]]
    #: resource code → topic, for every topic in the catalog
    topics: dict[str, Topic]
    #: resource code → Zipf popularity among exchangeable topics
    popularity: dict[str, float]

    @property
    def consumers(self) -> list[str]:
        """Units holding at least one grant, in a stable order."""
        return sorted(code for code, held in self.grants.items() if held)


@dataclass(frozen=True)
class SetupReport:
    applied: int
    approved: int
    already: int


def _topic(raw: dict[str, Any], base_urls: dict[str, str | None]) -> Topic:
    items = raw.get("items", [])
    key = next((i["field"] for i in items if i.get("is_key")), None)
    shareable = tuple(i["field"] for i in items if i["sharing_type"] != "not_shared")
    key_type = key if key in KEY_TYPES else None
    return Topic(
        code=raw["resource_code"],
        name=raw["name"],
        provider=raw["provider"],
        group=raw["group"],
        resource_type=raw["resource_type"],
        key_type=key_type,
        shareable=shareable,
        conditional=any(i["sharing_type"] == "conditional" for i in items),
        exchangeable=bool(
            raw.get("api_path") and base_urls.get(raw["provider"]) and shareable and key_type
        ),
        scopes=tuple(raw.get("sharing", {}).get("usage_scopes") or ("data_verification",)),
        slug=str(raw.get("slug") or ""),
    )


def _pages(client: httpx.Client, path: str, limit: int) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        resp = client.get(path, params={"offset": offset, "limit": limit})
        resp.raise_for_status()
        page = resp.json()
        yield from page["items"]
        offset += limit
        if offset >= page["total"] or not page["items"]:
            return


def discover(client: httpx.Client) -> tuple[dict[str, str], dict[str, Topic]]:
    """(unit code → kind, resource code → topic) as the operator sees them.

    ``client`` carries the operator key and the exchange's base URL.
    """
    resp = client.get("/api/v1/departments")
    resp.raise_for_status()
    units = [u for u in resp.json() if u["active"]]
    base_urls = {u["code"]: u["base_url"] for u in units}
    topics = {
        raw["resource_code"]: _topic(raw, base_urls)
        for raw in _pages(client, "/api/v1/catalog/topics", 200)
    }
    return {u["code"]: u["kind"] for u in units}, topics


def make_plan(
    units: dict[str, str],
    topics: dict[str, Topic],
    *,
    seed: int = 2020,
    topic_skew: float = 1.1,
    department_skew: float = 0.7,
    grants_per_unit: tuple[int, int] = (2, 6),
) -> Plan:
    """The deterministic plan: popularity, activity and each unit's grants.

    Popularity ranks basic-information topics (population, legal entities, licences) first,
    as on the real platform where they are the most shared, then the rest; ties in a
    seeded order. Each unit draws between ``grants_per_unit`` topics by popularity,
    never its own.
    """
    rng = random.Random(seed)
    usable = sorted(c for c, t in topics.items() if t.exchangeable)
    rng.shuffle(usable)
    usable.sort(key=lambda c: topics[c].group != "basic")  # stable: basic first
    popularity = dict(zip(usable, zipf_weights(len(usable), topic_skew), strict=True))
    order = sorted(units)
    rng.shuffle(order)
    rank = dict(zip(order, zipf_weights(len(order), department_skew), strict=True))
    grants: dict[str, tuple[str, ...]] = {}
    activity: dict[str, float] = {}
    lo, hi = grants_per_unit
    for code in sorted(units):
        own = [c for c in usable if topics[c].provider != code]
        k = len(own) if units[code] == "provincial" else rng.randint(lo, hi)
        held = weighted_sample(own, [popularity[c] for c in own], k, rng)
        grants[code] = tuple(sorted(held, key=lambda c: -popularity[c]))
        if held:
            activity[code] = KIND_ACTIVITY.get(units[code], 1.0) * rank[code]
    total = sum(activity.values()) or 1.0
    return Plan(
        departments={c: w / total for c, w in activity.items()},
        grants=grants,
        topics=topics,
        popularity=popularity,
    )


def _active_grants(client: httpx.Client) -> dict[tuple[str, str], set[str]]:
    held: dict[tuple[str, str], set[str]] = {}
    offset = 0
    while True:
        resp = client.get(
            "/api/v1/grants", params={"status": "active", "offset": offset, "limit": 500}
        )
        resp.raise_for_status()
        page = resp.json()
        for g in page["items"]:
            held.setdefault((g["consumer"], g["topic"]), set()).update(g["items"])
        offset += 500
        if offset >= page["total"] or not page["items"]:
            return held


def ensure_grants(
    client: httpx.Client,
    plan: Plan,
    key_of: Callable[[str], str],
    *,
    valid_days: int = 365,
    progress: Callable[[int, int], None] | None = None,
) -> SetupReport:
    """Create every planned grant that is missing, through applications and approvals.

    ``client`` carries the operator key (to list grants); ``key_of(code)`` gives each
    unit's own key, used for its applications and, as provider, its approvals.
    """
    held = _active_grants(client)
    todo = [
        (consumer, code)
        for consumer, codes in sorted(plan.grants.items())
        for code in codes
        if not set(plan.topics[code].shareable) <= held.get((consumer, code), set())
    ]
    already = sum(len(v) for v in plan.grants.values()) - len(todo)
    until = (dt.date.today() + dt.timedelta(days=valid_days)).isoformat()
    applied = approved = 0
    for n, (consumer, code) in enumerate(todo, 1):
        topic = plan.topics[code]
        resp = client.post(
            "/api/v1/applications",
            json={
                "topic": code,
                "items": list(topic.shareable),
                "purpose": {
                    "scope": topic.purpose_scope,
                    "text": "负载测试:按职能核验办事材料(load test)",
                },
                "legal_function": "依职能共享:本单位法定职责所需(负载测试模拟)",
                "valid_until": until,
                "daily_quota": DAILY_QUOTA,
                "delivery": "bulk" if topic.exportable else "interface",
            },
            headers={"Authorization": f"Bearer {key_of(consumer)}"},
        )
        if resp.status_code != 201:
            raise RuntimeError(
                f"{consumer} could not apply for {code}: {resp.status_code} {resp.text[:300]}"
            )
        applied += 1
        app = resp.json()
        if app["status"] == "pending_review":
            resp = client.post(
                f"/api/v1/applications/{app['id']}/approve",
                json={},
                headers={"Authorization": f"Bearer {key_of(topic.provider)}"},
            )
            if resp.status_code != 200:
                raise RuntimeError(
                    f"{topic.provider} could not approve application {app['id']}: "
                    f"{resp.status_code} {resp.text[:300]}"
                )
            approved += 1
        if progress is not None:
            progress(n, len(todo))
    return SetupReport(applied=applied, approved=approved, already=already)
