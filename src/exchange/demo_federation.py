"""``exchange demo --story federation``: across levels, narrated.

The provincial market-regulation department (广东省市场监督管理局, ``gd-scjgj``) checks a
Guangzhou enterprise's registration and tax standing, data the city holds, through both
exchanges (``exchange up --federation``). Against the two running platforms, only through
their public APIs, the story

1. publishes the city's enterprise-registration and tax-registration topics to the
   province (the city operator) and lets the province mount them from the feed;
2. grants the chain: the provincial department applies at the province; unconditional
   items are granted there and the province's unit ``gdzsj`` applies at the city for them;
   the conditional credit rating is forwarded to the city, reviewed by the tax bureau in
   its own queue, and the decision flows back to the province's grant;
3. checks one enterprise: the province's broker asks the city's, which asks its
   departments and filters;
4. shows the exchange in both audit trails, under the same correlation id.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from exchange.departments.city import City
from exchange.security import demo_key

__all__ = ["FederationReport", "run_federation_demo"]

CONSUMER = "gd-scjgj"
PURPOSE = "省级企业登记与纳税状况核验(跨层级协同监管)"
LEGAL_FUNCTION = "《广东省市场监督管理条例》《企业信息公示暂行条例》第十四条"
#: (slug at the city, label, items asked for, conditional items the provider reviews)
TOPICS = (
    (
        "enterprise-registration",
        "商事主体基础信息",
        ("credit_code", "name", "entity_type", "legal_representative", "status"),
    ),
    (
        "tax-registration",
        "税务登记信息",
        ("credit_code", "taxpayer_name", "taxpayer_qualification", "credit_rating", "status"),
    ),
)


@dataclass
class FederationReport:
    enterprise: str
    mounted: dict[str, str] = field(default_factory=dict)  # city code → province code
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)
    #: per request id: (province entries, city entries) sharing it
    trails: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = field(
        default_factory=dict
    )

    @property
    def same_correlation(self) -> bool:
        """Every exchange is in both trails under the province's request id."""
        return bool(self.trails) and all(
            any(e["request_id"] == rid for e in here)
            and any(e["correlation_id"] == rid for e in peer)
            for rid, (here, peer) in self.trails.items()
        )


class _Platform:
    def __init__(self, url: str, operator_key: str) -> None:
        self.url = url.rstrip("/")
        self.operator_key = operator_key
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def headers(self, who: str | None = None) -> dict[str, str]:
        key = self.operator_key if who is None else demo_key(self.operator_key, who)
        return {"Authorization": f"Bearer {key}"}

    def call(
        self,
        method: str,
        path: str,
        who: str | None = None,
        extra: dict[str, str] | None = None,
        **kw: Any,
    ) -> Any:
        resp = self.http.request(method, path, headers={**self.headers(who), **(extra or {})}, **kw)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {self.url}{path}: {resp.status_code} {resp.text}")
        return resp.json()


def _apply(platform: _Platform, who: str, topic: str, items: tuple[str, ...]) -> Any:
    return platform.call(
        "POST",
        "/api/v1/applications",
        who,
        json={
            "topic": topic,
            "items": list(items),
            "purpose": {"scope": "data_verification", "text": PURPOSE},
            "legal_function": LEGAL_FUNCTION,
            "valid_until": (dt.date.today() + dt.timedelta(days=365)).isoformat(),
        },
    )


def _review(platform: _Platform, app: dict[str, Any], reviewer: str) -> Any:
    if app["status"] != "pending_review":
        return app
    return platform.call(
        "POST", f"/api/v1/applications/{app['id']}/approve", reviewer, json={"reason": "同意共享"}
    )


def _forwarded(city: _Platform, reviewer: str, on_behalf_of: str) -> Any:
    """The forwarded application, once it is in the city reviewer's queue."""

    def queued() -> Any:
        page = city.call(
            "GET",
            "/api/v1/applications",
            reviewer,
            params={"role": "provider", "status": "pending_review", "limit": 500},
        )
        return next((a for a in page["items"] if a["on_behalf_of"] == on_behalf_of), None)

    return _wait("the forwarded application at the city", queued)


def _wait(what: str, check: Any, within: float = 30) -> Any:
    deadline = time.monotonic() + within
    while not (found := check()):
        if time.monotonic() > deadline:
            raise LookupError(f"{what} did not happen within {within:.0f} s")
        time.sleep(0.2)
    return found


def run_federation_demo(
    city_url: str,
    city_key: str,
    province_url: str,
    province_key: str,
    city_data: City,
    *,
    console: Console,
    pause: float = 0.8,
) -> FederationReport:
    city, province = _Platform(city_url, city_key), _Platform(province_url, province_key)
    try:
        return _tell(city, province, city_data, console, pause)
    finally:
        city.http.close()
        province.http.close()


