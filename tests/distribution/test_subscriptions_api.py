"""``/api/v1/subscriptions``: who may subscribe to what (clear 4xx otherwise), the pull
feed (cursor, replay, filter, long-poll, items cut to the grant), suspend/resume."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR
from tests.distribution.conftest import (
    HOUSEHOLD,
    Depts,
    change,
    grant,
    person,
    publish,
    subscribe,
)

GRANTED = ["id_number", "name", "district_code", "household_size"]


@pytest.fixture
def granted(client: TestClient, depts: Depts, topic: str) -> int:
    return grant(client, depts["wjw"], topic, GRANTED)


def feed(client: TestClient, headers: dict[str, str], sub: int, **params: Any) -> dict[str, Any]:
    resp = client.get(f"/api/v1/subscriptions/{sub}/events", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"items": ["id_number", "photo"]}, 403, "item_not_granted"),
        ({"items": ["id_number", "shoe_size"]}, 422, "unknown_item"),
        ({"filter": {"where": {"shoe_size": ["42"]}}}, 422, "unknown_filter_item"),
        ({"filter": {"where": {"photo": ["x"]}}}, 403, "filter_item_not_granted"),
        ({"delivery": "push", "endpoint": "ftp://127.0.0.1/in"}, 422, "bad_endpoint"),
        ({"delivery": "push", "endpoint": "file:///etc/passwd"}, 422, "bad_endpoint"),
        ({"delivery": "push"}, 422, "endpoint_required"),
        ({"endpoint": "http://127.0.0.1:9/in"}, 422, "endpoint_not_allowed"),
        ({"delivery": "push", "endpoint": "not a url"}, 422, None),
        ({"delivery": "email"}, 422, None),
        ({"topic": "101001001/999999"}, 404, "topic_not_found"),
        ({"topic": None}, 422, "topic_required"),
        ({"filter": {"topics": ["101001001/000001"]}}, 422, "bad_filter"),
        ({"filter": {"colour": "red"}}, 422, None),
    ],
)
def test_bad_subscriptions_get_clear_4xx(
    client: TestClient,
    depts: Depts,
    topic: str,
    granted: int,
    body: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    full = {"topic": topic, "delivery": "pull", **body}
    resp = client.post("/api/v1/subscriptions", json=full, headers=depts["wjw"])
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    if code is not None:
        assert error["code"] == code
    assert error["message"]


def test_who_may_subscribe(client: TestClient, depts: Depts, topic: str, granted: int) -> None:
    body = {"topic": topic, "delivery": "pull"}
    # No grant at all; a grant for interface delivery only; the operator.
    resp = client.post("/api/v1/subscriptions", json=body, headers=depts["swj"])
    assert (resp.status_code, resp.json()["error"]["code"]) == (403, "no_grant")
    grant(client, depts["ybj"], topic, ["id_number"], delivery="interface")
    resp = client.post("/api/v1/subscriptions", json=body, headers=depts["ybj"])
    assert (resp.status_code, resp.json()["error"]["code"]) == (403, "delivery_not_granted")
    resp = client.post("/api/v1/subscriptions", json=body, headers=OPERATOR)
    assert resp.status_code == 403
    assert client.post("/api/v1/subscriptions", json=body).status_code == 401
    # The holder subscribes; only it (and the operator) sees the subscription.
    sub = subscribe(client, depts["wjw"], **body)
    assert sub["items"] == sorted(GRANTED)
    assert sub["provider"] == "gaj"
    assert client.get(f"/api/v1/subscriptions/{sub['id']}", headers=depts["ybj"]).status_code == 404
    assert client.get(f"/api/v1/subscriptions/{sub['id']}", headers=OPERATOR).status_code == 200
    assert client.get("/api/v1/subscriptions", headers=depts["ybj"]).json()["total"] == 0
    listed = client.get("/api/v1/subscriptions", headers=depts["wjw"]).json()
    assert [s["id"] for s in listed["items"]] == [sub["id"]]
    # Managing a subscription is audited like an exchange.
    entries = client.get(
        "/api/v1/audit/entries", params={"consumer": "wjw"}, headers=OPERATOR
    ).json()["entries"]
    assert ("subscription", "created") in {(e["kind"], e["outcome"]) for e in entries}


def test_pull_feed_cursor_replay_and_items(
    client: TestClient, depts: Depts, topic: str, granted: int
) -> None:
    sub = subscribe(client, depts["wjw"], topic=topic, delivery="pull", items=["id_number", "name"])
    ids = publish(client, depts["gaj"], topic, [change(person(n)) for n in range(5)])
    page = feed(client, depts["wjw"], sub["id"], limit=3)
    assert [e["id"] for e in page["events"]] == ids[:3]
    assert page["more"] is True
    event = page["events"][0]
    assert event["record"] == {"id_number": person(0)["id_number"], "name": "张0"}
    assert (event["topic"], event["kind"], event["key"]) == (topic, "birth", person(0)["id_number"])
    rest = feed(client, depts["wjw"], sub["id"], cursor=page["next_cursor"])
    assert [e["id"] for e in rest["events"]] == ids[3:]
    # The cursor sent acknowledges what came before it: the backlog shows the rest.
    stats = client.get(f"/api/v1/subscriptions/{sub['id']}", headers=depts["wjw"]).json()
    assert stats["cursor"] == page["next_cursor"]
    assert stats["stats"]["backlog"] == 2
    assert stats["stats"]["delivered"] == 5
    # Replay from an older cursor, still held.
    again = feed(client, depts["wjw"], sub["id"], cursor=0)
    assert [e["id"] for e in again["events"]] == ids
    # Every page that handed over records is audited.
    entries = client.get(
        "/api/v1/audit/entries", params={"consumer": "wjw"}, headers=OPERATOR
    ).json()["entries"]
    pulls = [e for e in entries if e["kind"] == "pull"]
    assert [p["records"] for p in pulls] == [3, 2, 5]
    assert pulls[0]["items"] == ["id_number", "name"]
    assert pulls[0]["provider"] == "gaj"


def test_filter_by_district_and_kind(
    client: TestClient, depts: Depts, topic: str, granted: int
) -> None:
    sub = subscribe(
        client,
        depts["wjw"],
        topic=topic,
        delivery="pull",
        filter={"key_prefixes": ["440106"], "kinds": ["birth"]},
    )
    by_where = subscribe(
        client,
        depts["wjw"],
        topic=topic,
        delivery="pull",
        filter={"where": {"district_code": ["440104"]}},
    )
    events = [
        change(person(1, "440106")),
        change(person(2, "440104")),
        change(person(3, "440106"), kind="death"),
        change(person(4, "440106")),
    ]
    ids = publish(client, depts["gaj"], topic, events)
    page = feed(client, depts["wjw"], sub["id"])
    assert [e["id"] for e in page["events"]] == [ids[0], ids[3]]
    assert page["next_cursor"] == ids[3]
    page = feed(client, depts["wjw"], by_where["id"])
    assert [e["id"] for e in page["events"]] == [ids[1]]


def test_narrowing_applies_to_undelivered_events(
    client: TestClient, depts: Depts, topic: str, granted: int
) -> None:
    sub = subscribe(client, depts["wjw"], topic=topic, delivery="pull")
    publish(client, depts["gaj"], topic, [change(person(1))])
    # The provider drops an item from the catalog: grants lose it, and so does every
    # event not yet delivered.
    kept = [i for i in HOUSEHOLD["items"] if i["field"] != "household_size"]
    resp = client.patch(
        f"/api/v1/catalog/topics/{topic}",
        json={"items": kept, "reason": "户内人数改由民政提供"},
        headers=depts["gaj"],
    )
    assert resp.status_code == 200, resp.text
    page = feed(client, depts["wjw"], sub["id"])
    assert len(page["events"]) == 1
    assert "household_size" not in page["events"][0]["record"]
    assert page["events"][0]["record"]["name"] == "张1"


def test_revoked_grant_stops_the_feed(
    client: TestClient, depts: Depts, topic: str, granted: int
) -> None:
    sub = subscribe(client, depts["wjw"], topic=topic, delivery="pull")
    publish(client, depts["gaj"], topic, [change(person(1))])
    resp = client.post(
        f"/api/v1/grants/{granted}/revoke", json={"reason": "职能调整"}, headers=depts["gaj"]
    )
    assert resp.status_code == 200, resp.text
    resp = client.get(f"/api/v1/subscriptions/{sub['id']}/events", headers=depts["wjw"])
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "grant_revoked"


def test_suspend_resume_delete(client: TestClient, depts: Depts, topic: str, granted: int) -> None:
    sub = subscribe(client, depts["wjw"], topic=topic, delivery="pull")
    url = f"/api/v1/subscriptions/{sub['id']}"
    assert client.post(f"{url}/suspend", headers=depts["wjw"]).json()["status"] == "suspended"
    ids = publish(client, depts["gaj"], topic, [change(person(n)) for n in range(3)])
    resp = client.get(f"{url}/events", headers=depts["wjw"])
    assert (resp.status_code, resp.json()["error"]["code"]) == (409, "subscription_suspended")
    assert client.get(url, headers=depts["wjw"]).json()["stats"]["backlog"] == 3
    assert client.post(f"{url}/resume", headers=depts["wjw"]).json()["status"] == "active"
    assert [e["id"] for e in feed(client, depts["wjw"], sub["id"])["events"]] == ids
    assert client.post(f"{url}/suspend", headers=depts["ybj"]).status_code == 404
    assert client.delete(url, headers=depts["wjw"]).status_code == 204
    assert client.get(url, headers=depts["wjw"]).status_code == 404


def test_long_poll_wakes_on_new_events(
    client: TestClient, depts: Depts, topic: str, granted: int
) -> None:
    sub = subscribe(client, depts["wjw"], topic=topic, delivery="pull")
    got: dict[str, Any] = {}

    def poll() -> None:
        got["page"] = feed(client, depts["wjw"], sub["id"], wait=20)

    poller = threading.Thread(target=poll)
    poller.start()
    ids = publish(client, depts["gaj"], topic, [change(person(7))])
    poller.join(30)
    assert [e["id"] for e in got["page"]["events"]] == ids


def test_catalog_subscription(client: TestClient, depts: Depts, topic: str) -> None:
    sub = subscribe(client, depts["wjw"], source="catalog", delivery="pull")
    resp = client.post(
        f"/api/v1/catalog/topics/{topic}/retire", json={"reason": "合并"}, headers=depts["gaj"]
    )
    assert resp.status_code == 200, resp.text
    page = feed(client, depts["wjw"], sub["id"])
    assert [(e["kind"], e["topic"]) for e in page["events"]] == [("retired", topic)]
    assert page["events"][0]["record"]["provider"] == "gaj"
    bad = client.post(
        "/api/v1/subscriptions",
        json={"source": "catalog", "delivery": "pull", "filter": {"kinds": ["born"]}},
        headers=depts["wjw"],
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "bad_filter")


def test_a_subscriber_of_every_item_gets_the_records_as_published(
    client: TestClient, depts: Depts, topic: str
) -> None:
    """Records go out as stored when the subscriber holds every item the topic ever had
    (no decode and re-encode); once the catalog removed an item, earlier events are cut
    again, so the removed item is never delivered."""
    every = [i["field"] for i in HOUSEHOLD["items"]]
    resp = client.post(
        "/api/v1/applications",
        json={
            "topic": topic,
            "items": every,
            "purpose": {"scope": "business_collaboration", "text": "出生一件事"},
            "legal_function": "《母婴保健法》",
            "valid_until": (dt.date.today() + dt.timedelta(days=365)).isoformat(),
            "delivery": "subscription",
        },
        headers=depts["ybj"],
    )
    assert resp.status_code == 201, resp.text
    if resp.json()["status"] == "pending_review":  # the photo is conditional
        approved = client.post(
            f"/api/v1/applications/{resp.json()['id']}/approve", json={}, headers=depts["gaj"]
        )
        assert approved.status_code == 200, approved.text
    sub = subscribe(client, depts["ybj"], topic=topic, delivery="pull")
    record = person(1, photo="gaj-photo/440104/000000001.jpg")
    deletion = {
        "key": person(2)["id_number"],
        "kind": "deleted",
        "changed_at": change(record)["changed_at"],
    }
    publish(client, depts["gaj"], topic, [change(record), deletion])
    page = feed(client, depts["ybj"], sub["id"])
    assert [e["record"] for e in page["events"]] == [record, None]
    kept = [i for i in HOUSEHOLD["items"] if i["field"] != "photo"]
    resp = client.patch(
        f"/api/v1/catalog/topics/{topic}",
        json={"items": kept, "reason": "相片改由证照系统提供"},
        headers=depts["gaj"],
    )
    assert resp.status_code == 200, resp.text
    again = feed(client, depts["ybj"], sub["id"], cursor=0)
    assert again["events"][0]["record"] == {k: v for k, v in record.items() if k != "photo"}
