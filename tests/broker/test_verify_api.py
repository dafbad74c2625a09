"""Verification without disclosure (核验) through the in-process API, on both backends.

The provider is a stand-in for the broker's lookup step (the provider call itself, signed
and over HTTP, is the e2e test's): it answers from a dict and records the keys asked, so
the tests can see that the claimed values never leave the broker either.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from tests.conftest import OPERATOR, assert_audit_unavailable, make_department

from exchange.broker.answers import LookupAnswer
from exchange.context import AppContext

ZHANG = "440104199001011234"
LI = "440106198505052345"
NOBODY = "440103200001016789"
MALFORMED = "12345"

# The source's values: none of these strings may appear in any answer, error, audit
# entry or log line.
ADDRESS = "广州市越秀区中山五路219号"
INCOME = "6500.50"
RECORD: dict[str, Any] = {
    "id_number": ZHANG,
    "name": "张三",
    "registered_address": ADDRESS,
    "birth_date": "1990-01-01",
    "monthly_income": INCOME,
    "photo": "ref-0001",
    "criminal_record": "无",
}
RECORDS = {
    ZHANG: [RECORD],
    LI: [{**RECORD, "id_number": LI, "name": "李四", "registered_address": None}],
}
WRONG_ADDRESS = "广州市天河区天河路385号"

PERSON: dict[str, Any] = {
    "category": "101001001",
    "group": "basic",
    "name": "人口基础信息",
    "slug": "person",
    "provider": "gaj",
    "abstract": "本市户籍人口的基础信息。",
    "resource_type": "interface",
    "api_path": "/topics/person",
    "items": [
        {
            "field": "id_number",
            "name": "公民身份号码",
            "sharing_type": "unconditional",
            "is_key": True,
        },
        {"field": "name", "name": "姓名", "sharing_type": "unconditional", "verifiable": True},
        {"field": "registered_address", "name": "户籍地址", "sharing_type": "unconditional"},
        {
            "field": "birth_date",
            "name": "出生日期",
            "data_type": "date",
            "sharing_type": "unconditional",
        },
        {
            "field": "monthly_income",
            "name": "月收入(元)",
            "data_type": "decimal",
            "sharing_type": "not_shared",
            "verifiable": True,
        },
        {"field": "photo", "name": "相片", "sharing_type": "conditional"},
        {"field": "criminal_record", "name": "违法犯罪记录", "sharing_type": "not_shared"},
    ],
    "sharing": {"type": "unconditional"},
    "update_cycle": "realtime",
}


class FakeProvider:
    """The broker's lookup step, answering from :data:`RECORDS`."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    async def lookup(
        self, provider: str, url: str, keys: list[str], request_id: str, key_item: str | None
    ) -> LookupAnswer:
        assert provider == "gaj"
        assert url == "http://gaj.test/topics/person/query"
        self.asked.append(list(keys))
        answer = LookupAnswer([], [], [])
        for key in keys:
            if key == MALFORMED:
                assert answer.invalid is not None
                answer.invalid.append({"key": key, "code": "id_number", "message": "bad"})
            elif key in RECORDS:
                answer.records.extend(RECORDS[key])
            else:
                answer.not_found.append(key)
        return answer


@pytest.fixture
def setup(client: TestClient, ctx: AppContext) -> dict[str, Any]:
    heads = {
        "gaj": make_department(client, "gaj", "广州市公安局"),
        "bank": make_department(client, "gzbank", "广州银行股份有限公司", kind="financial"),
        "mzj": make_department(client, "mzj", "广州市民政局"),
        "rsj": make_department(client, "rsj", "广州市人力资源和社会保障局"),
    }
    resp = client.patch(
        "/api/v1/departments/gaj", json={"base_url": "http://gaj.test"}, headers=OPERATOR
    )
    assert resp.status_code == 200, resp.text
    resp = client.post("/api/v1/catalog/topics", json=PERSON, headers=heads["gaj"])
    assert resp.status_code == 201, resp.text
    provider = FakeProvider()
    assert ctx.broker is not None
    ctx.broker.lookups = provider  # type: ignore[assignment]
    return {"heads": heads, "code": resp.json()["resource_code"], "provider": provider}


