"""The licence API in-process, on SQLite and PostgreSQL: issuing, revoking, using under a
grant, the status list and verification, with every call audited."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import OPERATOR, assert_audit_unavailable
from tests.licences.conftest import (
    FIRM_CODE,
    PERSON_ID,
    grant,
    issue,
    key_of,
    marriage,
    topic_code,
)

from exchange.audit.models import AuditEntry
from exchange.context import AppContext
from exchange.licences.verifier import LicenceVerifier

ALL_ITEMS = [
    "licence_number",
    "licence_type",
    "holder_name",
    "holder_credit_code",
    "issuing_authority",
    "issued_on",
    "valid_until",
    "status",
]


def _audit(ctx: AppContext, kind: str) -> list[AuditEntry]:
    assert ctx.audit is not None
    assert ctx.audit.flush()
    with ctx.db.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.kind == kind)))


def _verifier(client: TestClient) -> LicenceVerifier:
    pem = client.get("/api/v1/licences/public-key")
    assert pem.status_code == 200
    verifier = LicenceVerifier.from_pem(pem.text)
    assert pem.headers["X-Licence-Key-Id"] in verifier.keys
    verifier.use_status(client.get("/api/v1/licences/status-list").json())
    return verifier


def test_the_type_catalog_and_counts_are_seeded(seeded: TestClient) -> None:
    page = seeded.get("/api/v1/licences/types", params={"limit": 500}, headers=key_of("gaj"))
    assert page.status_code == 200
    assert page.json()["total"] == 507
    jhz = seeded.get("/api/v1/licences/types/JHZ", headers=key_of("gaj")).json()
    assert jhz["issuer"] == "mzj"
    assert jhz["holder_kind"] == "person"
    assert {i["field"] for i in jhz["items"]} >= {"spouse_name", "registered_on"}
    offline = seeded.get("/api/v1/licences/types", params={"online": False}, headers=key_of("gaj"))
    assert offline.json()["total"] == 85
    stats = seeded.get("/api/v1/licences/stats", headers=key_of("gaj")).json()
    assert (stats["types"], stats["online"], stats["issuers"]) == (507, 422, 34)
    assert stats["starting"] == 17_760_000
    assert stats["issued"] == 0
    assert seeded.get("/api/v1/licences/types").status_code == 401


def test_the_issuer_issues_a_signed_licence_that_verifies_offline(
    seeded: TestClient, ctx: AppContext
) -> None:
    lic = issue(seeded)
    assert lic["number"].startswith("JHZ")
    assert lic["status"] == "valid"
    assert lic["valid_until"] is None
    assert lic["issued_on"] == ctx.clock.today().isoformat()
    result = _verifier(seeded).verify(lic["number"], lic["code"], content=lic["content"])
    assert result.ok, result
    assert result.claims is not None
    assert result.claims.holder_id == PERSON_ID
    # Counted beside the profile's starting state.
    stats = seeded.get("/api/v1/licences/stats", headers=key_of("mzj")).json()
    assert stats["issued"] == 1
    assert stats["total"] == 17_760_001
    entries = _audit(ctx, "licence.issue")
    assert [(e.consumer, e.case, e.outcome, e.status) for e in entries] == [
        ("mzj", lic["number"], "ok", 201)
    ]
    # The issuer reads what it issued; another department does not.
    assert seeded.get(f"/api/v1/licences/{lic['number']}", headers=key_of("mzj")).status_code == 200
    other = seeded.get(f"/api/v1/licences/{lic['number']}", headers=key_of("gaj"))
    assert other.status_code == 403
    mine = seeded.get("/api/v1/licences", headers=key_of("mzj")).json()
    assert mine["total"] == 1
    assert seeded.get("/api/v1/licences", headers=key_of("gaj")).json()["total"] == 0


def test_only_the_issuer_issues_and_the_input_is_checked(
    seeded: TestClient, ctx: AppContext
) -> None:
    post = seeded.post
    wrong = post("/api/v1/licences", json=marriage(), headers=key_of("gaj"))
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "not_the_issuer"
    assert post("/api/v1/licences", json=marriage(), headers=OPERATOR).status_code == 403
    bad_holder = post("/api/v1/licences", json=marriage(holder=FIRM_CODE), headers=key_of("mzj"))
    assert bad_holder.status_code == 422
    assert bad_holder.json()["error"]["code"] == "bad_holder"
    body = marriage()
    body["content"]["colour"] = "red"
    unknown = post("/api/v1/licences", json=body, headers=key_of("mzj"))
    assert unknown.json()["error"]["code"] == "unknown_item"
    body = marriage()
    del body["content"]["spouse_name"]
    missing = post("/api/v1/licences", json=body, headers=key_of("mzj"))
    assert missing.json()["error"]["code"] == "missing_item"
    body = marriage()
    body["content"]["registered_on"] = "2024-02-30"
    assert post("/api/v1/licences", json=body, headers=key_of("mzj")).status_code == 422
    future = marriage(issued_on=(ctx.clock.today() + dt.timedelta(days=1)).isoformat())
    assert post("/api/v1/licences", json=future, headers=key_of("mzj")).status_code == 422
    nope = post("/api/v1/licences", json=marriage(type_code="NOPE"), headers=key_of("mzj"))
    assert nope.status_code == 404
    # An offline type is not issued through the platform.
    offline = seeded.get(
        "/api/v1/licences/types", params={"online": False, "limit": 1}, headers=key_of("mzj")
    ).json()["items"][0]
    body = {
        "type_code": offline["code"],
        "holder_id": PERSON_ID if offline["holder_kind"] == "person" else FIRM_CODE,
        "holder_name": "某某",
        "content": {"name": "某某", "scope": "范围"},
    }
    refused = post("/api/v1/licences", json=body, headers=key_of(offline["issuer"]))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "licence_type_offline"
    # Every refusal is audited with its code; nothing was issued.
    outcomes = {e.outcome for e in _audit(ctx, "licence.issue")}
    assert {"not_the_issuer", "bad_holder", "unknown_item", "missing_item"} <= outcomes
    assert seeded.get("/api/v1/licences/stats", headers=key_of("mzj")).json()["issued"] == 0


def test_a_retried_issue_returns_the_same_licence(seeded: TestClient) -> None:
    body = marriage(external_ref="MZ-2024-000001")
    first = seeded.post("/api/v1/licences", json=body, headers=key_of("mzj"))
    again = seeded.post("/api/v1/licences", json=body, headers=key_of("mzj"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["number"] == again.json()["number"]
    other = seeded.post(
        "/api/v1/licences",
        json=marriage(holder="11010519491231002X", external_ref="MZ-2024-000001"),
        headers=key_of("mzj"),
    )
    assert other.status_code == 409
    numbers = {issue(seeded)["number"] for _ in range(3)}
    assert len(numbers) == 3


def test_revocation_by_the_issuer_reaches_the_status_list(
    seeded: TestClient, ctx: AppContext
) -> None:
    lic = issue(seeded)
    number = lic["number"]
    url = f"/api/v1/licences/{number}/revoke"
    assert (
        seeded.post(url, json={"reason": "撤销婚姻登记"}, headers=key_of("gaj")).status_code == 403
    )
    done = seeded.post(url, json={"reason": "撤销婚姻登记"}, headers=key_of("mzj"))
    assert done.status_code == 200
    assert done.json()["status"] == "revoked"
    again = seeded.post(url, json={"reason": "再次"}, headers=key_of("mzj"))
    assert again.status_code == 409
    result = _verifier(seeded).verify(number, lic["code"])
    assert result.reason == "revoked"
    assert result.revoked is not None
    assert result.revoked[0] == "撤销婚姻登记"
    online = seeded.post("/api/v1/licences/verify", json={"number": number, "code": lic["code"]})
    assert online.json()["reason"] == "revoked"
    outcomes = [e.outcome for e in _audit(ctx, "licence.revoke")]
    assert outcomes == ["not_the_issuer", "ok", "already_revoked"]


def test_a_licence_expires_on_the_platform_clock(seeded: TestClient, ctx: AppContext) -> None:
    body = {
        "type_code": "JZZ",
        "holder_id": PERSON_ID,
        "holder_name": "张三",
        "content": {"name": "张三", "sex": "男", "birth_date": "1880-01-01", "address": "越秀区"},
    }
    lic = issue(seeded, body, issuer="gaj")
    issued = dt.date.fromisoformat(lic["issued_on"])
    assert (
        lic["valid_until"]
        == (issued.replace(year=issued.year + 1) - dt.timedelta(days=1)).isoformat()
    )
    verify = {"number": lic["number"], "code": lic["code"]}
    assert seeded.post("/api/v1/licences/verify", json=verify).json()["reason"] == "valid"
    ctx.clock.advance(dt.timedelta(days=400))
    assert seeded.post("/api/v1/licences/verify", json=verify).json()["reason"] == "expired"
    # An offline verifier with a fresh status list knows the platform's day too.
    assert _verifier(seeded).verify(lic["number"], lic["code"]).reason == "expired"
    got = seeded.get(f"/api/v1/licences/{lic['number']}", headers=key_of("gaj")).json()
    assert got["status"] == "expired"


def test_holders_licences_are_listed_under_a_grant_and_audited(
    seeded: TestClient, ctx: AppContext
) -> None:
    lic = issue(seeded)
    url = f"/api/v1/licences/holders/{PERSON_ID}"
    denied = seeded.get(url, headers=key_of("gjj"))
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "no_grant"
    topic = topic_code(ctx)
    grant(seeded, "gjj", topic, ["licence_number", "licence_type", "status"])
    listed = seeded.get(url, headers={**key_of("gjj"), "X-Exchange-Case": quote("公积金提取")})
    assert listed.status_code == 200, listed.text
    answer = listed.json()
    assert answer["licences"] == [
        {"licence_number": lic["number"], "licence_type": "结婚证", "status": "有效"}
    ]
    none = seeded.get(f"/api/v1/licences/holders/{FIRM_CODE}", headers=key_of("gjj"))
    assert none.json()["licences"] == []
    entries = _audit(ctx, "licence.list")
    assert [(e.consumer, e.outcome, e.records) for e in entries] == [
        ("gjj", "no_grant", 0),
        ("gjj", "ok", 1),
        ("gjj", "ok", 0),
    ]
    assert entries[1].case == "公积金提取"
    assert entries[1].resource_code == topic
    assert PERSON_ID not in {e.case for e in entries}


def test_using_a_licence_needs_the_whole_topic(seeded: TestClient, ctx: AppContext) -> None:
    lic = issue(seeded)
    url = f"/api/v1/licences/{lic['number']}/use"
    topic = topic_code(ctx)
    grant(seeded, "gjj", topic, ["licence_number", "status"])
    partial = seeded.post(url, json={"purpose": "公积金提取"}, headers=key_of("gjj"))
    assert partial.status_code == 403
    assert partial.json()["error"]["code"] == "item_not_granted"
    grant(seeded, "bdcdj", topic, ALL_ITEMS)
    used = seeded.post(url, json={"purpose": "不动产登记"}, headers=key_of("bdcdj"))
    assert used.status_code == 200, used.text
    assert used.json()["content"]["spouse_name"] == "李四"
    assert used.json()["code"] == lic["code"]
    missing = seeded.post(
        "/api/v1/licences/JHZ11440100865370246J000009990/use",
        json={"purpose": "x"},
        headers=key_of("bdcdj"),
    )
    assert missing.status_code in {404, 422}
    entries = _audit(ctx, "licence.use")
    ok = [e for e in entries if e.outcome == "ok"]
    assert [(e.consumer, e.provider) for e in ok] == [("bdcdj", "mzj")]
    assert ok[0].case is not None
    assert lic["number"] in ok[0].case


def test_the_public_endpoints_need_no_key_and_bad_input_is_a_4xx(seeded: TestClient) -> None:
    assert seeded.get("/api/v1/licences/public-key").status_code == 200
    assert seeded.get("/api/v1/licences/status-list").status_code == 200
    bad = seeded.post("/api/v1/licences/verify", json={"number": "X", "code": "Y"})
    assert bad.status_code == 200
    assert bad.json()["reason"] == "malformed"
    assert seeded.post("/api/v1/licences/verify", json={"number": 1}).status_code == 422
    assert seeded.get("/api/v1/licences/holders/short", headers=key_of("gjj")).status_code == 422


def test_the_mock_departments_feed_issues_in_step_with_the_platform_days(
    seeded: TestClient, ctx: AppContext
) -> None:
    from exchange.departments.city import City
    from exchange.licences.feed import run

    city = City(ctx.settings.seed, ctx.settings.population, ctx.settings.enterprises)
    rates = {"JHZ": 300.0, "YYZZ": 200.0, "ZYZG": 300.0}

    def post(issuer: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        resp = seeded.post("/api/v1/licences", json=body, headers=key_of(issuer))
        return resp.status_code, resp.json()

    today = ctx.clock.today()
    first = run(post, city, today, days=3, rates=rates)
    assert first.refused == 0, first.errors
    assert first.issued > 0
    assert set(first.per_type) == {"JHZ", "YYZZ", "ZYZG"}
    assert first.per_type["JHZ"] % 2 == 0  # one certificate for each spouse
    again = run(post, city, today, days=3, rates=rates)
    assert (again.issued, again.already) == (0, first.issued)
    ctx.clock.advance(dt.timedelta(days=1))
    later = run(post, city, ctx.clock.today(), days=3, rates=rates)
    assert later.issued > 0
    # The two days both runs cover are answered as issued already, not issued twice.
    assert later.already == first.issued - _issued_on(seeded, today - dt.timedelta(days=2))
    stats = seeded.get("/api/v1/licences/stats", headers=key_of("mzj")).json()
    assert stats["issued"] == first.issued + later.issued
    jhz = next(t for t in stats["by_type"] if t["code"] == "JHZ")
    assert jhz["total"] == 2_940_000 + jhz["issued"]


def _issued_on(client: TestClient, day: dt.date) -> int:
    """Licences the feed issued on ``day`` (all three issuers)."""
    total = 0
    for issuer in ("mzj", "scjgj", "rsj"):
        page = client.get("/api/v1/licences", params={"limit": 500}, headers=key_of(issuer))
        total += sum(1 for lic in page.json()["items"] if lic["issued_on"] == day.isoformat())
    return total


def test_without_the_audit_writer_nothing_is_issued_503_audit_unavailable(
    seeded: TestClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctx, "audit", None)  # licences served in a part without the writer
    resp = seeded.post("/api/v1/licences", json=marriage(), headers=key_of("mzj"))
    assert_audit_unavailable(resp)
    monkeypatch.undo()
    stats = seeded.get("/api/v1/licences/stats", headers=key_of("gaj")).json()
    assert stats["issued"] == 0  # refused before acting
