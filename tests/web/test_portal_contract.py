"""What the portal assumes about the API, walked with the bodies its forms send.

The page tells the operator from a department by ``/whoami`` (no 404 on any switch of
identity); reads ``error.code``, ``error.message`` and ``error.request_id``
from every failure; gets a dispute's id from the application list; and lists the overdue
reviews and expired grants after the clock moves. If any of that changes, the page breaks
silently, so it is pinned here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from tests.authz.conftest import depts, today, topics  # noqa: F401  (fixtures)
from tests.conftest import OPERATOR


def _apply_form(topic: str, items: list[str], until: dt.date) -> dict[str, Any]:
    """The body ``submitApply`` builds from the apply form's defaults."""
    return {
        "topic": topic,
        "items": items,
        "purpose": {
            "scope": "data_verification",
            "text": "居民家庭经济状况核对（最低生活保障审核）",
        },
        "legal_function": "《社会救助暂行办法》第十一条",
        "valid_until": until.isoformat(),
        "daily_quota": 1000,
        "delivery": "interface",
    }


def _error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err: dict[str, Any] = resp.json()["error"]
    assert err["code"] == code
    assert err["message"]
    assert err["request_id"]
    return err


def test_whoami_names_the_operator_and_departments(
    client: TestClient,
    depts: dict[str, dict[str, str]],  # noqa: F811
) -> None:
    me = client.get("/api/v1/whoami", headers=OPERATOR)
    assert me.status_code == 200, me.text
    assert me.json() == {"code": "operator", "name": "平台运营方", "operator": True}
    gaj = client.get("/api/v1/whoami", headers=depts["gaj"]).json()
    assert gaj == {"code": "gaj", "name": "广州市公安局", "operator": False}
    _error(client.get("/api/v1/whoami", headers={"Authorization": "x"}), 401, "bad_key")


def test_the_page_says_whether_this_is_a_demo(client: TestClient) -> None:
    assert '<meta name="exchange-demo" content="true">' in client.get("/").text


def test_a_reason_for_leaving_items_out_is_not_the_reason_of_the_granted_ones(
    client: TestClient,
    depts: dict[str, dict[str, str]],  # noqa: F811
    topics: dict[str, str],  # noqa: F811
) -> None:
    until = today(client) + dt.timedelta(days=30)
    body = _apply_form(topics["marriage"], ["id_number", "status", "registered_on"], until)
    app = client.post("/api/v1/applications", json=body, headers=depts["rsj"]).json()
    assert {d["reason_code"] for d in app["decisions"]} == {"conditional"}
    done = client.post(
        f"/api/v1/applications/{app['id']}/approve",
        json={"items": ["id_number", "status"], "reason": "登记日期与核对无关"},
        headers=depts["mzj"],
    ).json()
    by_field = {d["field"]: d for d in done["decisions"]}
    assert by_field["registered_on"]["reason_code"] == "left_out"
    assert by_field["registered_on"]["reason"] == "登记日期与核对无关"
    for granted in ("id_number", "status"):
        assert by_field[granted]["outcome"] == "granted"
        assert by_field[granted]["reason_code"] == "approved"
        assert by_field[granted]["reason"] is None


def test_reason_codes_of_the_automatic_outcomes(
    client: TestClient,
    depts: dict[str, dict[str, str]],  # noqa: F811
    topics: dict[str, str],  # noqa: F811
) -> None:
    until = today(client) + dt.timedelta(days=30)
    body = _apply_form(topics["person"], ["name", "photo", "criminal_record"], until)
    app = client.post("/api/v1/applications", json=body, headers=depts["rsj"]).json()
    codes = {d["field"]: (d["reason_code"], d["reason"]) for d in app["decisions"]}
    # Unconditional items carry no text at all: the code says it, in the reader's language.
    assert codes["name"] == ("unconditional", None)
    assert codes["photo"][0] == "conditional"
    assert codes["criminal_record"] == ("not_shared", "《中华人民共和国居民身份证法》第十九条")
    granted = next(e for e in app["events"] if e["kind"] == "granted")
    assert granted["reason"] is None