def grant(
    client: TestClient,
    headers: dict[str, str],
    code: str,
    items: list[str],
    *,
    scope: str = "data_verification",
    quota: int | None = None,
) -> int:
    body: dict[str, Any] = {
        "topic": code,
        "items": items,
        "purpose": {"scope": scope, "text": "居民家庭经济状况核对"},
        "legal_function": "《社会救助暂行办法》第十一条",
        "valid_until": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
    }
    if quota is not None:
        body["daily_quota"] = quota
    resp = client.post("/api/v1/applications", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    grant_id: int = resp.json()["grant_id"]
    assert grant_id is not None
    return grant_id


def verify(client: TestClient, headers: dict[str, str], code: str, body: Any) -> Any:
    return client.post(f"/api/v1/exchange/{code}/verify", json=body, headers=headers)


def audit(client: TestClient, request_id: str) -> dict[str, Any]:
    page = client.get(
        "/api/v1/audit/entries", params={"request_id": request_id}, headers=OPERATOR
    ).json()
    assert len(page["entries"]) == 1, page
    entry: dict[str, Any] = page["entries"][0]
    return entry


def assert_no_values(*texts: str) -> None:
    for written in texts:
        for value in (ADDRESS, INCOME, "6500.5", "1990-01-01", "张三", "李四", "ref-0001"):
            assert value not in written, f"{value!r} leaked"


def test_a_bank_verifies_a_flagged_item_without_any_grant(
    client: TestClient, setup: dict[str, Any]
) -> None:
    code, bank = setup["code"], setup["heads"]["bank"]
    resp = verify(
        client,
        bank,
        code,
        {"key": ZHANG, "claims": {"name": "张 三", "monthly_income": {"min": 5000, "max": 8000}}},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body == {
        "request_id": resp.headers["x-request-id"],
        "key": ZHANG,
        "status": "found",
        "outcomes": {"name": "match", "monthly_income": "match"},
    }
    entry = audit(client, body["request_id"])
    assert (entry["kind"], entry["consumer"], entry["provider"]) == ("verify", "gzbank", "gaj")
    assert entry["items"] == ["monthly_income", "name"]
    assert entry["verdicts"] == {"monthly_income": {"match": 1}, "name": {"match": 1}}
    assert (entry["outcome"], entry["status"], entry["records"]) == ("ok", 200, 1)
    # Only the key went to the provider.
    assert setup["provider"].asked == [[ZHANG]]

    wrong = verify(client, bank, code, {"key": ZHANG, "claims": {"monthly_income": "6500.49"}})
    assert wrong.json()["outcomes"] == {"monthly_income": "mismatch"}


def test_an_item_neither_granted_nor_flagged_is_refused(
    client: TestClient, setup: dict[str, Any]
) -> None:
    code, bank = setup["code"], setup["heads"]["bank"]
    resp = verify(
        client,
        bank,
        code,
        {"key": ZHANG, "claims": {"name": "张三", "registered_address": ADDRESS}},
    )
    assert resp.status_code == 403
    error = resp.json()["error"]
    assert error["code"] == "client.no_grant"
    assert error["detail"]["side"] == "client"
    assert error["detail"]["items"] == ["registered_address"]
    assert setup["provider"].asked == []  # refused before the provider is asked
    entry = audit(client, error["request_id"])
    assert (entry["kind"], entry["outcome"], entry["records"]) == ("verify", "client.no_grant", 0)
    assert entry["verdicts"] is None
    assert_no_values(resp.text, str(entry))


def test_a_data_verification_grant_verifies_its_items(
    client: TestClient, setup: dict[str, Any]
) -> None:
    code, mzj = setup["code"], setup["heads"]["mzj"]
    grant(client, mzj, code, ["id_number", "registered_address", "birth_date"])
    resp = verify(
        client,
        mzj,
        code,
        {
            "key": ZHANG,
            "claims": {
                "registered_address": "广州市越秀区 中山五路２１９号",
                "birth_date": "1990年1月2日",
                "name": "张三",  # flagged: needs no grant
            },
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["outcomes"] == {
        "registered_address": "match",
        "birth_date": "mismatch",
        "name": "match",
    }
    entry = audit(client, resp.json()["request_id"])
    assert entry["verdicts"] == {
        "birth_date": {"mismatch": 1},
        "name": {"match": 1},
        "registered_address": {"match": 1},
    }
    assert_no_values(resp.text, str(entry))

    # An item outside the grant (and not flagged) is refused, naming the reason.
    photo = verify(client, mzj, code, {"key": ZHANG, "claims": {"photo": "ref-0001"}})
    assert photo.status_code == 403
    assert photo.json()["error"]["code"] == "client.item_not_granted"
    assert_no_values(photo.text)


def test_a_grant_for_another_purpose_does_not_verify(
    client: TestClient, setup: dict[str, Any]
) -> None:
    code, rsj = setup["code"], setup["heads"]["rsj"]
    grant_id = grant(client, rsj, code, ["id_number", "registered_address"], scope="work_reference")
    # The grant serves lookups …
    assert client.post(
        f"/api/v1/exchange/{code}/query", json={"keys": [ZHANG]}, headers=rsj
    ).status_code in (200, 502)
    # … but verification is a purpose of its own.
    resp = verify(client, rsj, code, {"key": ZHANG, "claims": {"registered_address": ADDRESS}})
    assert resp.status_code == 403
    error = resp.json()["error"]
    assert error["code"] == "client.purpose_not_verification"
    assert error["detail"]["grant_id"] == grant_id
    assert_no_values(resp.text)


def test_batch_answers_every_check_in_order(client: TestClient, setup: dict[str, Any]) -> None:
    code, mzj = setup["code"], setup["heads"]["mzj"]
    grant(client, mzj, code, ["id_number", "registered_address"])
    checks = [
        {"key": ZHANG, "claims": {"registered_address": ADDRESS, "name": "张三"}},
        {"key": ZHANG, "claims": {"registered_address": WRONG_ADDRESS}},
        {"key": LI, "claims": {"registered_address": ADDRESS, "name": "李四"}},
        {"key": NOBODY, "claims": {"name": "王五"}},
        {"key": MALFORMED, "claims": {"name": "王五"}},
    ]
    resp = verify(client, mzj, code, {"checks": checks})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["results"] == [
        {
            "key": ZHANG,
            "status": "found",
            "outcomes": {"registered_address": "match", "name": "match"},
        },
        {"key": ZHANG, "status": "found", "outcomes": {"registered_address": "mismatch"}},
        # Li's record holds no address: unknown, not mismatch.
        {
            "key": LI,
            "status": "found",
            "outcomes": {"registered_address": "unknown", "name": "match"},
        },
        {"key": NOBODY, "status": "not_found", "outcomes": {"name": "unknown"}},
        {"key": MALFORMED, "status": "invalid_key", "outcomes": {"name": "unknown"}},
    ]
    assert body["summary"] == {"match": 3, "mismatch": 1, "unknown": 3}
    # Each distinct key was asked once, in one provider call.
    assert setup["provider"].asked == [[ZHANG, LI, NOBODY, MALFORMED]]
    entry = audit(client, body["request_id"])
    assert entry["records"] == 2  # keys found and compared
    assert entry["verdicts"] == {
        "name": {"match": 2, "unknown": 2},
        "registered_address": {"match": 1, "mismatch": 1, "unknown": 1},
    }
    assert_no_values(resp.text.replace("李四", ""), str(entry))


def test_verified_keys_count_against_the_daily_quota(
    client: TestClient, setup: dict[str, Any]
) -> None:
    code, mzj = setup["code"], setup["heads"]["mzj"]
    grant(client, mzj, code, ["id_number", "registered_address"], quota=2)
    claim = {"registered_address": ADDRESS}
    over = verify(
        client,
        mzj,
        code,
        {"checks": [{"key": k, "claims": claim} for k in (ZHANG, LI, NOBODY)]},
    )
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "client.quota_exceeded"
    ok = verify(client, mzj, code, {"checks": [{"key": k, "claims": claim} for k in (ZHANG, LI)]})
    assert ok.status_code == 200, ok.text
    again = verify(client, mzj, code, {"key": ZHANG, "claims": claim})
    assert again.status_code == 429
    # Flagged items need no grant, so they spend no quota either.
    flagged = verify(client, mzj, code, {"key": ZHANG, "claims": {"name": "张三"}})
    assert flagged.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"key": ZHANG, "claims": {"birth_date": "the first of May"}}, 422, "claims.birth_date"),
        ({"key": ZHANG, "claims": {"nickname": "三儿"}}, 422, "claims"),
        ({"key": ZHANG, "claims": {}}, 422, "claims"),
        ({"key": ZHANG, "claims": ["name"]}, 422, "claims"),
        ({"key": "", "claims": {"name": "x"}}, 422, "key"),
        ({"key": 5, "claims": {"name": "x"}}, 422, "key"),
        ({"key": "k" * 201, "claims": {"name": "x"}}, 422, "key"),
        ({"key": ZHANG, "claims": {"name": None}}, 422, "claims.name"),
        ({"key": ZHANG, "claims": {"name": {"min": "a"}}}, 422, "claims.name"),
        ({"key": ZHANG}, 422, None),
        ({"key": ZHANG, "claims": {"name": "x"}, "checks": []}, 422, None),
        ({"checks": []}, 422, "checks"),
        ({"checks": [{"key": ZHANG}]}, 422, "checks.0"),
        ({"checks": [{"key": ZHANG, "claims": {"nickname": "x"}}]}, 422, "checks.0.claims"),
        ({"checks": [{"key": ZHANG, "claims": {"name": "x"}}] * 1001}, 422, "checks"),
        ({"key": ZHANG, "claims": {f"i{n}": "x" for n in range(101)}}, 422, "claims"),
        ([1, 2], 422, None),
    ],
)
def test_bad_input_is_a_clear_4xx(
    client: TestClient, setup: dict[str, Any], body: Any, status: int, field: str | None
) -> None:
    resp = verify(client, setup["heads"]["bank"], setup["code"], body)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == "client.bad_input"
    assert error["detail"].get("field") == field
    assert "the first of May" not in resp.text
    assert "三儿" not in resp.text
    assert setup["provider"].asked == []


