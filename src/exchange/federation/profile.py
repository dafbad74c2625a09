"""Federation profiles: the seed's counts (741 city catalogs published to the provincial
platform, 199 of them provided as data) reproduced by a run against both platforms.

A profile (``data/profiles.yaml``) gives only sizes; which topics they are comes out of
the city's catalog by one rule (:func:`choose`), so the counts the province then shows are
those of the run, not numbers written anywhere:

* **published**: the city's own live topics that share something (not ``not_shared`` as a
  whole; mounted provincial topics are the province's, never published back). Topics a
  department serves (an API path in the catalog: the data exchanged every day) come first,
  then basic topics (人口, 法人, 电子证照 … the bases a province relies on), then the rest;
  within each of the three every providing department gives one topic in turn (units in
  code order, each unit's topics in resource-code order), so the published catalog spans
  the departments rather than the first few of them.
* **provided as data**: among the published, the table topics (only tables are provided
  in bulk), the served ones first, then in publication order.

:func:`run_profile` applies it through the two platforms' public APIs: the city's operator
publishes; the province mounts from the feed; for each provided topic the city's operator
files the province's unit's application for the shared items (bulk delivery):
unconditional items are granted at once, conditional ones are approved by the provider
department (the run acts as each department with the demo key ``exchange up`` seeded, as
the demo stories do); then the province starts pulling them in bulk. Running it again
changes nothing.

Only the topics a mock department serves have records (the generated catalog is metadata):
the others' provisions are established, counted and audited, and their pulls answer the
department's refusal (``GET /provisions`` shows it) and are retried with a growing wait.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from exchange.documents import load_document
from exchange.security import demo_key

__all__ = [
    "FederationProfile",
    "ProfileReport",
    "choose",
    "load_profiles",
    "profiles",
    "run_profile",
]

#: the tag a mounted topic carries (exchange.federation.service.mounted_spec)
ORIGIN_TAG = "源目录 "
PAGE = 200  # the catalog search's largest page


class FederationProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    catalog: str = Field(description="The city catalog profile the counts belong to.")
    publish: int = Field(ge=1, le=100_000)
    provide: int = Field(ge=0, le=100_000)


class _ProfilesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profiles: dict[str, FederationProfile]

    @model_validator(mode="after")
    def _provide_what_is_published(self) -> _ProfilesFile:
        for name, p in self.profiles.items():
            if p.provide > p.publish:
                raise ValueError(f"profiles.{name}.provide: more topics than it publishes")
        return self


def load_profiles(file: Path) -> dict[str, FederationProfile]:
    """The profiles of a YAML file, by name (a ContentError naming file and field if not)."""
    return load_document(file, _ProfilesFile).profiles


@cache
def profiles() -> dict[str, FederationProfile]:
    """The profiles shipped with the package, by name."""
    return load_profiles(Path(str(resources.files("exchange.federation") / "data/profiles.yaml")))


def _shares(topic: dict[str, Any]) -> bool:
    return bool(topic["sharing"]["type"] != "not_shared") and any(
        i["sharing_type"] != "not_shared" for i in topic["items"]
    )


def shared_items(topic: dict[str, Any]) -> list[str]:
    return [str(i["field"]) for i in topic["items"] if i["sharing_type"] != "not_shared"]


def _round_robin(topics: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Topics interleaved by provider: each unit's first, then each unit's second …"""
    by_unit: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in sorted(topics, key=lambda t: str(t["resource_code"])):
        by_unit[str(t["provider"])].append(t)
    queues = [by_unit[u] for u in sorted(by_unit)]
    out: list[dict[str, Any]] = []
    depth = 0
    while len(out) < sum(len(q) for q in queues):
        out.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return out


def choose(
    topics: Sequence[dict[str, Any]], profile: FederationProfile, peer_unit: str
) -> tuple[list[str], list[str]]:
    """(codes to publish, codes of those to provide as data), by the module's rule.

    ``topics`` are the city catalog's topics as its search answers them. Too few eligible
    topics for the profile's sizes refuses (``ValueError``): a smaller count would not be
    the profile's."""
    eligible = [
        t
        for t in topics
        if t["status"] == "published"
        and t["provider"] != peer_unit
        and not any(str(tag).startswith(ORIGIN_TAG) for tag in t.get("tags") or ())
        and _shares(t)
    ]
    served = [t for t in eligible if t.get("api_path")]
    basic = [t for t in eligible if not t.get("api_path") and t["group"] == "basic"]
    rest = [t for t in eligible if not t.get("api_path") and t["group"] != "basic"]
    ordered = _round_robin(served) + _round_robin(basic) + _round_robin(rest)
    if len(ordered) < profile.publish:
        raise ValueError(
            f"the catalog has {len(ordered)} topics that can be published, the profile "
            f"publishes {profile.publish} (seed the city with catalog profile {profile.catalog})"
        )
    published = ordered[: profile.publish]
    tables = [t for t in published if t["resource_type"] == "table"]
    provided = [t for t in tables if t.get("api_path")]
    provided += [t for t in tables if not t.get("api_path")]
    if len(provided) < profile.provide:
        raise ValueError(
            f"of the {profile.publish} topics published, {len(provided)} are tables; the "
            f"profile provides {profile.provide}"
        )
    return (
        [str(t["resource_code"]) for t in published],
        [str(t["resource_code"]) for t in provided[: profile.provide]],
    )


