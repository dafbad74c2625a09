"""The mock departments' feed: deterministic, idempotent, and its late and missing
decisions counted against the units on the platform clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from tests.conftest import OPERATOR
from tests.credit.conftest import key, today

from exchange.context import AppContext
from exchange.credit import feed
from exchange.credit.baseline import SUBMITTERS
from exchange.departments.city import City


def _post(client: TestClient) -> feed.Post:
    def post(unit: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = client.post(path, json=body, headers=key(unit))
        assert resp.status_code == 200, resp.text
        answer: dict[str, Any] = resp.json()
        return answer

    return post


def test_decisions_are_deterministic() -> None:
    city = City(seed=2020, population=2_000, enterprises=500)
    units = [("scjgj", "广州市市场监督管理局", "114401009713466374")]
    day = dt.date(2026, 3, 2)
    first = feed.decisions_on(city, day, units, per_unit=20, late_rate=0.2, miss_rate=0.1)
    assert first == feed.decisions_on(city, day, units, per_unit=20, late_rate=0.2, miss_rate=0.1)
    assert first != feed.decisions_on(city, day + dt.timedelta(days=1), units, per_unit=20)
    kinds = {d.record["kind"] for d in first}
    assert kinds == {"permit", "penalty"}
    assert any(d.publish_on is None for d in first)


def test_feed_publishes_counts_late_and_missing(
    seeded: TestClient, ctx: AppContext, city: City
) -> None:
    units = feed.submitting_units(seeded.get("/api/v1/departments", headers=OPERATOR).json())
    assert {u[0] for u in units} == set(SUBMITTERS)
    post = _post(seeded)
    args: dict[str, Any] = {"days": 5, "per_unit": 2, "late_rate": 0.2, "miss_rate": 0.1}
    first = feed.run(post, city, units, today(ctx), **args)
    assert first.published > 0
    assert first.notices >= first.published
    again = feed.run(post, city, units, today(ctx), **args)
    assert (again.published, again.duplicates, again.notices) == (0, first.published, 0)
    ctx.clock.advance(dt.timedelta(days=30))
    later = feed.run(
        post, city, units, today(ctx), days=35, **{k: v for k, v in args.items() if k != "days"}
    )
    assert later.late > 0  # the late share of the first days, published now
    stats = seeded.get("/api/v1/credit/stats", headers=OPERATOR).json()
    live = sum(u["missing"] for u in stats["units"])
    assert live > 0
    assert stats["total"]["publication_rate"] < 1.0