def test_unknown_items_are_named_but_not_values(client: TestClient, setup: dict[str, Any]) -> None:
    resp = verify(
        client,
        setup["heads"]["bank"],
        setup["code"],
        {"key": ZHANG, "claims": {"nickname": "三儿"}},
    )
    assert resp.json()["error"]["detail"]["unknown_items"] == ["nickname"]


def test_who_may_call(client: TestClient, setup: dict[str, Any]) -> None:
    code = setup["code"]
    body = {"key": ZHANG, "claims": {"name": "张三"}}
    assert verify(client, {}, code, body).json()["error"]["code"] == "client.missing_key"
    operator = verify(client, OPERATOR, code, body)
    assert (operator.status_code, operator.json()["error"]["code"]) == (
        403,
        "client.not_a_department",
    )
    missing = verify(client, setup["heads"]["bank"], "101001009/000001", body)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "client.topic_not_found")
    not_json = client.post(
        f"/api/v1/exchange/{code}/verify", content=b"{", headers=setup["heads"]["bank"]
    )
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, "client.bad_input")
    wrong_method = client.get(f"/api/v1/exchange/{code}/verify", headers=setup["heads"]["bank"])
    assert wrong_method.status_code == 405


def test_a_retired_topic_verifies_nothing(client: TestClient, setup: dict[str, Any]) -> None:
    code = setup["code"]
    resp = client.post(
        f"/api/v1/catalog/topics/{code}/retire", json={"reason": "并入新目录"}, headers=OPERATOR
    )
    assert resp.status_code == 200, resp.text
    gone = verify(client, setup["heads"]["bank"], code, {"key": ZHANG, "claims": {"name": "张三"}})
    assert (gone.status_code, gone.json()["error"]["code"]) == (410, "client.topic_retired")