@dataclass
class ProfileReport:
    """What a run did and what both platforms then report."""

    profile: str
    published: list[str] = field(default_factory=list)
    provided: list[str] = field(default_factory=list)
    #: city code → the province's code of the mounted topic
    mounted: dict[str, str] = field(default_factory=dict)
    applications: int = 0
    city_status: dict[str, Any] = field(default_factory=dict)
    province_status: dict[str, Any] = field(default_factory=dict)


class _Platform:
    def __init__(self, url: str, operator_key: str, timeout: float) -> None:
        self.http = httpx.Client(
            base_url=url.rstrip("/"),
            timeout=timeout,
            headers={"Authorization": f"Bearer {operator_key}"},
        )

    def call(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.http.request(method, path, **kw)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {resp.request.url}: {resp.status_code} {resp.text}")
        return resp.json()

    def topics(self) -> list[dict[str, Any]]:
        """The whole live catalog, page by page."""
        out: list[dict[str, Any]] = []
        while True:
            page = self.call(
                "GET",
                "/api/v1/catalog/topics",
                params={"status": "published", "offset": len(out), "limit": PAGE},
            )
            out += page["items"]
            if not page["items"] or len(out) >= page["total"]:
                return out

    def close(self) -> None:
        self.http.close()


def _mounted(province: _Platform, wanted: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for t in province.topics():
        for tag in t.get("tags") or ():
            origin = str(tag).removeprefix(ORIGIN_TAG)
            if str(tag).startswith(ORIGIN_TAG) and origin in wanted:
                found[origin] = str(t["resource_code"])
    return found


def _apply(
    city: _Platform, operator_key: str, peer_unit: str, topic: dict[str, Any], today: dt.date
) -> None:
    """The province's unit applies for the topic's shared items (bulk delivery), the city's
    operator filing it on its behalf; the provider department approves what needs review."""
    items = shared_items(topic)
    scopes = topic["sharing"].get("usage_scopes") or ["data_verification"]
    app = city.call(
        "POST",
        "/api/v1/applications",
        json={
            "consumer": peer_unit,
            "topic": topic["resource_code"],
            "items": items,
            "purpose": {"scope": scopes[0], "text": "向省政务大数据中心提供数据(目录挂接数据)"},
            "legal_function": "《广东省政务数据资源共享管理办法(试行)》第二十条",
            "valid_until": (today + dt.timedelta(days=4 * 365)).isoformat(),
            "delivery": "bulk",
        },
    )
    if app["status"] == "pending_review":
        provider = demo_key(operator_key, str(topic["provider"]))
        city.call(
            "POST",
            f"/api/v1/applications/{app['id']}/approve",
            json={"reason": "同意向省平台提供"},
            headers={"Authorization": f"Bearer {provider}"},
        )


def _granted(city: _Platform, peer_unit: str) -> set[str]:
    """Topics the peer unit holds a live grant on at the city."""
    out: set[str] = set()
    offset = 0
    while True:
        page = city.call(
            "GET",
            "/api/v1/grants",
            params={"consumer": peer_unit, "status": "active", "offset": offset, "limit": 100},
        )
        out |= {str(g["topic"]) for g in page["items"]}
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return out


def run_profile(
    name: str,
    *,
    city_url: str,
    city_operator_key: str,
    province_url: str,
    province_operator_key: str,
    within: float = 120,
    say: Callable[[str], None] = lambda _s: None,
) -> ProfileReport:
    """Apply profile ``name`` to a running city and province (see the module docstring)."""
    profile = profiles()[name]
    city = _Platform(city_url, city_operator_key, 60)
    province = _Platform(province_url, province_operator_key, 60)
    try:
        status = city.call("GET", "/api/v1/federation/status")
        if status["level"] != "city":
            raise ValueError(f"{city_url} is the {status['level']} platform, not the city")
        peer_unit = str(status["peer_code"])
        topics = city.topics()
        by_code = {str(t["resource_code"]): t for t in topics}
        published, provided = choose(topics, profile, peer_unit)
        report = ProfileReport(profile=name, published=published, provided=provided)
        say(f"publishing {len(published)} of the city's {len(topics)} topics")
        for start in range(0, len(published), 5000):
            city.call(
                "POST",
                "/api/v1/federation/publications",
                json={"resource_codes": published[start : start + 5000]},
            )
        say("waiting for the province to mount them")
        wanted = set(published)
        deadline = time.monotonic() + within
        while True:
            province.call("POST", "/api/v1/federation/sync", json={})
            report.mounted = _mounted(province, wanted)
            if len(report.mounted) == len(wanted):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the province mounted {len(report.mounted)} of {len(wanted)} topics "
                    f"within {within:.0f} s"
                )
            time.sleep(0.5)
        say(f"granting the province's unit {peer_unit} the {len(provided)} topics provided")
        granted = _granted(city, peer_unit)
        today = dt.date.today()
        for code in provided:
            if code not in granted:
                _apply(city, city_operator_key, peer_unit, by_code[code], today)
                report.applications += 1
        province.call(
            "POST",
            "/api/v1/federation/provisions",
            json={"resource_codes": [report.mounted[c] for c in provided]},
        )
        report.city_status = city.call("GET", "/api/v1/federation/status")
        report.province_status = province.call("GET", "/api/v1/federation/status")
        return report
    finally:
        city.close()
        province.close()
