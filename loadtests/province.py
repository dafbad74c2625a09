"""Provincial consumers in the day: a share of the users' records asked by provincial
departments through the provincial platform, of city topics mounted there (issue 12).

With ``--province-host`` (the provincial platform, ``exchange up --federation`` starts it
beside the city) and ``--province-share`` (default 0.1) of the users' records, the same
users act for provincial departments that often: a lookup (single or batch, the mix's
proportions) at the province, which asks the city exchange, which asks its department.
The share holds by records, whatever the answers' sizes: a user takes a provincial action
whenever the process's provincial records are behind the share of all its users' records.

Setup, through both platforms' public APIs as their operators would (local runner and
master; workers rediscover read-only):

1. topics: the city topics mounted at the province with a lookup key. When fewer than
   ``--province-topics`` are mounted, the city's operator publishes its most popular
   lookup topics to the province and the province syncs until they are mounted;
2. the grant chain at the city: the province's unit there holds a grant on every
   published topic (:func:`loadtests.setup.ensure_grants`, the provider approving);
3. the provincial departments' grants at the province, each on a few mounted topics drawn
   by popularity, for their *unconditional* items: granted there at once. (Conditional
   items would be forwarded for the city provider's review, which takes the federation's
   delivery ticks: not a setup step.)

Records are booked like the city's (the ``province`` group, action ``province``), so the
summary's groups and actions show the provincial part.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtests.profile import weighted_sample, zipf_weights
from loadtests.setup import DAILY_QUOTA, KIND_ACTIVITY, Plan, Topic, _active_grants, _pages, _topic
from loadtests.setup import ensure_grants as ensure_city_grants

__all__ = [
    "GROUP",
    "ProvinceDay",
    "ProvincePlan",
    "add_options",
    "ensure_grants",
    "plan_province",
    "share_of",
]

#: the summary's group and action of records asked through the province
GROUP = "province"
LOOKUP_KEYS = ("id_number", "credit_code")
#: unit kinds at the province that are the city platform (its mounted topics' provider)
PEER_KINDS = frozenset({"city_platform"})
#: the province's units that do not consume: the city platform and the operator itself
NOT_CONSUMERS = PEER_KINDS | {"provincial"}
#: the tag a mounted topic carries with its source (city) code
SOURCE_TAG = "源目录 "
#: seconds the setup waits for the province to mount what the city published
MOUNT_WAIT = 120.0


def add_options(parser: Any) -> None:
    parser.add_argument(
        "--province-host",
        env_var="EXCHANGE_PROVINCE_HOST",
        default="",
        help="The provincial platform (federated with --host); its departments then take "
        "--province-share of the users' records through it.",
    )
    parser.add_argument(
        "--province-operator-key",
        env_var="EXCHANGE_PROVINCE_OPERATOR_KEY",
        default="",
        is_secret=True,
        help="The provincial platform's operator key (its grants setup).",
    )
    parser.add_argument(
        "--province-share",
        type=float,
        default=0.1,
        help="Share of the users' records asked by provincial departments through the "
        "province (with --province-host; 0 switches them off).",
    )
    parser.add_argument(
        "--province-topics",
        type=int,
        default=8,
        help="City lookup topics the setup publishes to the province when fewer are mounted.",
    )


def share_of(o: Any) -> float:
    """The provincial share of the users' records (0 without a province)."""
    if not getattr(o, "province_host", ""):
        return 0.0
    return min(max(float(getattr(o, "province_share", 0.0) or 0.0), 0.0), 0.9)


@dataclass(frozen=True)
class ProvincePlan:
    """Who at the province looks up which mounted city topic."""

    #: provincial department → its share of the provincial actions
    departments: dict[str, float]
    #: provincial department → mounted topics it holds, most popular first
    grants: dict[str, tuple[str, ...]]
    #: mounted resource code (the province's) → topic
    topics: dict[str, Topic]
    #: mounted resource code → its unconditional items (what the grants cover)
    items: dict[str, tuple[str, ...]]
    popularity: dict[str, float]


