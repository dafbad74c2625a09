"""No way around the broker, over real HTTP against ``exchange up`` (one process, the mock
departments inside it, every secret generated on first start as a user would get them).

The departments answer data calls only when the exchange signed them: no key, a
department's key and the operator key are refused; a captured signed call cannot be
replayed or altered; the broker's own calls go through. A restart on another port keeps
routing to the built-in departments (their address is the running process's).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.serve import Server, exchange_up
from tests.signing import ExchangeSigned

from exchange.departments.city import City
from exchange.provider_auth import ProviderSigner
from exchange.security import demo_key

pytestmark = pytest.mark.e2e

OPERATOR_KEY = "exk_operator_provider-auth"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SMALL_CITY = {"EXCHANGE_POPULATION": "2000", "EXCHANGE_ENTERPRISES": "500"}
CITY = City(2020, 2000, 500)
TAX_PAID = "/departments/swj/topics/tax-paid/query"
HUKOU = "/departments/gaj/topics/household-registration/query"


def bearer(code: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo_key(OPERATOR_KEY, code)}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("provider-auth")
    with exchange_up(tmp, f"sqlite:///{tmp}/exchange.db", OPERATOR_KEY, **SMALL_CITY) as up:
        yield up


def credential(server: Server, code: str) -> str:
    """The provider's credential, as the operator hands it out."""
    resp = httpx.post(
        f"{server.url}/api/v1/departments/{code}/provider-credential", headers=OPERATOR
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["code"] == code
    assert body["header"] == "X-Exchange-Signature"
    found: str = body["credential"]
    return found


def signed_headers(secret: str, audience: str, path: str, body: bytes) -> dict[str, str]:
    rid = uuid.uuid4().hex
    return {
        "Content-Type": "application/json",
        "X-Request-Id": rid,
        "X-Exchange-Signature": ProviderSigner(secret, audience).sign(
            "POST", path.encode(), body, rid
        ),
    }


def error_of(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["message"]
    assert body["error"]["request_id"] == resp.headers["x-request-id"]
    found: dict[str, Any] = body["error"]
    return found


def tax_body() -> bytes:
    return b'{"keys":["%s"]}' % CITY.credit_code_of(1).encode()


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "signature_required"),
        (bearer("mzj"), 403, "exchange_only"),
        (bearer("swj"), 403, "exchange_only"),  # not even the provider's own API key
        (OPERATOR, 403, "exchange_only"),
    ],
    ids=["no-key", "department-key", "own-key", "operator-key"],
)
def test_direct_calls_without_the_exchanges_signature_are_refused(
    server: Server, headers: dict[str, str], status: int, code: str
) -> None:
    for path, body in ((TAX_PAID, tax_body()), (HUKOU, b'{"keys":["x"]}')):
        resp = httpx.post(f"{server.url}{path}", content=body, headers=headers)
        assert error_of(resp, status)["code"] == code
    record = f"{server.url}/departments/gaj/topics/household-registration/records/x"
    assert error_of(httpx.get(record, headers=headers), status)["code"] == code
    export = f"{server.url}/departments/swj/topics/tax-registration/export?limit=5"
    assert error_of(httpx.get(export, headers=headers), status)["code"] == code


