"""Verification (核验) end to end over real HTTP: a bank confirms a citizen's declared
address against the public security bureau's register, through the broker's signed call
to the mock departments, without the address ever reaching it."""

from __future__ import annotations

import unicodedata
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import Exchange
from tests.e2e.harness import OPERATOR, OPERATOR_KEY, apply, key_of, topic_code

from exchange.client import ExchangeClient, PermissionDenied, ProviderError
from exchange.departments.city import City
from exchange.security import demo_key

pytestmark = pytest.mark.e2e

CITY = City(2020, 2_000, 500)
HUKOU = "household-registration"
BANK = "icbc"
NOBODY = "11010519491231002X"


def verify(ex: Exchange, consumer: str, code: str, body: dict[str, Any]) -> httpx.Response:
    return ex.http.post(f"/api/v1/exchange/{code}/verify", json=body, headers=key_of(consumer))


def audit_of(ex: Exchange, request_id: str) -> dict[str, Any]:
    page = ex.http.get(
        "/api/v1/audit/entries", params={"request_id": request_id}, headers=OPERATOR
    ).json()
    assert len(page["entries"]) == 1
    entry: dict[str, Any] = page["entries"][0]
    return entry


def full_width(text: str) -> str:
    """``text`` with ASCII digits and letters typed full-width, as forms often hold them."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


@pytest.fixture
def hukou(exchange: Exchange) -> str:
    return topic_code(exchange.ctx, HUKOU)


def test_a_bank_confirms_a_declared_address_without_receiving_it(
    exchange: Exchange, hukou: str
) -> None:
    person = CITY.person(7)
    declared = full_width(person.address)
    assert unicodedata.normalize("NFKC", declared) == person.address
    resp = verify(
        exchange,
        BANK,
        hukou,
        {"key": person.id_number, "claims": {"name": person.name, "registered_address": declared}},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "found"
    assert body["outcomes"] == {"name": "match", "registered_address": "match"}
    assert person.address not in resp.text
    assert person.name not in resp.text

    entry = audit_of(exchange, body["request_id"])
    assert (entry["kind"], entry["consumer"], entry["provider"]) == ("verify", BANK, "gaj")
    assert entry["verdicts"] == {"name": {"match": 1}, "registered_address": {"match": 1}}
    assert person.address not in str(entry)

    other = CITY.person(8)
    wrong = verify(
        exchange,
        BANK,
        hukou,
        {"key": person.id_number, "claims": {"registered_address": other.address}},
    )
    assert wrong.json()["outcomes"] == {"registered_address": "mismatch"}


def test_a_batch_over_http(exchange: Exchange, hukou: str) -> None:
    people = [CITY.person(i) for i in range(10, 15)]
    checks: list[dict[str, Any]] = [
        {"key": p.id_number, "claims": {"birth_date": p.birth_date.strftime("%Y年%m月%d日")}}
        for p in people
    ]
    checks.append({"key": NOBODY, "claims": {"birth_date": "1949-12-31"}})
    resp = verify(exchange, BANK, hukou, {"checks": checks})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [r["outcomes"]["birth_date"] for r in body["results"]] == ["match"] * 5 + ["unknown"]
    assert body["results"][-1]["status"] == "not_found"
    assert body["summary"] == {"match": 5, "mismatch": 0, "unknown": 1}
    assert audit_of(exchange, body["request_id"])["records"] == 5


def test_items_not_flagged_need_a_verification_grant(exchange: Exchange, hukou: str) -> None:
    person = CITY.person(20)
    claim = {"key": person.id_number, "claims": {"ethnicity": person.ethnicity}}
    refused = verify(exchange, BANK, hukou, claim)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "client.no_grant"
    # wjw applies for the item with the data_verification purpose (the harness's default).
    apply(exchange.http, "wjw", hukou, ["id_number", "ethnicity"])
    granted = verify(exchange, "wjw", hukou, claim)
    assert granted.status_code == 200, granted.text
    assert granted.json()["outcomes"] == {"ethnicity": "match"}


def test_the_sdk_verifies_and_maps_denials(exchange: Exchange, hukou: str) -> None:
    person = CITY.person(30)
    with ExchangeClient(exchange.url, demo_key(OPERATOR_KEY, BANK)) as bank:
        one = bank.verify(hukou, person.id_number, {"registered_address": person.address})
        assert one.outcomes == {"registered_address": "match"}
        many = bank.verify_many(
            hukou,
            [
                (person.id_number, {"name": person.name}),
                (NOBODY, {"name": person.name}),
            ],
            case="开户核验",
        )
        assert [r.outcomes["name"] for r in many.results] == ["match", "unknown"]
        assert audit_of(exchange, many.request_id)["case"] == "开户核验"
        with pytest.raises(PermissionDenied) as denied:
            bank.verify(hukou, person.id_number, {"sex": person.sex})
        assert denied.value.code == "client.no_grant"


def test_a_provider_failure_is_the_providers_and_shows_no_value(
    exchange: Exchange, hukou: str
) -> None:
    person = CITY.person(40)
    exchange.faults("gaj", HUKOU, outage=True)
    try:
        with (
            ExchangeClient(exchange.url, demo_key(OPERATOR_KEY, BANK)) as bank,
            pytest.raises(ProviderError) as failed,
        ):
            bank.verify(hukou, person.id_number, {"registered_address": person.address})
        assert failed.value.code.startswith("provider.")
        assert person.address not in str(failed.value)
        entry = audit_of(exchange, failed.value.request_id or "")
        assert entry["outcome"].startswith("provider.")
        assert entry["verdicts"] is None
    finally:
        exchange.faults("gaj", HUKOU)
        exchange.broker.upstream.breakers.clear()


def test_an_oversharing_provider_still_discloses_nothing(exchange: Exchange, hukou: str) -> None:
    person = CITY.person(50)
    exchange.faults("gaj", HUKOU, overshare=True)
    try:
        resp = verify(
            exchange, BANK, hukou, {"key": person.id_number, "claims": {"name": person.name}}
        )
        assert resp.status_code == 200, resp.text
        assert set(resp.json()) == {"request_id", "key", "status", "outcomes"}
        assert "internal_remark" not in resp.text
    finally:
        exchange.faults("gaj", HUKOU)