@dataclass
class ProvinceDay:
    """One process's provincial part: the plan and the records booked so far."""

    host: str
    share: float
    plan: ProvincePlan
    #: records booked by this process's users: all of them, and the provincial ones
    booked: int = 0
    booked_province: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def due(self) -> bool:
        """Whether the next action is provincial: the provincial records are behind the
        share of everything this process's users moved (the first action included)."""
        return self.booked_province <= self.share * self.booked

    def book(self, records: int, *, provincial: bool) -> None:
        self.booked += records
        if provincial:
            self.booked_province += records

    def on_request(
        self,
        context: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        """Locust's ``request`` event: the users' records (deliveries by subscription are
        not the users' and do not count)."""
        if exception is not None or not context or "records" not in context:
            return
        group = context.get("group")
        if group != "subscription":
            self.book(int(context["records"]), provincial=group == GROUP)


def _mounted(
    client: httpx.Client,
) -> tuple[dict[str, str], dict[str, Topic], dict[str, tuple[str, ...]], dict[str, str]]:
    """The province's units, its mounted lookup topics, their unconditional items and the
    source (city) code of each, as its operator sees them."""
    resp = client.get("/api/v1/departments")
    resp.raise_for_status()
    units = [u for u in resp.json() if u["active"]]
    peers = {u["code"] for u in units if u["kind"] in PEER_KINDS}
    base_urls = {u["code"]: u["base_url"] or "peer" for u in units}
    topics: dict[str, Topic] = {}
    items: dict[str, tuple[str, ...]] = {}
    sources: dict[str, str] = {}
    for raw in _pages(client, "/api/v1/catalog/topics", 200):
        if raw["provider"] not in peers or raw.get("status") == "retired":
            continue
        topic = _topic(raw, base_urls)
        free = tuple(
            i["field"] for i in raw.get("items", []) if i["sharing_type"] == "unconditional"
        )
        source = next(
            (t[len("源目录 ") :] for t in raw.get("tags", []) if t.startswith("源目录 ")), ""
        )
        if topic.key_type in LOOKUP_KEYS and topic.key_type in free and source:
            topics[topic.code], items[topic.code], sources[topic.code] = topic, free, source
    return {u["code"]: u["kind"] for u in units}, topics, items, sources


def plan_province(
    units: dict[str, str],
    topics: dict[str, Topic],
    items: dict[str, tuple[str, ...]],
    *,
    seed: int,
    grants_per_unit: tuple[int, int] = (2, 5),
) -> ProvincePlan:
    """Deterministic (seeded): popularity over the mounted topics, each provincial
    department's activity and grants."""
    rng = random.Random(seed + 12)
    codes = sorted(topics)
    rng.shuffle(codes)
    codes.sort(key=lambda c: topics[c].group != "basic")
    popularity = dict(zip(codes, zipf_weights(len(codes), 1.1), strict=True)) if codes else {}
    depts = sorted(c for c, kind in units.items() if kind not in NOT_CONSUMERS)
    weights = zipf_weights(len(depts), 0.7) if depts else []
    order = list(depts)
    rng.shuffle(order)
    rank = dict(zip(order, weights, strict=True))
    grants: dict[str, tuple[str, ...]] = {}
    activity: dict[str, float] = {}
    lo, hi = grants_per_unit
    for code in depts:
        k = min(rng.randint(lo, hi), len(codes))
        held = weighted_sample(codes, [popularity[c] for c in codes], k, rng) if k else []
        grants[code] = tuple(sorted(held, key=lambda c: -popularity[c]))
        if held:
            activity[code] = KIND_ACTIVITY.get(units[code], 1.0) * rank[code]
    total = sum(activity.values()) or 1.0
    return ProvincePlan(
        departments={c: w / total for c, w in activity.items()},
        grants=grants,
        topics={c: topics[c] for c in codes},
        items=items,
        popularity=popularity,
    )


def _publish(
    city: httpx.Client, province: httpx.Client, city_plan: Plan, want: int, have: int
) -> None:
    """The city's operator publishes its most popular lookup topics; the province syncs
    until it has mounted them (polled to a deadline)."""
    # Lookup topics whose key item is shared unconditionally (what the provincial grants
    # cover), the city's most popular first.
    free = {
        raw["resource_code"]
        for raw in _pages(city, "/api/v1/catalog/topics", 200)
        if any(i.get("is_key") and i["sharing_type"] == "unconditional" for i in raw["items"])
    }
    ranked = sorted(city_plan.popularity, key=lambda c: -city_plan.popularity[c])
    codes = [c for c in ranked if city_plan.topics[c].key_type in LOOKUP_KEYS and c in free]
    codes = codes[:want]
    if not codes:
        raise SystemExit("the city has no unconditional lookup topic to publish to the province")
    want = min(want, have + len(codes))
    resp = city.post("/api/v1/federation/publications", json={"resource_codes": codes})
    if resp.status_code != 200:
        raise SystemExit(f"the city could not publish to the province: {resp.text[:300]}")
    deadline = time.monotonic() + MOUNT_WAIT
    while True:
        province.post("/api/v1/federation/sync")
        if len(_mounted(province)[1]) >= want:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the province did not mount the city's topics in {MOUNT_WAIT} s")
        time.sleep(0.5)


def ensure_grants(
    province: httpx.Client,
    plan: ProvincePlan,
    key_of: Callable[[str], str],
    *,
    valid_days: int = 365,
) -> int:
    """The provincial departments' missing grants (their unconditional items, granted at
    once); returns how many were applied for."""
    held = _active_grants(province)
    until = (dt.date.today() + dt.timedelta(days=valid_days)).isoformat()
    applied = 0
    for dept, codes in sorted(plan.grants.items()):
        for code in codes:
            items = plan.items[code]
            if set(items) <= held.get((dept, code), set()):
                continue
            topic = plan.topics[code]
            resp = province.post(
                "/api/v1/applications",
                json={
                    "topic": code,
                    "items": list(items),
                    "purpose": {
                        "scope": topic.purpose_scope,
                        "text": "负载测试:省级部门核验市级数据(load test)",
                    },
                    "legal_function": "依职能共享:本单位法定职责所需(负载测试模拟)",
                    "valid_until": until,
                    "daily_quota": DAILY_QUOTA,
                },
                headers={"Authorization": f"Bearer {key_of(dept)}"},
            )
            if resp.status_code != 201 or resp.json()["status"] != "approved":
                raise RuntimeError(
                    f"{dept} was not granted {code} at the province: "
                    f"{resp.status_code} {resp.text[:300]}"
                )
            applied += 1
    return applied


def prepare(
    o: Any,
    city: httpx.Client,
    city_plan: Plan,
    city_key: Callable[[str], str],
    province_key: Callable[[str], str],
    *,
    create: bool,
) -> ProvinceDay:
    """The provincial part of the day (``create``: publish, grant; else only discover)."""
    if create and not o.province_operator_key:
        raise SystemExit(
            "the provincial platform's operator key is needed: --province-operator-key or "
            "EXCHANGE_PROVINCE_OPERATOR_KEY"
        )
    with httpx.Client(
        base_url=o.province_host,
        headers={"Authorization": f"Bearer {o.province_operator_key}"},
        timeout=60.0,
    ) as province:
        units, topics, items, sources = _mounted(province)
        if create and len(topics) < o.province_topics:
            _publish(city, province, city_plan, o.province_topics, len(topics))
            units, topics, items, sources = _mounted(province)
        if not topics:
            raise SystemExit(f"{o.province_host}: no city lookup topic is mounted there")
        plan = plan_province(units, topics, items, seed=o.plan_seed)
        if create:
            # The chain's city half: the province's unit at the city holds every source.
            peer = next(
                (c for c, kind in discover_kinds(city).items() if kind == "provincial"),
                "gdzsj",
            )
            chain = Plan(
                departments={},
                grants={peer: tuple(sorted({sources[c] for c in topics}))},
                topics=city_plan.topics,
                popularity=city_plan.popularity,
            )
            ensure_city_grants(city, chain, city_key)
            ensure_grants(province, plan, province_key)
    return ProvinceDay(host=o.province_host.rstrip("/"), share=share_of(o), plan=plan)


def discover_kinds(client: httpx.Client) -> dict[str, str]:
    resp = client.get("/api/v1/departments")
    resp.raise_for_status()
    return {u["code"]: u["kind"] for u in resp.json() if u["active"]}
