"""A dispute on a forwarded application, in process on both platforms: opened and decided
where the department applied (the province), carried to the city's side of the application
by signed calls (seen there by the provider department and the operator, answered by the
provider into the province's thread), the province's decision reflected in the city's
grant; delivered twice changes nothing; forged and mismatched calls refused. The relay
is done by hand with the platforms' own signatures (as in test_forwarding_api)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from tests.conftest import OPERATOR, auth
from tests.federation.test_forwarding_api import (
    ITEMS,
    OPERATOR_P,
    _apply,
    _as_city,
    _as_province,
    _forward_body,
    _mount,
    _province_key,
    _signed,
    _states,
    city,
    city_ctx,
    province,
    province_ctx,
)

from exchange.context import AppContext
from exchange.federation import disputes
from exchange.security import demo_key

__all__ = ["city", "city_ctx", "province", "province_ctx"]  # the fixtures, re-used

PATH = "/api/v1/federation/applications/disputes"
SWJ = auth(demo_key("exk_operator_test-key", "swj"))


def _pending(ctx: AppContext) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    with ctx.db.sessions() as session:
        found = disputes.pending(session)
    return [b for _, _, b in found if b["events"]], [(r, e) for r, e, _ in found]


def _sent(ctx: AppContext, marks: list[tuple[int, int]]) -> None:
    with ctx.db.session() as session:
        disputes.mark_sent(session, marks)


def _refused_at_the_city(
    city: TestClient, city_ctx: AppContext, province: TestClient, province_ctx: AppContext
) -> tuple[dict[str, Any], int]:
    """A provincial department's application, forwarded, its credit rating rejected by
    the city's tax bureau: (the province's application, the city's application id)."""
    _city_code, mounted = _mount(city, city_ctx, province_ctx)
    app = _apply(province, mounted)
    status, answer, _ = _as_province(
        city, "/api/v1/federation/applications", _forward_body(province_ctx)
    )
    assert status == 200, answer
    city_app = answer["state"]["application_id"]
    states_path = "/api/v1/federation/applications/states"
    assert _as_city(province, states_path, {"states": [answer["state"]]})[0] == 200
    resp = city.post(
        f"/api/v1/applications/{city_app}/reject", json={"reason": "信用等级不予提供"}, headers=SWJ
    )
    assert resp.status_code == 200, resp.text
    assert _as_city(province, states_path, {"states": _states(city_ctx)})[1] == {
        "applied": {"decided": 1}
    }
    app = province.get(f"/api/v1/applications/{app['id']}", headers=OPERATOR_P).json()
    assert app["status"] == "partially_approved"
    return app, city_app