def test_values_never_reach_logs_or_the_stored_audit(
    client: TestClient, setup: dict[str, Any], ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    code, mzj = setup["code"], setup["heads"]["mzj"]
    grant(client, mzj, code, ["id_number", "registered_address"])
    caplog.set_level(logging.DEBUG)
    claims = {"registered_address": WRONG_ADDRESS, "monthly_income": INCOME}
    for body in (
        {"key": ZHANG, "claims": claims},
        {"checks": [{"key": ZHANG, "claims": claims}, {"key": LI, "claims": claims}]},
        {"key": ZHANG, "claims": {"birth_date": WRONG_ADDRESS}},  # refused: 422
        {"key": ZHANG, "claims": {"photo": ADDRESS}},  # refused: 403
    ):
        resp = verify(client, mzj, code, body)
        assert resp.status_code in (200, 403, 422), resp.text
        assert WRONG_ADDRESS not in resp.text
        assert_no_values(resp.text)
    page = client.get("/api/v1/audit/entries", params={"limit": 100}, headers=OPERATOR)
    entries = [e for e in page.json()["entries"] if e["kind"] == "verify"]
    assert len(entries) == 4
    with ctx.db.engine.connect() as conn:
        stored = "\n".join(str(tuple(r)) for r in conn.execute(text("SELECT * FROM audit_entry")))
    assert stored.count("'verify'") == 4
    for value in (ADDRESS, WRONG_ADDRESS, INCOME, "张三", "1990-01-01"):
        assert value not in page.text
        assert value not in stored
        assert value not in caplog.text


def test_a_call_the_stopped_audit_writer_cannot_record_is_not_answered(
    client: TestClient, ctx: AppContext, setup: dict[str, Any]
) -> None:
    code, mzj = setup["code"], setup["heads"]["mzj"]
    grant(client, mzj, code, ["id_number", "registered_address"])
    assert ctx.audit is not None
    ctx.audit.stop()  # the app's shutdown stops it again: a no-op
    resp = verify(client, mzj, code, {"key": ZHANG, "claims": {"registered_address": ADDRESS}})
    error = assert_audit_unavailable(resp)
    assert error["detail"]["reason"] == "the audit writer is not running"
    assert_no_values(resp.text)
