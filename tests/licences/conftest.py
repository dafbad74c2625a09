"""Fixtures for the licence tests: a seeded exchange (units, core catalog, licence types)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import OPERATOR, OPERATOR_KEY

from exchange.catalog.models import Topic
from exchange.context import AppContext
from exchange.security import demo_key

# A resident ID number and a credit code that pass their check characters.
PERSON_ID = "440524188001010014"
SPOUSE_ID = "11010519491231002X"
FIRM_CODE = "91110108551385082Q"


def key_of(code: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo_key(OPERATOR_KEY, code)}"}


@pytest.fixture
def seeded(ctx: AppContext, client: TestClient) -> Iterator[TestClient]:
    """The test client on an exchange seeded with the 151 units and the licence catalog."""
    from exchange.seed import seed

    seed(ctx.db, ctx.settings, OPERATOR_KEY, ctx.clock)
    ctx.auth.invalidate()
    return client


def topic_code(ctx: AppContext) -> str:
    with ctx.db.sessions() as session:
        code = session.scalar(select(Topic.resource_code).where(Topic.slug == "e-licences"))
    assert code is not None
    return code


def marriage(holder: str = PERSON_ID, **extra: Any) -> dict[str, Any]:
    return {
        "type_code": "JHZ",
        "holder_id": holder,
        "holder_name": "张三",
        "content": {
            "name": "张三",
            "spouse_name": "李四",
            "spouse_id_number": SPOUSE_ID,
            "registered_on": "2024-05-20",
        },
        **extra,
    }


def issue(client: TestClient, body: dict[str, Any] | None = None, issuer: str = "mzj") -> Any:
    resp = client.post("/api/v1/licences", json=body or marriage(), headers=key_of(issuer))
    assert resp.status_code == 201, resp.text
    return resp.json()


def grant(client: TestClient, consumer: str, topic: str, items: list[str]) -> None:
    """Apply for the e-licence topic (unconditional: granted at once) and wait until the
    grant cache sees it."""
    body = {
        "topic": topic,
        "items": items,
        "purpose": {"scope": "data_verification", "text": "核验婚姻状况"},
        "legal_function": "《婚姻登记条例》",
        "valid_until": (dt.date.today() + dt.timedelta(days=365)).isoformat(),
    }
    resp = client.post("/api/v1/applications", json=body, headers=key_of(consumer))
    assert resp.status_code == 201, resp.text
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        check = client.post(
            "/api/v1/authz/check", json={"consumer": consumer, "topic": topic}, headers=OPERATOR
        )
        if check.status_code == 200 and check.json().get("allowed"):
            return
        time.sleep(0.02)
    raise AssertionError("the grant never became visible")