def test_a_signed_call_is_answered_once_and_not_replayed(server: Server) -> None:
    secret = credential(server, "swj")
    body = tax_body()
    headers = signed_headers(secret, "swj", TAX_PAID, body)
    first = httpx.post(f"{server.url}{TAX_PAID}", content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["records"][0]["credit_code"] == CITY.credit_code_of(1)

    replay = httpx.post(f"{server.url}{TAX_PAID}", content=body, headers=headers)
    assert error_of(replay, 401)["code"] == "signature_replayed"


def test_an_altered_signed_call_is_refused(server: Server) -> None:
    secret = credential(server, "swj")
    body = tax_body()
    headers = signed_headers(secret, "swj", TAX_PAID, body)
    other_key = b'{"keys":["%s"]}' % CITY.credit_code_of(2).encode()
    altered_body = httpx.post(f"{server.url}{TAX_PAID}", content=other_key, headers=headers)
    assert error_of(altered_body, 401)["code"] == "signature_invalid"
    other_topic = "/departments/swj/topics/tax-registration/query"
    altered_path = httpx.post(f"{server.url}{other_topic}", content=body, headers=headers)
    assert error_of(altered_path, 401)["code"] == "signature_invalid"
    # Nothing above was accepted, so the untouched call still goes through once.
    assert httpx.post(f"{server.url}{TAX_PAID}", content=body, headers=headers).status_code == 200


def test_a_call_signed_for_another_provider_is_refused(server: Server) -> None:
    body = tax_body()
    headers = signed_headers(credential(server, "gaj"), "gaj", TAX_PAID, body)
    resp = httpx.post(f"{server.url}{TAX_PAID}", content=body, headers=headers)
    assert error_of(resp, 401)["code"] == "signature_invalid"


def test_fault_control_stays_on_the_operator_key(server: Server) -> None:
    url = f"{server.url}/departments/_faults/swj"
    assert httpx.get(url, headers=OPERATOR).status_code == 200
    assert error_of(httpx.get(url, headers=bearer("swj")), 401)["code"] == "not_authenticated"
    assert error_of(httpx.get(url), 401)["code"] == "not_authenticated"


def _hukou_grant(url: str) -> str:
    """mzj applies for two unconditional items of household registration (granted at once)."""
    with httpx.Client(base_url=url, timeout=10) as http:
        topics = http.get(
            "/api/v1/catalog/topics", params={"provider": "gaj", "limit": 50}, headers=bearer("mzj")
        ).json()["items"]
        code: str = next(
            t["resource_code"] for t in topics if t["slug"] == "household-registration"
        )
        body = {
            "topic": code,
            "items": ["id_number", "name"],
            "purpose": {"scope": "data_verification", "text": "居民家庭经济状况核对"},
            "legal_function": "《社会救助暂行办法》第十一条",
            "valid_until": (dt.date.today() + dt.timedelta(days=365)).isoformat(),
        }
        resp = http.post("/api/v1/applications", json=body, headers=bearer("mzj"))
        assert resp.status_code == 201, resp.text
        assert resp.json()["grant_id"] is not None
    return code


def _broker_lookup(url: str, code: str) -> httpx.Response:
    """A broker lookup, retried until the grant cache has seen a new grant (bounded)."""
    deadline = time.monotonic() + 5
    while True:
        resp = httpx.post(
            f"{url}/api/v1/exchange/{code}/query",
            json={"keys": [CITY.id_number_of(1)]},
            headers=bearer("mzj"),
            timeout=10,
        )
        if resp.status_code != 403 or time.monotonic() > deadline:
            return resp
        time.sleep(0.05)


def test_the_broker_gets_through_and_survives_a_restart_on_another_port(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path}/exchange.db"
    with exchange_up(tmp_path, database, OPERATOR_KEY, **SMALL_CITY) as first:
        code = _hukou_grant(first.url)
        resp = _broker_lookup(first.url, code)
        assert resp.status_code == 200, resp.text
        assert resp.json()["records"][0]["name"] == CITY.person(1).name
        unit = httpx.get(f"{first.url}/api/v1/departments/gaj", headers=OPERATOR).json()
        assert unit["base_url"] == "/departments/gaj"  # this exchange's own, on any port
    with exchange_up(tmp_path, database, OPERATOR_KEY, **SMALL_CITY) as second:
        assert second.url != first.url
        resp = _broker_lookup(second.url, code)
        assert resp.status_code == 200, resp.text  # was 502: the first start's port
        assert resp.json()["records"][0]["name"] == CITY.person(1).name
        # The same master secret (kept beside the operator key) signs after the restart.
        direct = httpx.post(f"{second.url}{HUKOU}", json={"keys": ["x"]})
        assert direct.status_code == 401


def test_the_generated_master_secret_signs_what_the_departments_accept(server: Server) -> None:
    # The helper signs like the broker, from the master secret kept beside the operator key.
    state = server.log.parent / "provider.secret"
    master = state.read_text().strip()
    with httpx.Client(base_url=server.url, auth=ExchangeSigned(master)) as http:
        resp = http.post(HUKOU, json={"keys": [CITY.id_number_of(1)]})
    assert resp.status_code == 200, resp.text
