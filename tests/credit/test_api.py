"""``/api/v1/credit`` in process: submissions, the public search, scoping, statistics,
list queries with grants, the upward feed, bad input and the audit trail."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR, assert_audit_unavailable, auth
from tests.credit.conftest import key, penalty, permit, today

from exchange.context import AppContext
from exchange.credit.baseline import allocation
from exchange.departments.city import City
from exchange.departments.records import tax_rating

RECORDS = "/api/v1/credit/records"


def submit(client: TestClient, unit: str, *records: dict[str, object]) -> dict[str, object]:
    resp = client.post(RECORDS, json={"records": list(records)}, headers=key(unit))
    assert resp.status_code == 200, resp.text
    body: dict[str, object] = resp.json()
    return body


def test_submit_is_due_in_seven_working_days_and_idempotent(
    seeded: TestClient, ctx: AppContext, city: City
) -> None:
    code = city.sample_credit_codes(1, seed=1)[0]
    day = today(ctx)
    recs = (penalty(code, "穗市监罚〔2026〕1号", day), permit(code, "穗市监许〔2026〕1号", day))
    body = submit(seeded, "scjgj", *recs)
    assert (body["published"], body["duplicates"], body["late"]) == (2, 0, 0)
    again = submit(seeded, "scjgj", *recs)
    assert (again["published"], again["duplicates"]) == (0, 2)
    assert [r["outcome"] for r in again["results"]] == ["duplicate", "duplicate"]  # type: ignore[index,union-attr]
    late = submit(
        seeded, "scjgj", penalty(code, "穗市监罚〔2026〕2号", day - dt.timedelta(days=30))
    )
    assert late["late"] == 1
    mine = seeded.get("/api/v1/credit/submissions", params={"late": "true"}, headers=key("scjgj"))
    assert [r["decision_number"] for r in mine.json()["items"]] == ["穗市监罚〔2026〕2号"]


def test_bad_input_is_4xx(seeded: TestClient, ctx: AppContext, city: City) -> None:
    code = city.sample_credit_codes(1, seed=2)[0]
    day = today(ctx)
    bad_check = penalty(code[:-1] + ("0" if code[-1] != "0" else "1"), "罚1", day)
    resp = seeded.post(RECORDS, json={"records": [bad_check]}, headers=key("scjgj"))
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "invalid_record"
    assert resp.json()["error"]["detail"]["errors"][0]["loc"] == "records.0.credit_code"
    future = penalty(code, "罚2", day + dt.timedelta(days=2))
    resp = seeded.post(RECORDS, json={"records": [future]}, headers=key("scjgj"))
    assert resp.status_code == 422
    twice = [penalty(code, "罚3", day), penalty(code, "罚3", day)]
    assert seeded.post(RECORDS, json={"records": twice}, headers=key("scjgj")).status_code == 422
    person = {**penalty(code, "罚4", day), "party_kind": "natural_person", "credit_code": None}
    resp = seeded.post(RECORDS, json={"records": [person]}, headers=key("scjgj"))
    assert resp.status_code == 422  # a natural person needs an ID number
    no_fine = {**penalty(code, "罚5", day), "fine_amount": None}
    assert (
        seeded.post(RECORDS, json={"records": [no_fine]}, headers=key("scjgj")).status_code == 422
    )
    assert seeded.post(RECORDS, json={"records": []}, headers=key("scjgj")).status_code == 422
    too_many = [penalty(code, f"罚{i}", day) for i in range(1001)]
    assert seeded.post(RECORDS, json={"records": too_many}, headers=key("scjgj")).status_code == 422
    ok = [penalty(code, "罚6", day)]
    assert seeded.post(RECORDS, json={"records": ok}).status_code == 401
    assert seeded.post(RECORDS, json={"records": ok}, headers=OPERATOR).status_code == 403
    bank = seeded.post(RECORDS, json={"records": ok}, headers=key("icbc"))
    assert bank.status_code == 403
    assert bank.json()["error"]["code"] == "not_an_authority"
    assert seeded.get(RECORDS, headers=key("gaj")).json()["error"]["code"] == "query_required"
    assert seeded.get(RECORDS, params={"credit_code": "x"}, headers=key("gaj")).status_code == 422


def test_public_view_masks_ids_and_hides_expired_penalties(
    seeded: TestClient, ctx: AppContext, city: City
) -> None:
    code = city.sample_credit_codes(1, seed=3)[0]
    day = today(ctx)
    person = {
        **penalty(code, "穗公罚〔2026〕9号", day, categories=("警告",)),
        "party_kind": "natural_person",
        "party_name": "王五",
        "credit_code": None,
        "legal_representative": None,
        "id_number": "440524188001010014",
    }
    old_warning = penalty(
        code, "穗市监罚〔2025〕8号", day - dt.timedelta(days=200), categories=("警告",)
    )
    submit(seeded, "scjgj", person, old_warning, permit(code, "穗市监许〔2026〕3号", day))
    found = seeded.get(RECORDS, params={"name": "王五"}, headers=key("sw")).json()
    assert found["total"] == 1
    item = found["items"][0]
    assert item["id_number_masked"] == "440524********0014"
    assert not {"id_number", "major", "late"} & set(item)
    by_code = seeded.get(RECORDS, params={"credit_code": code}, headers=key("sw")).json()
    # The warning of 200 days ago is past its 3-month publicity period.
    assert [i["kind"] for i in by_code["items"]] == ["permit"]
    own = seeded.get("/api/v1/credit/submissions", headers=key("scjgj")).json()
    assert "440524188001010014" in {i["id_number"] for i in own["items"]}


def test_submissions_are_scoped_to_their_unit(
    seeded: TestClient, ctx: AppContext, city: City
) -> None:
    code = city.sample_credit_codes(1, seed=4)[0]
    submit(seeded, "scjgj", penalty(code, "罚7", today(ctx)))
    assert seeded.get("/api/v1/credit/submissions", headers=key("gaj")).json()["total"] == 0
    other = seeded.get("/api/v1/credit/submissions", params={"unit": "scjgj"}, headers=key("gaj"))
    assert other.status_code == 403
    op = seeded.get("/api/v1/credit/submissions", params={"unit": "scjgj"}, headers=OPERATOR)
    assert op.json()["total"] == 1


def test_stats_count_late_missing_and_the_baseline(
    seeded: TestClient, ctx: AppContext, city: City
) -> None:
    code = city.sample_credit_codes(1, seed=5)[0]
    day = today(ctx) - dt.timedelta(days=1)
    notices = [
        {"kind": "penalty", "decision_number": f"税罚{i}", "decision_date": day.isoformat()}
        for i in range(4)
    ]
    resp = seeded.post("/api/v1/credit/notices", json={"notices": notices}, headers=key("swj"))
    assert resp.json() == {"recorded": 4, "already_known": 0}
    submit(seeded, "swj", penalty(code, "税罚0", day), penalty(code, "税罚1", day))
    mine = seeded.get("/api/v1/credit/stats", headers=key("swj")).json()
    assert mine["submitting_units"] == 49  # the 48 of the seed and swj: a public figure
    assert [(u["unit"], u["published"], u["missing"], u["pending"]) for u in mine["units"]] == [
        ("swj", 2, 0, 2)
    ]
    ctx.clock.advance(dt.timedelta(days=20))
    submit(seeded, "swj", penalty(code, "税罚2", day))  # late now
    row = seeded.get("/api/v1/credit/stats", headers=key("swj")).json()["units"][0]
    assert (row["published"], row["late"], row["missing"], row["pending"]) == (3, 1, 1, 0)
    assert row["publication_rate"] == 0.75
    assert row["on_time_rate"] == 0.5
    everyone = seeded.get("/api/v1/credit/stats", headers=OPERATOR).json()
    assert everyone["total"]["published"] == 23_670_000 + 3
    assert everyone["submitting_units"] == 49
    scjgj = next(u for u in everyone["units"] if u["unit"] == "scjgj")
    assert scjgj["permits"] == allocation()["scjgj"][0]
    assert scjgj["publication_rate"] == 1.0


def test_lists_need_a_grant_and_answer_with_reasons(
    seeded: TestClient, ctx: AppContext, city: City
) -> None:
    codes = city.sample_credit_codes(60, seed=6)
    repeat, major = codes[0], codes[1]
    red = next(
        c for c in codes[2:] if tax_rating(city, city.index_of_credit_code(c) or 0, c[:2]) == "A"
    )
    day = today(ctx)
    submit(
        seeded,
        "scjgj",
        *(penalty(repeat, f"罚R{i}", day - dt.timedelta(days=30 * i)) for i in range(3)),
        penalty(major, "罚M", day, categories=("吊销许可证件",), fine=None),
    )
    url = "/api/v1/credit/lists/query"
    resp = seeded.post(
        url, json={"credit_codes": [repeat, major, red, repeat]}, headers=key("gzhg")
    )
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["credit_code"] for r in results] == [repeat, major, red, repeat]
    first = results[0]["lists"][0]
    assert first["name"] == "black"
    assert [h["rule"] for h in first["rules"]] == ["repeated"]
    assert {s["decision_number"] for s in first["rules"][0]["records"]} == {"罚R0", "罚R1", "罚R2"}
    assert results[1]["lists"][0]["rules"][0]["rule"] == "major_penalty"
    assert [(m["name"], m["rules"][0]["rule"]) for m in results[2]["lists"]] == [
        ("red", "a_taxpayer")
    ]
    single = seeded.get(f"/api/v1/credit/lists/{major}", headers=key("sw"))
    assert single.json()["lists"][0]["name"] == "black"
    denied = seeded.get(f"/api/v1/credit/lists/{major}", headers=key("gaj"))
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "no_grant"
    assert seeded.get(f"/api/v1/credit/lists/{major}", headers=OPERATOR).status_code == 403
    assert seeded.get("/api/v1/credit/lists/NOTACODE", headers=key("sw")).status_code == 422
    batch = seeded.post(url, json={"credit_codes": codes * 16 + codes[:40]}, headers=key("hphg"))
    assert batch.status_code == 200
    assert len(batch.json()["results"]) == 1000
    over = seeded.post(url, json={"credit_codes": codes * 17}, headers=key("hphg"))
    assert over.status_code == 422


def test_calls_are_audited(seeded: TestClient, ctx: AppContext, city: City) -> None:
    code = city.sample_credit_codes(1, seed=7)[0]
    submit(seeded, "scjgj", penalty(code, "罚A", today(ctx)))
    seeded.get(f"/api/v1/credit/lists/{code}", headers=key("gaj"))  # denied
    seeded.get(f"/api/v1/credit/lists/{code}", headers=key("gzhg"))
    entries = seeded.get("/api/v1/audit/entries", params={"limit": 1000}, headers=OPERATOR).json()
    seen = [(e["kind"], e["consumer"], e["outcome"]) for e in entries["entries"]]
    assert ("credit_submit", "scjgj", "ok") in seen
    assert ("credit_lists", "gaj", "no_grant") in seen
    assert ("credit_lists", "gzhg", "ok") in seen
    assert seeded.get("/api/v1/audit/verify", headers=OPERATOR).json()["ok"] is True


def test_upward_feed_is_the_provincial_platforms(
    seeded: TestClient, ctx: AppContext, city: City
) -> None:
    code = city.sample_credit_codes(1, seed=8)[0]
    submit(seeded, "scjgj", *(penalty(code, f"罚F{i}", today(ctx)) for i in range(3)))
    first = seeded.get("/api/v1/credit/feed", params={"limit": 2}, headers=key("gdzsj")).json()
    assert [r["decision_number"] for r in first] == ["罚F0", "罚F1"]
    rest = seeded.get(
        "/api/v1/credit/feed", params={"after": first[-1]["id"]}, headers=key("gdzsj")
    ).json()
    assert [r["decision_number"] for r in rest] == ["罚F2"]
    assert seeded.get("/api/v1/credit/feed", headers=key("gaj")).status_code == 403
    assert seeded.get("/api/v1/credit/feed", headers=auth("exk_nobody")).status_code == 401


def test_without_the_audit_writer_calls_answer_503_audit_unavailable(
    seeded: TestClient, ctx: AppContext, city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = city.sample_credit_codes(1, seed=9)[0]
    monkeypatch.setattr(ctx, "audit", None)  # credit served in a part without the writer
    assert_audit_unavailable(seeded.get(f"/api/v1/credit/lists/{code}", headers=key("gzhg")))
    body = {"records": [penalty(code, "罚U", today(ctx))]}
    assert_audit_unavailable(seeded.post(RECORDS, json=body, headers=key("scjgj")))
