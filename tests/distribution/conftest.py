"""Fixtures for distribution: a source (gaj, household registration), two consumers
holding subscription grants (wjw, ybj), and one without a grant (swj)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import make_department
from tests.polling import wait_until

from exchange.client import PushReceiver
from exchange.config import Settings
from exchange.provider_auth import derive_provider_secret

HOUSEHOLD: dict[str, Any] = {
    "category": "101001001",
    "group": "basic",
    "name": "户籍人口变动信息",
    "provider": "gaj",
    "abstract": "出生、死亡、迁入迁出等户籍变动。",
    "resource_type": "interface",
    "items": [
        {
            "field": "id_number",
            "name": "公民身份号码",
            "sharing_type": "unconditional",
            "is_key": True,
        },
        {"field": "name", "name": "姓名", "sharing_type": "unconditional"},
        {"field": "district_code", "name": "户籍地区划代码", "sharing_type": "unconditional"},
        {
            "field": "birth_date",
            "name": "出生日期",
            "data_type": "date",
            "sharing_type": "unconditional",
        },
        {
            "field": "household_size",
            "name": "户内人数",
            "data_type": "integer",
            "sharing_type": "unconditional",
        },
        {"field": "photo", "name": "相片", "sharing_type": "conditional"},
    ],
    "sharing": {
        "type": "unconditional",
        "usage_scopes": ["business_collaboration", "data_verification"],
    },
    "update_cycle": "realtime",
}

Depts = dict[str, dict[str, str]]


@pytest.fixture
def depts(client: TestClient) -> Depts:
    return {
        "gaj": make_department(client, "gaj", "广州市公安局"),
        "wjw": make_department(client, "wjw", "广州市卫生健康委员会"),
        "ybj": make_department(client, "ybj", "广州市医疗保障局"),
        "swj": make_department(client, "swj", "国家税务总局广州市税务局"),
    }


@pytest.fixture
def topic(client: TestClient, depts: Depts) -> str:
    resp = client.post("/api/v1/catalog/topics", json=HOUSEHOLD, headers=depts["gaj"])
    assert resp.status_code == 201, resp.text
    code: str = resp.json()["resource_code"]
    return code


def grant(
    client: TestClient,
    consumer: dict[str, str],
    topic: str,
    items: list[str],
    *,
    delivery: str = "subscription",
) -> int:
    """Apply for unconditional items (granted at once); the grant's id."""
    body = {
        "topic": topic,
        "items": items,
        "purpose": {"scope": "business_collaboration", "text": "新生儿出生一件事联办"},
        "legal_function": "《母婴保健法》第二十三条: 出生医学证明",
        "valid_until": (dt.date.today() + dt.timedelta(days=365)).isoformat(),
        "delivery": delivery,
    }
    resp = client.post("/api/v1/applications", json=body, headers=consumer)
    assert resp.status_code == 201, resp.text
    grant_id = resp.json()["grant_id"]
    assert grant_id is not None, resp.json()
    return int(grant_id)


def person(n: int, district: str = "440104", **extra: Any) -> dict[str, Any]:
    """A household record; its key is a made-up 18-character ID number."""
    return {
        "id_number": f"{district}2026{n:08d}",
        "name": f"张{n}",
        "district_code": district,
        "birth_date": "2026-12-01",
        "household_size": 3,
        **extra,
    }


def change(record: dict[str, Any], kind: str = "birth") -> dict[str, Any]:
    return {
        "key": record["id_number"],
        "kind": kind,
        "changed_at": dt.datetime.now(dt.UTC).isoformat(),
        "record": record,
    }


def publish(
    client: TestClient, headers: dict[str, str], topic: str, events: list[dict[str, Any]]
) -> list[int]:
    resp = client.post(
        f"/api/v1/exchange/{topic}/changes", json={"events": events}, headers=headers
    )
    assert resp.status_code == 202, resp.text
    ids: list[int] = resp.json()["event_ids"]
    return ids


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Quick retries and short leases, so failure paths finish while a test waits."""
    return settings.model_copy(
        update={
            "distribution_push_timeout": 1.0,
            "distribution_max_attempts": 3,
            "distribution_backoff": 0.05,
            "distribution_backoff_max": 0.2,
            "distribution_lease": 5.0,
            "distribution_poll": 0.1,
        }
    )


def credential(consumer: str) -> str:
    """The consumer's credential: pushes to it are signed with it (tests' master secret)."""
    return derive_provider_secret("exms_test", consumer)


class Inbox:
    """What a consumer's endpoint received, in order (a PushReceiver's handler)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.arrived: list[float] = []

    def __call__(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.events.append(event)
            self.arrived.append(time.monotonic())

    def ids(self) -> list[int]:
        with self.lock:
            return [int(e["id"]) for e in self.events]


@contextmanager
def endpoint(consumer: str) -> Iterator[tuple[str, Inbox, PushReceiver]]:
    """A consumer endpoint on loopback: the SDK's receiver with an inbox behind it."""
    inbox = Inbox()
    receiver = PushReceiver(inbox, secret=credential(consumer), audience=consumer)
    with receiver.serve("127.0.0.1", 0) as url:
        yield f"{url}/exchange/push", inbox, receiver


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``predicate`` until true (a deadline, not a guessed sleep)."""
    wait_until(predicate, what or repr(predicate), within=timeout)


def subscribe(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/subscriptions", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out