def _tell(
    city: _Platform, province: _Platform, city_data: City, out: Console, pause: float
) -> FederationReport:
    step = 0

    def chapter(title: str, text: str) -> None:
        nonlocal step
        step += 1
        out.rule(f"[bold]Step {step} · {title}")
        out.print(text, highlight=False)
        if pause:
            time.sleep(pause)

    enterprise = city_data.sample_credit_codes(1, seed=int(time.time()) % 1000)[0]
    report = FederationReport(enterprise=enterprise)
    topics = city.call("GET", "/api/v1/catalog/topics", params={"limit": 200})["items"]
    by_slug = {t["slug"]: t for t in topics if t.get("slug")}
    missing = [slug for slug, *_ in TOPICS if slug not in by_slug]
    if missing:
        raise LookupError(f"the city's catalog has no {missing}: seed it with a core catalog")
    codes = [by_slug[slug]["resource_code"] for slug, *_ in TOPICS]

    chapter(
        "目录上报 · the city publishes to the province",
        "The city operator publishes two topics to the provincial catalog; the province "
        "mounts them from the publication feed, with the city platform (gz) as provider.",
    )
    city.call("POST", "/api/v1/federation/publications", json={"resource_codes": codes})
    province.call("POST", "/api/v1/federation/sync")

    def mounted() -> dict[str, str] | None:
        found = {}
        for t in province.call(
            "GET", "/api/v1/catalog/topics", params={"provider": "gz", "limit": 200}
        )["items"]:
            for tag in t["tags"]:
                if tag.startswith("源目录 ") and t["status"] == "published":
                    found[tag.removeprefix("源目录 ")] = t["resource_code"]
        return found if set(codes) <= set(found) else None

    report.mounted = _wait("the province mounting the topics", mounted)
    table = Table("city topic", "city code", "provincial code", "provider")
    for (_slug, label, _items), code in zip(TOPICS, codes, strict=True):
        table.add_row(label, code, report.mounted[code], "gz 广州市共享平台")
    out.print(table)

    chapter(
        "授权链 · the grant chain",
        f"{CONSUMER} applies at the province. Unconditional items are granted there at "
        "once, and the province's unit gdzsj holds the city's grant for them; an item that "
        "needs review (the conditional credit rating) is forwarded to the city, where the "
        "tax bureau reviews it in its own queue, and its decision flows back.",
    )
    for (_slug, label, items), code in zip(TOPICS, codes, strict=True):
        provider = by_slug[_slug]["provider"]
        there = _apply(province, CONSUMER, report.mounted[code], items)
        if there.get("forwarded_to"):
            forwarded = _forwarded(city, provider, CONSUMER)
            out.print(
                f"  {label}: forwarded to the city, in {provider}'s queue as application "
                f"{forwarded['id']} (gdzsj for {CONSUMER}), due {forwarded['review_deadline']}"
            )
            _review(city, forwarded, provider)
            there = _wait(
                "the city's decision at the province",
                lambda app=there: (
                    (a := province.call("GET", f"/api/v1/applications/{app['id']}"))["status"]
                    != "pending_review"
                    and a
                ),
            )
            out.print(
                f"  {label}: reviewed by {there['reviewed_by']}, province → {CONSUMER} "
                f"[green]{there['status']}[/]"
            )
        else:
            up = _review(city, _apply(city, "gdzsj", code, items), provider)
            out.print(
                f"  {label}: city → province [green]{up['status']}[/], "
                f"province → {CONSUMER} [green]{there['status']}[/]"
            )

    chapter(
        "跨层级核验 · one check through both exchanges",
        f"{CONSUMER} asks the provincial exchange about enterprise {enterprise}; it routes "
        "to the city exchange, which checks its grant to the province, asks the department "
        "and filters.",
    )
    for (_slug, label, items), code in zip(TOPICS, codes, strict=True):
        answer = province.call(
            "POST",
            f"/api/v1/exchange/{report.mounted[code]}/query",
            CONSUMER,
            json={"keys": [enterprise], "items": list(items)},
            extra={"X-Exchange-Case": "CROSS-LEVEL-2026-001"},
        )
        report.records[code] = answer["records"]
        report.request_ids.append(answer["request_id"])
        for record in answer["records"]:
            out.print(f"  {label}: " + ", ".join(f"{k}={v}" for k, v in record.items()))
        if not answer["records"]:
            out.print(f"  {label}: not found ({answer['not_found']})")

    chapter(
        "审计留痕 · both audit trails",
        "Each platform keeps its own hash-chained entry of each exchange; the city's carries "
        "the province's request id as its correlation id.",
    )
    trail = Table("request id", "platform", "consumer", "provider", "outcome", "correlation id")
    for rid in report.request_ids:

        def both(rid: str = rid) -> Any:
            resp = province.http.get(
                f"/api/v1/federation/exchanges/{rid}", headers=province.headers()
            )
            return resp.status_code == 200 and resp.json()["peer"] and resp.json()

        record = _wait("both audit entries", both)
        report.trails[rid] = (record["here"], record["peer"])
        for side, entries in (("province", record["here"]), ("city", record["peer"])):
            for e in entries:
                trail.add_row(
                    e["request_id"][:12],
                    side,
                    e["consumer"],
                    e["provider"] or "",
                    e["outcome"],
                    (e["correlation_id"] or "")[:12],
                )
    out.print(trail)
    return report