def test_demo_flow_as_the_portal_drives_it(
    client: TestClient,
    depts: dict[str, dict[str, str]],  # noqa: F811
    topics: dict[str, str],  # noqa: F811
) -> None:
    gaj, rsj = depts["gaj"], depts["rsj"]
    until = today(client) + dt.timedelta(days=365)

    # Apply for every item of the mixed topic: granted / pending / refused, item by item.
    body = _apply_form(topics["person"], ["id_number", "name", "photo", "criminal_record"], until)
    app = client.post("/api/v1/applications", json=body, headers=rsj).json()
    outcomes = {d["field"]: d["outcome"] for d in app["decisions"]}
    assert outcomes == {
        "id_number": "granted",
        "name": "granted",
        "photo": "pending",
        "criminal_record": "refused",
    }
    assert app["review_deadline"]
    assert app["grant_id"]

    # The provider's inbox (review tab) lists it with its deadline.
    inbox = client.get(
        "/api/v1/applications", params={"role": "provider", "status": "pending_review"}, headers=gaj
    ).json()
    assert [a["id"] for a in inbox["items"]] == [app["id"]]

    # Rejecting without a reason fails in the error model the page shows.
    _error(
        client.post(f"/api/v1/applications/{app['id']}/reject", json={"reason": ""}, headers=gaj),
        422,
        "reason_required",
    )
    rejected = client.post(
        f"/api/v1/applications/{app['id']}/reject", json={"reason": "无需相片"}, headers=gaj
    )
    assert rejected.status_code == 200, rejected.text

    # The consumer disputes; the dispute id comes back through the application list.
    dispute = client.post(
        f"/api/v1/applications/{app['id']}/dispute",
        json={"reason": "确需相片", "items": ["photo"]},
        headers=rsj,
    )
    assert dispute.status_code == 201, dispute.text
    listed = client.get("/api/v1/applications", params={"role": "consumer"}, headers=rsj).json()
    assert listed["items"][0]["dispute_id"] == dispute.json()["id"]
    did = dispute.json()["id"]
    for who in (rsj, gaj):
        msg = client.post(f"/api/v1/disputes/{did}/messages", json={"body": "协商"}, headers=who)
        assert msg.status_code == 201, msg.text
    decided = client.post(
        f"/api/v1/disputes/{did}/decide",
        json={"decision": "grant", "reason": "准予共享"},
        headers=OPERATOR,
    ).json()
    assert decided["status"] == "decided"
    assert len(decided["messages"]) == 2

    # The grants tab shows the grant; revoking needs a reason and the check then says so.
    grant = client.get(f"/api/v1/grants/{app['grant_id']}", headers=rsj).json()
    assert "photo" in grant["items"]
    check = {"consumer": "rsj", "topic": topics["person"], "records": 1}
    assert client.post("/api/v1/authz/check", json=check, headers=rsj).json()["allowed"]
    revoked = client.post(
        f"/api/v1/grants/{grant['id']}/revoke", json={"reason": "用途终止"}, headers=gaj
    )
    assert revoked.json()["status"] == "revoked"
    assert client.post("/api/v1/authz/check", json=check, headers=rsj).json()["reason"] == (
        "grant_revoked"
    )


def test_clock_tab_shows_overdue_reviews_and_expired_grants(
    client: TestClient,
    depts: dict[str, dict[str, str]],  # noqa: F811
    topics: dict[str, str],  # noqa: F811
) -> None:
    rsj = depts["rsj"]
    soon = today(client) + dt.timedelta(days=3)
    pending = client.post(
        "/api/v1/applications", json=_apply_form(topics["marriage"], ["status"], soon), headers=rsj
    ).json()
    granted = client.post(
        "/api/v1/applications", json=_apply_form(topics["person"], ["name"], soon), headers=rsj
    ).json()
    advanced = client.post("/api/v1/clock/advance", json={"by": "3w"}, headers=OPERATOR)
    assert advanced.status_code == 200, advanced.text
    overdue = client.get(
        "/api/v1/applications",
        params={"role": "provider", "overdue": "true", "limit": 100},
        headers=OPERATOR,
    ).json()
    assert [a["id"] for a in overdue["items"]] == [pending["id"]]
    assert overdue["items"][0]["overdue"] is True
    expired = client.get(
        "/api/v1/grants", params={"status": "expired", "limit": 100}, headers=OPERATOR
    ).json()
    assert [g["id"] for g in expired["items"]] == [granted["grant_id"]]
    # Only the operator moves the clock.
    _error(
        client.post("/api/v1/clock/advance", json={"by": "1d"}, headers=rsj), 403, "operator_only"
    )