def test_a_dispute_at_the_province_is_seen_answered_and_reflected_at_the_city(
    city: TestClient, city_ctx: AppContext, province: TestClient, province_ctx: AppContext
) -> None:
    app, city_app = _refused_at_the_city(city, city_ctx, province, province_ctx)
    consumer = _province_key("gd-scjgj")
    resp = province.post(
        f"/api/v1/applications/{app['id']}/dispute",
        json={"reason": "监管需要纳税信用等级"},
        headers=consumer,
    )
    assert resp.status_code == 201, resp.text
    p_dispute = resp.json()["id"]
    resp = province.post(
        f"/api/v1/disputes/{p_dispute}/messages",
        json={"body": "请提供B级以下名单"},
        headers=consumer,
    )
    assert resp.status_code == 201, resp.text

    # Carried to the city: a dispute of the city's application, in the bureau's view.
    bodies, marks = _pending(province_ctx)
    assert [[e["kind"] for e in b["events"]] for b in bodies] == [
        ["dispute_opened", "dispute_message"]
    ]
    status, answer, headers = _as_province(city, PATH, {"disputes": bodies})
    assert status == 200, answer
    assert headers["X-Exchange-Signature"]
    assert answer == {"applied": {"opened": 1, "message": 1}}
    _sent(province_ctx, marks)
    assert _pending(province_ctx)[0] == []
    # Delivered again (an answer lost on the way): nothing applied twice.
    assert _as_province(city, PATH, {"disputes": bodies})[1] == {"applied": {"unchanged": 2}}

    mirrored = city.get(f"/api/v1/applications/{city_app}", headers=SWJ).json()
    assert mirrored["status"] == "disputed"
    c_dispute = mirrored["dispute_id"]
    for who in (SWJ, OPERATOR):
        seen = city.get(f"/api/v1/disputes/{c_dispute}", headers=who).json()
        assert seen["items"] == ["credit_rating"]
        assert seen["reason"] == "监管需要纳税信用等级"
        assert [(m["author"], m["body"]) for m in seen["messages"]] == [
            ("gdzsj:gd-scjgj", "请提供B级以下名单")
        ]
    # Opened and decided only at the province: the city's operator cannot decide it.
    refused = city.post(
        f"/api/v1/disputes/{c_dispute}/decide",
        json={"decision": "grant", "reason": "同意"},
        headers=OPERATOR,
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "disputed_at_peer"

    # The bureau answers at the city; its message reaches the province's thread.
    resp = city.post(
        f"/api/v1/disputes/{c_dispute}/messages", json={"body": "可提供，限监管用途"}, headers=SWJ
    )
    assert resp.status_code == 201, resp.text
    bodies, marks = _pending(city_ctx)
    assert [[e["kind"] for e in b["events"]] for b in bodies] == [["dispute_message"]]
    status, answer, _ = _as_city(province, PATH, {"disputes": bodies})
    assert answer == {"applied": {"message": 1}}
    _sent(city_ctx, marks)
    thread = province.get(f"/api/v1/disputes/{p_dispute}", headers=OPERATOR_P).json()
    assert [m["author"] for m in thread["messages"]] == ["gd-scjgj", "gz:swj"]
    # What the city mirrored is not sent back to it.
    assert _pending(province_ctx)[0] == []

    # The province's operator decides; the city's side follows, grant included.
    resp = province.post(
        f"/api/v1/disputes/{p_dispute}/decide",
        json={"decision": "grant", "reason": "协调同意提供"},
        headers=OPERATOR_P,
    )
    assert resp.status_code == 200, resp.text
    bodies, marks = _pending(province_ctx)
    assert _as_province(city, PATH, {"disputes": bodies})[1] == {"applied": {"decided": 1}}
    _sent(province_ctx, marks)
    decided = city.get(f"/api/v1/disputes/{c_dispute}", headers=SWJ).json()
    assert (decided["status"], decided["decision"]) == ("decided", "grant")
    assert decided["decided_items"] == ["credit_rating"]
    after = city.get(f"/api/v1/applications/{city_app}", headers=SWJ).json()
    assert after["status"] == "approved"
    grant = city.get(f"/api/v1/grants/{after['grant_id']}", headers=OPERATOR).json()
    assert (grant["consumer"], grant["status"]) == ("gdzsj", "active")
    assert "credit_rating" in grant["items"]
    assert sorted(grant["items"]) == sorted(ITEMS)
    kinds = [e["kind"] for e in after["events"]]
    assert kinds[-4:] == ["dispute_opened", "dispute_message", "dispute_message", "dispute_decided"]

    # Each carrying call is in both audit trails under the forward's correlation id.
    correlation = bodies[0]["correlation_id"]
    for client, key in ((city, OPERATOR), (province, OPERATOR_P)):
        entries = client.get("/api/v1/audit/entries", params={"limit": 1000}, headers=key).json()
        cases = [
            e["case"]
            for e in entries["entries"]
            if e.get("correlation_id") == correlation and "dispute" in (e["case"] or "")
        ]
        assert cases, client


def test_forged_mismatched_and_malformed_dispute_calls_are_refused(
    city: TestClient, city_ctx: AppContext, province: TestClient, province_ctx: AppContext
) -> None:
    app, city_app = _refused_at_the_city(city, city_ctx, province, province_ctx)
    resp = province.post(
        f"/api/v1/applications/{app['id']}/dispute",
        json={"reason": "需要"},
        headers=_province_key("gd-scjgj"),
    )
    assert resp.status_code == 201, resp.text
    bodies, _ = _pending(province_ctx)
    # Signed with another credential: refused before anything is read, and audited.
    forged = _signed(city, "exps_gz_not-the-credential", "gz", PATH, {"disputes": bodies})
    assert forged[0] == 401
    assert forged[1]["error"]["code"].startswith("client.signature")
    # Naming another application than the forward's: refused, nothing applied.
    wrong = [{**bodies[0], "peer_application_id": city_app + 1000}]
    assert _as_province(city, PATH, {"disputes": wrong})[1] == {"applied": {"forward_mismatch": 1}}
    unknown = [{**bodies[0], "correlation_id": "nope"}]
    assert _as_province(city, PATH, {"disputes": unknown})[1] == {
        "applied": {"forward_not_found": 1}
    }
    status, answer, _ = _as_province(city, PATH, {"x": 1})
    assert (status, answer["error"]["code"]) == (422, "client.bad_input")
    mirrored = city.get(f"/api/v1/applications/{city_app}", headers=SWJ).json()
    assert mirrored["dispute_id"] is None
    # The city's side is not disputed by the province's unit directly either.
    resp = city.post(
        f"/api/v1/applications/{city_app}/dispute",
        json={"reason": "x"},
        headers=auth(demo_key("exk_operator_test-key", "gdzsj")),
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "disputed_at_peer"
    audit = city.get("/api/v1/audit/entries", params={"limit": 1000}, headers=OPERATOR).json()
    assert any(
        e["kind"] == "federation" and str(e["outcome"]).startswith("client.signature")
        for e in audit["entries"]
    )
