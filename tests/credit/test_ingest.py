"""Gathering the living city's permit and penalty events from the distribution outbox."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import OPERATOR
from tests.credit.conftest import key, today

from exchange.catalog.models import Topic
from exchange.context import AppContext
from exchange.departments.city import City


def test_city_events_become_market_regulation_decisions(
    seeded: TestClient, ctx: AppContext, city: City
) -> None:
    with ctx.db.sessions() as session:
        topic = session.scalar(select(Topic.resource_code).where(Topic.slug == "credit-publicity"))
    code = city.sample_credit_codes(1, seed=9)[0]
    name = city.enterprise_by_credit_code(code).name  # type: ignore[union-attr]
    day = today(ctx)
    at = dt.datetime.combine(day, dt.time(10), dt.timezone(dt.timedelta(hours=8))).isoformat()
    base = {
        "credit_code": code,
        "name": name,
        "licensing_count": 1,
        "penalty_count": 0,
        "latest_penalty_number": None,
        "latest_penalty_reason": None,
        "latest_penalty_date": None,
        "latest_penalty_amount": None,
        "list_status": "无",
    }
    fined = {
        **base,
        "penalty_count": 1,
        "latest_penalty_number": "穗市监处罚〔2026〕77号",
        "latest_penalty_reason": "发布虚假广告",
        "latest_penalty_date": day.isoformat(),
        "latest_penalty_amount": 1500,
    }
    events = [
        {"key": code, "kind": "enterprise_registered", "changed_at": at, "record": base},
        {"key": code, "kind": "permit_granted", "changed_at": at, "record": base},
        {"key": code, "kind": "penalty_decided", "changed_at": at, "record": fined},
    ]
    resp = seeded.post(
        f"/api/v1/exchange/{topic}/changes", json={"events": events}, headers=key("zsj")
    )
    assert resp.status_code == 202, resp.text

    assert seeded.post("/api/v1/credit/ingest", headers=key("gaj")).status_code == 403
    first = seeded.post("/api/v1/credit/ingest", headers=OPERATOR).json()
    assert (first["events"], first["published"], first["skipped"]) == (3, 2, 1)
    again = seeded.post("/api/v1/credit/ingest", params={"after": 0}, headers=OPERATOR).json()
    assert (again["published"], again["duplicates"]) == (0, 2)
    after = seeded.post(
        "/api/v1/credit/ingest", params={"after": first["cursor"]}, headers=OPERATOR
    ).json()
    assert after["events"] == 0
    found = seeded.get("/api/v1/credit/records", params={"credit_code": code}, headers=key("sw"))
    items = found.json()["items"]
    assert {(i["kind"], i["submitter"]) for i in items} == {
        ("permit", "scjgj"),
        ("penalty", "scjgj"),
    }
    penalty = next(i for i in items if i["kind"] == "penalty")
    assert penalty["decision_number"] == "穗市监处罚〔2026〕77号"
    assert penalty["fine_amount"] == "1500"
