"""Applications: each sharing type, per-item mixes, review with narrowing, rejection,
deadlines and overdue, who may see what, and bad input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.authz.conftest import (
    LEGAL_BASIS,
    advance,
    application,
    apply,
    check,
    outcomes,
    today,
)
from tests.conftest import OPERATOR, make_department

from exchange.authz.calendar import WorkingCalendar
from exchange.config import Settings
from exchange.context import AppContext

Depts = dict[str, dict[str, str]]
Topics = dict[str, str]


def test_unconditional_items_are_granted_at_once(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    app = apply(client, depts["rsj"], application(topics["person"], ["id_number", "name"]))
    assert app["status"] == "approved"
    assert outcomes(app) == {"id_number": "granted", "name": "granted"}
    assert app["review_deadline"] is None
    assert app["grant_id"] is not None
    kinds = [e["kind"] for e in app["events"]]
    assert kinds == ["submitted", "granted"]
    assert app["events"][1]["actor"] == "platform"
    got = check(client, "rsj", topics["person"], ["id_number"])
    assert got == {
        "allowed": True,
        "reason": "granted",
        "grant_id": app["grant_id"],
        "items": ["id_number"],
        "remaining_quota": None,
    }
    assert check(client, "rsj", topics["person"])["items"] == ["id_number", "name"]
    # Another consumer holds nothing.
    assert check(client, "swj", topics["person"])["reason"] == "no_grant"


@pytest.mark.parametrize(("kind", "name"), [("financial", "广州银行"), ("utility", "广州市自来水")])
def test_unconditional_items_are_for_government_departments_only(
    client: TestClient, depts: Depts, topics: Topics, kind: str, name: str
) -> None:
    """无条件共享: "any government department may use it". A bank or a utility is a member
    unit, not a department: its application for unconditional items waits for the
    provider's review, as a conditional one does."""
    headers = make_department(client, "unit", f"{name}有限公司", kind=kind)
    app = apply(client, headers, application(topics["person"], ["id_number", "name"]))
    assert app["status"] == "pending_review"
    assert app["grant_id"] is None
    assert {d["reason_code"] for d in app["decisions"]} == {"not_government"}
    assert app["review_deadline"] is not None
    assert check(client, "unit", topics["person"])["reason"] == "no_grant"
    resp = client.post(f"/api/v1/applications/{app['id']}/approve", json={}, headers=depts["gaj"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "approved"
    assert check(client, "unit", topics["person"])["items"] == ["id_number", "name"]
    # Every government kind is still granted at once.
    for n, gov in enumerate(("district", "vertical", "institution", "provincial")):
        gov_headers = make_department(client, f"gov{n}", f"政务单位{n}", kind=gov)
        granted = apply(client, gov_headers, application(topics["person"], ["id_number"]))
        assert granted["status"] == "approved", gov


def test_not_shared_items_are_refused_citing_the_legal_basis(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    app = apply(client, depts["rsj"], application(topics["secret"], ["case_no"]))
    assert app["status"] == "returned"
    assert app["decisions"][0]["outcome"] == "refused"
    assert app["decisions"][0]["reason"] == "《中华人民共和国刑事诉讼法》"
    assert app["grant_id"] is None
    assert check(client, "rsj", topics["secret"]) == {
        "allowed": False,
        "reason": "no_grant",
        "grant_id": None,
        "items": [],
        "remaining_quota": None,
    }


def test_mixed_items_grant_refuse_and_queue_item_by_item(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    body = application(topics["person"], ["id_number", "photo", "criminal_record"])
    app = apply(client, depts["rsj"], body)
    assert app["status"] == "pending_review"
    assert outcomes(app) == {
        "id_number": "granted",
        "photo": "pending",
        "criminal_record": "refused",
    }
    refused = next(d for d in app["decisions"] if d["field"] == "criminal_record")
    assert refused["reason"] == LEGAL_BASIS
    # The unconditional part is usable while the conditional part waits.
    assert check(client, "rsj", topics["person"], ["id_number"])["allowed"] is True
    denied = check(client, "rsj", topics["person"], ["id_number", "photo"])
    assert denied["allowed"] is False
    assert denied["reason"] == "item_not_granted"
    assert denied["grant_id"] == app["grant_id"]
    # The provider sees it in its inbox; the consumer in its own list.
    inbox = client.get(
        "/api/v1/applications", params={"role": "provider"}, headers=depts["gaj"]
    ).json()
    assert [a["id"] for a in inbox["items"]] == [app["id"]]
    mine = client.get("/api/v1/applications", headers=depts["rsj"]).json()
    assert mine["total"] == 1
    assert client.get("/api/v1/applications", headers=depts["gaj"]).json()["total"] == 0
    # Provider approves: the grant now holds both granted items.
    resp = client.post(f"/api/v1/applications/{app['id']}/approve", json={}, headers=depts["gaj"])
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert done["status"] == "partially_approved"  # criminal_record stays refused
    assert outcomes(done)["photo"] == "granted"
    assert done["reviewed_by"] == "gaj"
    allowed = check(client, "rsj", topics["person"], ["id_number", "photo"])
    assert allowed["allowed"] is True
    assert allowed["grant_id"] == app["grant_id"]


def test_conditional_application_waits_for_review(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    app = apply(client, depts["rsj"], application(topics["marriage"], ["status"]))
    assert app["status"] == "pending_review"
    assert app["grant_id"] is None
    assert app["decisions"][0]["reason"] == "仅限办理婚姻相关业务的部门"
    assert check(client, "rsj", topics["marriage"])["reason"] == "no_grant"
    resp = client.post(f"/api/v1/applications/{app['id']}/approve", json={}, headers=depts["mzj"])
    assert resp.json()["status"] == "approved"
    assert check(client, "rsj", topics["marriage"])["allowed"] is True
    # Approving twice is a conflict, not a second grant.
    again = client.post(f"/api/v1/applications/{app['id']}/approve", json={}, headers=depts["mzj"])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "not_pending"


def test_approve_with_fewer_items_shorter_validity_lower_quota(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    items = ["id_number", "status", "registered_on"]
    app = apply(client, depts["rsj"], application(topics["marriage"], items, quota=1000))
    url = f"/api/v1/applications/{app['id']}/approve"
    h = depts["mzj"]
    requested_until = dt.date.fromisoformat(app["valid_until"])
    # Leaving items out is a partial refusal: it needs a reason.
    resp = client.post(url, json={"items": ["id_number", "status"]}, headers=h)
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "reason_required"
    later = (requested_until + dt.timedelta(days=1)).isoformat()
    resp = client.post(url, json={"valid_until": later}, headers=h)
    assert resp.json()["error"]["code"] == "validity_exceeds_request"
    resp = client.post(url, json={"daily_quota": 5000}, headers=h)
    assert resp.json()["error"]["code"] == "quota_exceeds_request"
    resp = client.post(url, json={"items": ["not_an_item"], "reason": "x"}, headers=h)
    assert resp.json()["error"]["code"] == "item_not_pending"
    shorter = (requested_until - dt.timedelta(days=100)).isoformat()
    resp = client.post(
        url,
        json={
            "items": ["id_number", "status"],
            "valid_until": shorter,
            "daily_quota": 10,
            "reason": "登记日期不属于核验所需",
        },
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert done["status"] == "partially_approved"
    assert outcomes(done) == {
        "id_number": "granted",
        "status": "granted",
        "registered_on": "rejected",
    }
    assert done["decisions"][2]["reason"] == "登记日期不属于核验所需"
    grant = client.get(f"/api/v1/grants/{done['grant_id']}", headers=depts["rsj"]).json()
    assert grant["items"] == ["id_number", "status"]
    assert grant["valid_until"] == shorter
    assert grant["daily_quota"] == 10
    assert grant["status"] == "active"
    assert grant["purpose"]["scope"] == "data_verification"
    got = check(client, "rsj", topics["marriage"], ["status"], records=4)
    assert got["remaining_quota"] == 6
    assert check(client, "rsj", topics["marriage"], ["registered_on"])["reason"] == (
        "item_not_granted"
    )
    assert check(client, "rsj", topics["marriage"], records=11)["reason"] == "quota_exceeded"
    approved = next(e for e in done["events"] if e["kind"] == "approved")
    assert approved["actor"] == "mzj"
    assert approved["detail"]["rejected"] == ["registered_on"]


def test_reject_requires_a_reason(client: TestClient, depts: Depts, topics: Topics) -> None:
    app = apply(client, depts["rsj"], application(topics["marriage"], ["status"]))
    url = f"/api/v1/applications/{app['id']}/reject"
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        resp = client.post(url, json=body, headers=depts["mzj"])
        assert resp.status_code == 422
        assert resp.json()["error"]["code"] == "reason_required"
    resp = client.post(url, json={"reason": "申请事项与婚姻登记业务无关"}, headers=depts["mzj"])
    assert resp.status_code == 200
    done = resp.json()
    assert done["status"] == "returned"
    assert done["review_reason"] == "申请事项与婚姻登记业务无关"
    assert done["decisions"][0] == {
        "field": "status",
        "sharing_type": "conditional",
        "outcome": "rejected",
        "reason_code": "rejected",
        "reason": "申请事项与婚姻登记业务无关",
    }
    assert [e["kind"] for e in done["events"]] == ["submitted", "review_requested", "rejected"]
    assert check(client, "rsj", topics["marriage"])["reason"] == "no_grant"


def test_review_deadline_counts_working_days_and_flags_overdue(
    client: TestClient, depts: Depts, topics: Topics, settings: Settings
) -> None:
    app = apply(client, depts["rsj"], application(topics["marriage"], ["status"]))
    submitted = dt.datetime.fromisoformat(app["submitted_at"])
    deadline = dt.datetime.fromisoformat(app["review_deadline"])
    assert deadline == WorkingCalendar(uncovered=settings.calendar_uncovered).deadline(
        submitted, 10
    )
    # Ten working days are at least two calendar weeks.
    assert deadline - submitted >= dt.timedelta(days=13)
    params = {"overdue": "true"}
    assert client.get("/api/v1/applications", params=params, headers=OPERATOR).json()["total"] == 0
    # Move to one hour before the deadline: still on time.
    clock = client.get("/api/v1/clock", headers=OPERATOR).json()
    now = dt.datetime.fromisoformat(clock["now"])
    before = int((deadline - now).total_seconds() / 60) - 60
    advance(client, f"{before}m")
    assert (
        client.get(f"/api/v1/applications/{app['id']}", headers=OPERATOR).json()["overdue"] is False
    )
    advance(client, "2h")
    late = client.get("/api/v1/applications", params=params, headers=OPERATOR).json()
    assert [a["id"] for a in late["items"]] == [app["id"]]
    assert late["items"][0]["overdue"] is True
    inbox = client.get(
        "/api/v1/applications", params={"role": "provider", "overdue": "true"}, headers=depts["mzj"]
    ).json()
    assert inbox["total"] == 1
    # A late answer is still an answer, and clears the flag.
    client.post(f"/api/v1/applications/{app['id']}/approve", json={}, headers=depts["mzj"])
    assert client.get("/api/v1/applications", params=params, headers=OPERATOR).json()["total"] == 0


def test_departments_see_and_act_only_on_their_own(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    app = apply(client, depts["rsj"], application(topics["marriage"], ["status"]))
    url = f"/api/v1/applications/{app['id']}"
    resp = client.get(url, headers=depts["swj"])
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "not_your_application"
    assert client.get(url, headers=depts["mzj"]).status_code == 200
    assert client.get(url, headers=OPERATOR).status_code == 200
    # Neither the consumer nor a stranger may review; only the provider (or operator).
    for who in ("rsj", "swj", "gaj"):
        assert client.post(url + "/approve", json={}, headers=depts[who]).status_code == 403
        resp = client.post(url + "/reject", json={"reason": "x"}, headers=depts[who])
        assert resp.status_code == 403
    # A department cannot apply on another's behalf, nor check another's access.
    body = application(topics["person"], ["name"], consumer="swj")
    assert client.post("/api/v1/applications", json=body, headers=depts["rsj"]).status_code == 403
    resp = client.post(
        "/api/v1/authz/check",
        json={"consumer": "rsj", "topic": topics["person"]},
        headers=depts["swj"],
    )
    assert resp.status_code == 403
    own = client.post(
        "/api/v1/authz/check",
        json={"consumer": "rsj", "topic": topics["person"]},
        headers=depts["rsj"],
    )
    assert own.status_code == 200
    # Listings never leak another department's applications.
    assert client.get("/api/v1/applications", headers=depts["swj"]).json()["total"] == 0
    assert client.get("/api/v1/applications", headers=OPERATOR).json()["total"] == 1
    assert client.get(url, headers={}).status_code == 401


def test_operator_applies_on_behalf_of_a_department(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    body = application(topics["person"], ["name"])
    resp = client.post("/api/v1/applications", json=body, headers=OPERATOR)
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "consumer_required"
    resp = client.post("/api/v1/applications", json=body | {"consumer": "nobody"}, headers=OPERATOR)
    assert resp.json()["error"]["code"] == "unknown_consumer"
    app = apply(client, OPERATOR, body | {"consumer": "swj"})
    assert app["consumer"] == "swj"
    assert check(client, "swj", topics["person"])["allowed"] is True


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"items": ["no_such_item"]}, 422, "unknown_item"),
        ({"items": []}, 422, "validation_failed"),
        ({"items": ["name", "name"]}, 422, "validation_failed"),
        ({"topic": "not-a-code"}, 422, "validation_failed"),
        ({"topic": "101009009/000009"}, 404, "topic_not_found"),
        ({"purpose": {"scope": "curiosity", "text": "x"}}, 422, "validation_failed"),
        ({"purpose": {"scope": "work_reference", "text": " "}}, 422, "validation_failed"),
        # the topic's catalog entry offers data_verification and work_reference only
        ({"purpose": {"scope": "administrative_basis", "text": "x"}}, 422, "purpose_not_offered"),
        ({"legal_function": ""}, 422, "validation_failed"),
        ({"valid_until": "2001-01-01"}, 422, "invalid_validity"),
        ({"valid_from": "2001-01-01"}, 422, "invalid_validity"),
        ({"valid_until": "2999-01-01"}, 422, "validity_too_long"),
        ({"valid_until": "soon"}, 422, "validation_failed"),
        ({"daily_quota": 0}, 422, "validation_failed"),
        ({"delivery": "carrier_pigeon"}, 422, "validation_failed"),
        ({"unexpected": 1}, 422, "validation_failed"),
    ],
)
def test_bad_applications_are_clear_4xx(
    client: TestClient,
    depts: Depts,
    topics: Topics,
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    body = application(topics["person"], ["name"]) | change
    resp = client.post("/api/v1/applications", json=body, headers=depts["rsj"])
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code


def test_a_purpose_outside_the_offered_uses_is_refused_unless_nothing_is_offered(
    client: TestClient, depts: Depts, topics: Topics
) -> None:
    body = application(topics["person"], ["name"])
    body["purpose"] = {"scope": "business_collaboration", "text": "并联审批"}
    resp = client.post("/api/v1/applications", json=body, headers=depts["rsj"])
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "purpose_not_offered"
    assert "data_verification, work_reference" in error["message"]
    # A not-shared topic offers no use: the application stands, its items are refused on
    # their legal basis, and a dispute is the way on, whatever the purpose declared.
    secret = application(topics["secret"], ["case_no"])
    secret["purpose"] = {"scope": "business_collaboration", "text": "并联审批"}
    app = apply(client, depts["rsj"], secret)
    assert [(d["field"], d["outcome"]) for d in app["decisions"]] == [("case_no", "refused")]


def test_own_topic_and_missing_ids(client: TestClient, depts: Depts, topics: Topics) -> None:
    resp = client.post(
        "/api/v1/applications", json=application(topics["person"], ["name"]), headers=depts["gaj"]
    )
    assert resp.json()["error"]["code"] == "own_topic"
    assert client.get("/api/v1/applications/999", headers=OPERATOR).status_code == 404
    assert client.get("/api/v1/applications/0", headers=OPERATOR).status_code == 422
    assert client.get("/api/v1/grants/999", headers=OPERATOR).status_code == 404
    assert client.get("/api/v1/disputes/999", headers=OPERATOR).status_code == 404
    resp = client.get("/api/v1/applications", params={"status": "lost"}, headers=OPERATOR)
    assert resp.status_code == 422


def test_a_review_deadline_no_calendar_covers_is_refused_not_guessed(
    client: TestClient, depts: Depts, topics: Topics, ctx: AppContext
) -> None:
    calendar = WorkingCalendar(uncovered="refuse")  # what a deployment that never estimates sets
    ctx.calendar = calendar
    # Ten working days from 28 December run into the first year the package lacks.
    edge = dt.date(calendar.years.stop - 1, 12, 28)
    days = (edge - today(client)).days
    if days > 0:
        advance(client, f"{days}d")
    before = client.get("/api/v1/applications", headers=OPERATOR).json()["total"]

    resp = client.post(
        "/api/v1/applications",
        json=application(topics["marriage"], ["status"]),
        headers=depts["rsj"],
    )

    assert resp.status_code == 503, resp.text
    error = resp.json()["error"]
    assert error["code"] == "calendar_not_covered"
    assert f"no holiday schedule covers {calendar.years.stop}" in error["message"]
    assert "EXCHANGE_HOLIDAYS" in error["message"]
    assert client.get("/api/v1/applications", headers=OPERATOR).json()["total"] == before
    # Wholly unconditional items need no review, so no deadline: still granted at once.
    granted = client.post(
        "/api/v1/applications",
        json=application(topics["person"], ["name"]),
        headers=depts["rsj"],
    )
    assert granted.status_code == 201, granted.text
