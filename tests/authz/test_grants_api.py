"""Grants and disputes: dispute to resolution (grant, partial, uphold), revocation, expiry
by the simulated clock, retirement and catalog changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from tests.authz.conftest import PERSON, advance, application, apply, check, outcomes
from tests.conftest import OPERATOR

Depts = dict[str, dict[str, str]]
Topics = dict[str, str]


def rejected_marriage(client: TestClient, depts: Depts, topics: Topics) -> dict[str, Any]:
    app = apply(client, depts["rsj"], application(topics["marriage"], ["id_number", "status"]))
    resp = client.post(
        f"/api/v1/applications/{app['id']}/reject",
        json={"reason": "非婚姻业务部门"},
        headers=depts["mzj"],
    )
    assert resp.status_code == 200
    out: dict[str, Any] = resp.json()
    return out


def test_dispute_negotiation_then_partial_grant(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    app = rejected_marriage(client, depts, topics)
    url = f"/api/v1/applications/{app['id']}/dispute"
    # Only the applicant disputes, and with a reason.
    assert client.post(url, json={"reason": "x"}, headers=depts["mzj"]).status_code == 403
    resp = client.post(url, json={}, headers=depts["rsj"])
    assert resp.json()["error"]["code"] == "reason_required"
    resp = client.post(url, json={"reason": "x", "items": ["name"]}, headers=depts["rsj"])
    assert resp.json()["error"]["code"] == "item_not_refused"
    resp = client.post(url, json={"reason": "养老金资格认证需核对婚姻状况"}, headers=depts["rsj"])
    assert resp.status_code == 201, resp.text
    dispute = resp.json()
    assert dispute["status"] == "open"
    assert dispute["items"] == ["id_number", "status"]
    again = client.post(url, json={"reason": "again"}, headers=depts["rsj"])
    assert again.json()["error"]["code"] == "dispute_exists"
    assert client.get(f"/api/v1/applications/{app['id']}", headers=OPERATOR).json()["status"] == (
        "disputed"
    )
    d_url = f"/api/v1/disputes/{dispute['id']}"
    # Both sides negotiate; a stranger may neither read nor write.
    for who, text in (("mzj", "请说明法定依据"), ("rsj", "《社会保险法》第八条")):
        resp = client.post(d_url + "/messages", json={"body": text}, headers=depts[who])
        assert resp.status_code == 201, resp.text
    assert client.get(d_url, headers=depts["swj"]).status_code == 403
    resp = client.post(d_url + "/messages", json={"body": "hi"}, headers=depts["swj"])
    assert resp.status_code == 403
    thread = client.get(d_url, headers=depts["rsj"]).json()["messages"]
    assert [(m["author"], m["body"]) for m in thread] == [
        ("mzj", "请说明法定依据"),
        ("rsj", "《社会保险法》第八条"),
    ]
    # Only the operator decides, with a reason; partial names its items.
    decide = d_url + "/decide"
    resp = client.post(decide, json={"decision": "grant", "reason": "x"}, headers=depts["mzj"])
    assert resp.json()["error"]["code"] == "operator_only"
    resp = client.post(decide, json={"decision": "grant"}, headers=OPERATOR)
    assert resp.json()["error"]["code"] == "reason_required"
    resp = client.post(decide, json={"decision": "partial", "reason": "x"}, headers=OPERATOR)
    assert resp.json()["error"]["code"] == "items_required"
    resp = client.post(decide, json={"decision": "maybe", "reason": "x"}, headers=OPERATOR)
    assert resp.status_code == 422
    resp = client.post(
        decide,
        json={"decision": "partial", "items": ["status"], "reason": "核对婚姻状况属法定职责"},
        headers=OPERATOR,
    )
    assert resp.status_code == 200, resp.text
    decided = resp.json()
    assert decided["decision"] == "partial"
    assert decided["decided_items"] == ["status"]
    assert decided["decided_by"] == "operator"
    final = client.get(f"/api/v1/applications/{app['id']}", headers=depts["rsj"]).json()
    assert final["status"] == "partially_approved"
    assert outcomes(final) == {"id_number": "rejected", "status": "granted"}
    assert check(client, "rsj", topics["marriage"], ["status"])["allowed"] is True
    assert check(client, "rsj", topics["marriage"], ["id_number"])["reason"] == "item_not_granted"
    # Every step, with who and why.
    steps = [(e["kind"], e["actor"]) for e in final["events"]]
    assert steps == [
        ("submitted", "rsj"),
        ("review_requested", "platform"),
        ("rejected", "mzj"),
        ("dispute_opened", "rsj"),
        ("dispute_message", "mzj"),
        ("dispute_message", "rsj"),
        ("dispute_decided", "operator"),
    ]
    assert final["events"][-1]["reason"] == "核对婚姻状况属法定职责"
    resp = client.post(d_url + "/messages", json={"body": "late"}, headers=depts["rsj"])
    assert resp.json()["error"]["code"] == "dispute_closed"
    resp = client.post(decide, json={"decision": "grant", "reason": "x"}, headers=OPERATOR)
    assert resp.json()["error"]["code"] == "dispute_closed"


def test_dispute_grant_and_uphold(client: TestClient, depts: Depts, topics: Topics) -> None:
    # A not-shared refusal can be disputed too; the operator grants it.
    app = apply(client, depts["rsj"], application(topics["secret"], ["case_no"]))
    dispute = client.post(
        f"/api/v1/applications/{app['id']}/dispute",
        json={"reason": "工伤认定需核对案件"},
        headers=depts["rsj"],
    ).json()
    resp = client.post(
        f"/api/v1/disputes/{dispute['id']}/decide",
        json={"decision": "grant", "reason": "经协调同意"},
        headers=OPERATOR,
    )
    assert resp.status_code == 200
    assert client.get(f"/api/v1/applications/{app['id']}", headers=OPERATOR).json()["status"] == (
        "approved"
    )
    assert check(client, "rsj", topics["secret"])["items"] == ["case_no"]
    # Upholding the refusal leaves the consumer without the data.
    app = rejected_marriage(client, depts, topics)
    dispute = client.post(
        f"/api/v1/applications/{app['id']}/dispute", json={"reason": "需要"}, headers=depts["rsj"]
    ).json()
    resp = client.post(
        f"/api/v1/disputes/{dispute['id']}/decide",
        json={"decision": "uphold", "reason": "不属于申请部门法定职责"},
        headers=OPERATOR,
    )
    assert resp.json()["decision"] == "uphold"
    final = client.get(f"/api/v1/applications/{app['id']}", headers=OPERATOR).json()
    assert final["status"] == "returned"
    assert check(client, "rsj", topics["marriage"])["reason"] == "no_grant"


def test_dispute_needs_a_refusal(client: TestClient, depts: Depts, topics: Topics) -> None:
    pending = apply(client, depts["rsj"], application(topics["marriage"], ["status"]))
    granted = apply(client, depts["rsj"], application(topics["person"], ["name"]))
    for app in (pending, granted):
        resp = client.post(
            f"/api/v1/applications/{app['id']}/dispute", json={"reason": "x"}, headers=depts["rsj"]
        )
        assert resp.status_code == 409
        assert resp.json()["error"]["code"] == "nothing_refused"


def test_provider_revokes_with_a_reason(client: TestClient, depts: Depts, topics: Topics) -> None:
    app = apply(client, depts["rsj"], application(topics["person"], ["name"]))
    url = f"/api/v1/grants/{app['grant_id']}/revoke"
    assert client.post(url, json={"reason": "x"}, headers=depts["rsj"]).status_code == 403
    assert client.post(url, json={"reason": "x"}, headers=depts["swj"]).status_code == 403
    resp = client.post(url, json={}, headers=depts["gaj"])
    assert resp.json()["error"]["code"] == "reason_required"
    resp = client.post(url, json={"reason": "发现超范围使用"}, headers=depts["gaj"])
    assert resp.status_code == 200
    assert resp.json()["status"] == "revoked"
    assert resp.json()["status_reason"] == "发现超范围使用"
    got = check(client, "rsj", topics["person"])
    assert (got["allowed"], got["reason"], got["grant_id"]) == (
        False,
        "grant_revoked",
        app["grant_id"],
    )
    assert client.post(url, json={"reason": "x"}, headers=OPERATOR).status_code == 409
    listed = client.get("/api/v1/grants", params={"status": "revoked"}, headers=depts["rsj"]).json()
    assert [g["id"] for g in listed["items"]] == [app["grant_id"]]
    # A new application after revocation opens a new grant.
    again = apply(client, depts["rsj"], application(topics["person"], ["name"]))
    assert again["grant_id"] != app["grant_id"]
    assert check(client, "rsj", topics["person"])["allowed"] is True


def test_grants_expire_by_the_simulated_clock(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    app = apply(client, depts["rsj"], application(topics["person"], ["name"], days=3))
    assert check(client, "rsj", topics["person"])["allowed"] is True
    advance(client, "2d")
    assert check(client, "rsj", topics["person"])["allowed"] is True
    advance(client, "3d")
    got = check(client, "rsj", topics["person"])
    assert (got["allowed"], got["reason"], got["grant_id"]) == (
        False,
        "grant_expired",
        app["grant_id"],
    )
    grant = client.get(f"/api/v1/grants/{app['grant_id']}", headers=depts["rsj"]).json()
    assert grant["status"] == "expired"
    by_status = {
        s: client.get("/api/v1/grants", params={"status": s}, headers=OPERATOR).json()["total"]
        for s in ("active", "expired")
    }
    assert by_status == {"active": 0, "expired": 1}
    # Renewing after expiry opens a fresh grant.
    fresh = apply(client, depts["rsj"], application(topics["person"], ["id_number"], days=400))
    assert fresh["grant_id"] != app["grant_id"]
    assert check(client, "rsj", topics["person"])["items"] == ["id_number"]


def test_grant_not_yet_valid(client: TestClient, depts: Depts, topics: Topics) -> None:
    start = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    apply(client, depts["rsj"], application(topics["person"], ["name"], valid_from=start))
    assert check(client, "rsj", topics["person"])["reason"] == "grant_not_yet_valid"
    advance(client, "11d")
    assert check(client, "rsj", topics["person"])["allowed"] is True


def test_retiring_a_topic_suspends_its_grants(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    granted = apply(client, depts["rsj"], application(topics["person"], ["name", "photo"]))
    assert granted["status"] == "pending_review"
    url = f"/api/v1/catalog/topics/{topics['person']}/retire"
    resp = client.post(url, json={"reason": "由新版人口目录替代"}, headers=depts["gaj"])
    assert resp.status_code == 200, resp.text
    got = check(client, "rsj", topics["person"])
    assert (got["allowed"], got["reason"], got["grant_id"]) == (
        False,
        "topic_retired",
        granted["grant_id"],
    )
    # Consumers without a grant hear the same.
    assert check(client, "swj", topics["person"])["reason"] == "topic_retired"
    grant = client.get(f"/api/v1/grants/{granted['grant_id']}", headers=OPERATOR).json()
    assert grant["status"] == "suspended"
    assert "由新版人口目录替代" in grant["status_reason"]
    # The pending review is closed, and no new application is accepted.
    app = client.get(f"/api/v1/applications/{granted['id']}", headers=OPERATOR).json()
    assert app["status"] == "partially_approved"
    assert outcomes(app)["photo"] == "rejected"
    resp = client.post(
        "/api/v1/applications", json=application(topics["person"], ["name"]), headers=depts["swj"]
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "topic_retired"


def test_removing_an_item_from_the_catalog_narrows_grants(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    held = apply(client, depts["rsj"], application(topics["person"], ["id_number", "name"]))
    only_name = apply(client, depts["swj"], application(topics["person"], ["name"]))
    items = [i for i in PERSON["items"] if i["field"] != "name"]
    resp = client.patch(
        f"/api/v1/catalog/topics/{topics['person']}",
        json={"items": items, "reason": "姓名改由姓名信息目录提供"},
        headers=depts["gaj"],
    )
    assert resp.status_code == 200, resp.text
    grant = client.get(f"/api/v1/grants/{held['grant_id']}", headers=OPERATOR).json()
    assert grant["items"] == ["id_number"]
    assert grant["status"] == "active"
    assert check(client, "rsj", topics["person"], ["name"])["reason"] == "item_not_granted"
    assert check(client, "rsj", topics["person"])["items"] == ["id_number"]
    # A grant left with nothing is revoked.
    emptied = client.get(f"/api/v1/grants/{only_name['grant_id']}", headers=OPERATOR).json()
    assert emptied["status"] == "revoked"
    assert check(client, "swj", topics["person"])["reason"] == "grant_revoked"


def test_grant_listing_filters_and_visibility(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    apply(client, depts["rsj"], application(topics["person"], ["name"]))
    apply(client, depts["swj"], application(topics["person"], ["id_number"]))
    assert client.get("/api/v1/grants", headers=depts["rsj"]).json()["total"] == 1
    assert client.get("/api/v1/grants", headers=depts["gaj"]).json()["total"] == 2  # provider
    assert client.get("/api/v1/grants", headers=depts["mzj"]).json()["total"] == 0
    listed = client.get("/api/v1/grants", params={"consumer": "swj"}, headers=OPERATOR).json()
    assert [g["items"] for g in listed["items"]] == [["id_number"]]
    resp = client.get("/api/v1/grants", params={"topic": "bad"}, headers=OPERATOR)
    assert resp.status_code == 422
    one = listed["items"][0]["id"]
    assert client.get(f"/api/v1/grants/{one}", headers=depts["rsj"]).status_code == 403


def test_a_new_application_says_on_its_history_which_terms_of_the_grant_it_changed(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    """One grant per consumer and topic takes the latest decision's terms: a subscription
    that becomes an interface grant, or a quota that falls, is said on the application
    that changed it, from what to what; an application that changes nothing says nothing."""

    def terms_events(app: dict[str, Any]) -> list[dict[str, Any]]:
        got = client.get(f"/api/v1/applications/{app['id']}", headers=depts["rsj"]).json()
        return [e for e in got["events"] if e["kind"] == "grant_terms_changed"]

    first = apply(
        client,
        depts["rsj"],
        application(topics["person"], ["id_number"], delivery="subscription", quota=500),
    )
    assert terms_events(first) == []
    second = apply(client, depts["rsj"], application(topics["person"], ["name"], quota=100))
    [event] = terms_events(second)
    assert event["actor"] == "platform"
    assert event["detail"]["grant_id"] == first["grant_id"] == second["grant_id"]
    assert event["detail"]["changes"] == {
        "delivery": {"from": "subscription", "to": "interface"},
        "daily_quota": {"from": 500, "to": 100},
    }
    grant = client.get(f"/api/v1/grants/{second['grant_id']}", headers=depts["rsj"]).json()
    assert grant["delivery"] == "interface"
    assert sorted(grant["items"]) == ["id_number", "name"]
    third = apply(client, depts["rsj"], application(topics["person"], ["name"], quota=100))
    assert terms_events(third) == []
