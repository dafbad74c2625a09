"""Forwarded applications through the two platforms' APIs, in process: the province's
forward filed at the city in the provider's queue (once, however often it is sent), the
city's states applied at the province (once, in order), the review refused at the
province, forged and malformed calls refused; the peer's lookups and provision pages
refused while unpublished and not served while the city cannot audit them. The relay
between them is done here by hand with the platforms' own signatures, so each side's
route is what is tested."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar
from unittest.mock import AsyncMock

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR, OPERATOR_KEY, assert_audit_unavailable, auth

from exchange.app import build_context, create_app
from exchange.broker.answers import LookupAnswer
from exchange.config import Settings
from exchange.context import AppContext
from exchange.federation import forwarding, service
from exchange.federation.lookup import FederationDispatch
from exchange.federation.models import Forward, Mount
from exchange.provider_auth import ProviderSigner, derive_provider_secret
from exchange.security import demo_key
from exchange.seed import seed

CITY_MASTER, PROVINCE_MASTER = "exms_test-city", "exms_test-province"
PROVINCE_OPERATOR = "exk_operator_test-province"
ITEMS = ["credit_code", "taxpayer_name", "credit_rating"]


def _settings(url: str, **extra: Any) -> Settings:
    return Settings(
        database_url=url,
        catalog_profile="core",
        mock_departments=False,
        population=2_000,
        enterprises=500,
        **extra,
    )


@pytest.fixture
def city_ctx(database_url: str) -> Iterator[AppContext]:
    settings = _settings(
        database_url,
        operator_key=OPERATOR_KEY,
        provider_secret=CITY_MASTER,
        peer_credential=derive_provider_secret(PROVINCE_MASTER, "gz"),
    )
    ctx = build_context(settings)
    seed(ctx.db, settings, settings.operator_key, ctx.clock)
    yield ctx
    ctx.db.dispose()


@pytest.fixture
def city(city_ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(city_ctx.settings, ctx=city_ctx)) as client:
        yield client


@pytest.fixture
def province_ctx(tmp_path: Path, sqlite_template: Path) -> Iterator[AppContext]:
    path = tmp_path / "province.db"
    path.write_bytes(sqlite_template.read_bytes())
    settings = _settings(
        f"sqlite:///{path}",
        level="province",
        operator_key=PROVINCE_OPERATOR,
        provider_secret=PROVINCE_MASTER,
        peer_credential=derive_provider_secret(CITY_MASTER, "gdzsj"),
    )
    ctx = build_context(settings)
    seed(ctx.db, settings, settings.operator_key, ctx.clock)
    yield ctx
    ctx.db.dispose()


@pytest.fixture
def province(province_ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(province_ctx.settings, ctx=province_ctx)) as client:
        yield client


def _peer_headers(credential: str, audience: str, method: str, path: str, raw: bytes) -> Any:
    """The headers of a call signed as the peer platform."""
    rid = uuid.uuid4().hex
    signature = ProviderSigner(credential, audience).sign(method, path.encode(), raw, rid)
    return {"X-Request-Id": rid, "X-Exchange-Signature": signature}


def _signed(
    client: TestClient, credential: str, audience: str, path: str, body: Any
) -> tuple[int, dict[str, Any], Any]:
    """A signed POST as the peer platform: (status, body, headers)."""
    raw = orjson.dumps(body)
    headers = _peer_headers(credential, audience, "POST", path, raw)
    resp = client.post(path, content=raw, headers={**headers, "Content-Type": "application/json"})
    return resp.status_code, resp.json(), resp.headers


def _as_province(city: TestClient, path: str, body: Any) -> tuple[int, dict[str, Any], Any]:
    return _signed(city, derive_provider_secret(PROVINCE_MASTER, "gz"), "gz", path, body)


def _as_city(province: TestClient, path: str, body: Any) -> tuple[int, dict[str, Any], Any]:
    return _signed(province, derive_provider_secret(CITY_MASTER, "gdzsj"), "gdzsj", path, body)


def _tax_code(city: TestClient) -> str:
    topics = city.get(
        "/api/v1/catalog/topics", params={"provider": "swj", "limit": 100}, headers=OPERATOR
    ).json()
    return next(t["resource_code"] for t in topics["items"] if t["slug"] == "tax-registration")


def _mount(city: TestClient, city_ctx: AppContext, province_ctx: AppContext) -> tuple[str, str]:
    """Publish the tax topic at the city and mount it at the province from the feed."""
    code = _tax_code(city)
    resp = city.post(
        "/api/v1/federation/publications", json={"resource_codes": [code]}, headers=OPERATOR
    )
    assert resp.status_code == 200, resp.text
    with city_ctx.db.sessions() as session:
        entries, cursor = service.feed_after(session, 0, 100)
    with province_ctx.db.session() as session:
        service.apply_entries(session, entries, "gz", province_ctx.clock.now(), cursor=cursor)
        mount = session.get(Mount, code)
        assert mount is not None
        return code, mount.resource_code


def _province_key(who: str) -> dict[str, str]:
    return auth(demo_key(PROVINCE_OPERATOR, who))


def _apply(
    platform: TestClient,
    topic: str,
    who: str = "gd-scjgj",
    items: list[str] = ITEMS,
    operator: str = PROVINCE_OPERATOR,
) -> dict[str, Any]:
    """``who`` applies for ``items`` of ``topic`` at ``platform`` (the province unless
    ``operator`` names the city's): the application as answered."""
    resp = platform.post(
        "/api/v1/applications",
        json={
            "topic": topic,
            "items": items,
            "purpose": {"scope": "data_verification", "text": "企业纳税信用核验"},
            "legal_function": "《广东省市场监督管理条例》",
            "valid_until": "2029-12-31",
        },
        headers=auth(demo_key(operator, who)),
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _forward_body(province_ctx: AppContext) -> dict[str, Any]:
    with province_ctx.db.sessions() as session:
        pending = forwarding.pending_forwards(session)
    assert len(pending) == 1
    return pending[0][2]


def _states(city_ctx: AppContext) -> list[dict[str, Any]]:
    with city_ctx.db.sessions() as session:
        return [state for _, _, state, _ in forwarding.pending_states(session)]


def test_a_forward_is_reviewed_at_the_city_and_mirrored_at_the_province(
    city: TestClient, city_ctx: AppContext, province: TestClient, province_ctx: AppContext
) -> None:
    city_code, mounted = _mount(city, city_ctx, province_ctx)
    app = _apply(province, mounted)
    assert app["forwarded_to"] == "city"
    assert {d["field"]: d["outcome"] for d in app["decisions"]}["credit_rating"] == "pending"
    refused = province.post(
        f"/api/v1/applications/{app['id']}/reject",
        json={"reason": "不同意"},
        headers=_province_key("gz"),
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "reviewed_at_peer"

    # The forward, filed at the city in the tax bureau's queue; sent twice, filed once.
    body = _forward_body(province_ctx)
    assert body["topic"] == city_code
    assert body["consumer"] == "gd-scjgj"
    status, answer, headers = _as_province(city, "/api/v1/federation/applications", body)
    assert status == 200, answer
    assert headers["X-Exchange-Answer-To"]
    assert headers["X-Exchange-Signature"]
    state = answer["state"]
    again = _as_province(city, "/api/v1/federation/applications", body)[1]["state"]
    assert again["application_id"] == state["application_id"]
    queue = city.get(
        "/api/v1/applications",
        params={"role": "provider", "status": "pending_review"},
        headers=auth(demo_key(OPERATOR_KEY, "swj")),
    ).json()["items"]
    filed = [a for a in queue if a["on_behalf_of"] == "gd-scjgj"]
    assert [a["id"] for a in filed] == [state["application_id"]]
    assert filed[0]["consumer"] == "gdzsj"
    assert filed[0]["review_deadline"] is not None
    # The first state (deadline, nothing decided yet) at the province.
    code, applied, _ = _as_city(
        province, "/api/v1/federation/applications/states", {"states": [state]}
    )
    assert code == 200
    assert applied == {"applied": {"unchanged": 1}}
    with province_ctx.db.sessions() as session:
        assert forwarding.pending_forwards(session) == []

    # The bureau approves; the state it owes the province is applied once.
    swj = auth(demo_key(OPERATOR_KEY, "swj"))
    resp = city.post(
        f"/api/v1/applications/{state['application_id']}/approve",
        json={"reason": "同意共享"},
        headers=swj,
    )
    assert resp.status_code == 200, resp.text
    states = _states(city_ctx)
    assert [s["version"] for s in states] == [2]
    path = "/api/v1/federation/applications/states"
    assert _as_city(province, path, {"states": states})[1] == {"applied": {"decided": 1}}
    assert _as_city(province, path, {"states": states})[1] == {"applied": {"unchanged": 1}}
    done = province.get(f"/api/v1/applications/{app['id']}", headers=OPERATOR_P).json()
    assert done["status"] == "approved"
    assert done["reviewed_by"] == "gz:swj"
    grant = province.get(f"/api/v1/grants/{done['grant_id']}", headers=OPERATOR_P).json()
    assert sorted(grant["items"]) == sorted(ITEMS)
    assert grant["status"] == "active"

    # The bureau revokes the grant the forward rests on: the province's follows.
    city_app = city.get(f"/api/v1/applications/{state['application_id']}", headers=swj).json()
    resp = city.post(
        f"/api/v1/grants/{city_app['grant_id']}/revoke", json={"reason": "停止共享"}, headers=swj
    )
    assert resp.status_code == 200, resp.text
    states = _states(city_ctx)
    assert [s["grant"]["status"] for s in states] == ["revoked"]
    assert _as_city(province, path, {"states": states})[1] == {"applied": {"revoked": 1}}
    grant = province.get(f"/api/v1/grants/{done['grant_id']}", headers=OPERATOR_P).json()
    assert grant["status"] == "revoked"

    # Every call of it is in the city's audit trail under the one correlation id.
    audit = city.get("/api/v1/audit/entries", params={"limit": 1000}, headers=OPERATOR)
    entries = audit.json()["entries"]
    mine = [e for e in entries if e.get("correlation_id") == body["correlation_id"]]
    assert len(mine) >= 2
    assert {e["kind"] for e in mine} == {"federation"}


def test_an_unconditional_only_application_is_granted_at_once_and_not_forwarded(
    city: TestClient, city_ctx: AppContext, province: TestClient, province_ctx: AppContext
) -> None:
    """无条件共享 items of a mounted topic need no review by the city: the province grants
    them itself, at submission, and nothing crosses to the city."""
    _city_code, mounted = _mount(city, city_ctx, province_ctx)
    unconditional = ["credit_code", "taxpayer_name", "status"]
    app = _apply(province, mounted, items=unconditional)
    assert app["status"] == "approved"
    assert app["forwarded_to"] is None
    assert {d["field"]: d["outcome"] for d in app["decisions"]} == dict.fromkeys(
        unconditional, "granted"
    )
    grant = province.get(f"/api/v1/grants/{app['grant_id']}", headers=OPERATOR_P).json()
    assert (grant["status"], sorted(grant["items"])) == ("active", sorted(unconditional))
    # Nothing to forward, no forward kept, nothing in the city's queue.
    with province_ctx.db.sessions() as session:
        assert forwarding.pending_forwards(session) == []
        assert session.query(Forward).count() == 0
    got = province.get(f"/api/v1/applications/{app['id']}", headers=OPERATOR_P).json()
    kinds = {e["kind"] for e in got["events"]}
    assert kinds
    assert "forwarded" not in kinds
    queue = city.get(
        "/api/v1/applications", params={"status": "pending_review"}, headers=OPERATOR
    ).json()
    assert queue["items"] == []
    with city_ctx.db.sessions() as session:
        assert session.query(Forward).count() == 0
    # The same department's conditional item on the same topic is forwarded (the
    # contrast that shows the unconditional one was not merely missed).
    other = _apply(province, mounted, items=["credit_code", "credit_rating"])
    assert other["forwarded_to"] == "city"


def test_forged_malformed_and_unpublished_forwards_are_refused(
    city: TestClient, city_ctx: AppContext, province_ctx: AppContext
) -> None:
    city_code = _tax_code(city)
    body = {
        "origin_application_id": 7,
        "correlation_id": uuid.uuid4().hex,
        "consumer": "gd-scjgj",
        "topic": city_code,
        "items": ["credit_code"],
        "purpose": {"scope": "data_verification", "text": "核验"},
        "legal_function": "《条例》",
        "valid_from": "2026-01-01",
        "valid_until": "2029-12-31",
    }
    path = "/api/v1/federation/applications"
    # Not published to the province: refused, nothing filed.
    status, answer, _ = _as_province(city, path, body)
    assert status == 404, answer
    assert answer["error"]["code"] == "not_published"
    # Signed with another credential: refused before anything is read.
    forged = _signed(city, "exps_gz_not-the-credential", "gz", path, body)
    assert forged[0] == 401
    assert forged[1]["error"]["code"].startswith("client.signature")
    status, answer, _ = _as_province(city, path, {"consumer": "gd-scjgj"})
    assert status == 422
    assert answer["error"]["code"] == "client.bad_input"
    status, answer, _ = _as_city(city, "/api/v1/federation/applications/states", {"x": 1})
    assert status == 401
    with city_ctx.db.sessions() as session:
        assert session.query(Forward).count() == 0


OPERATOR_P = auth(PROVINCE_OPERATOR)


def test_a_peer_lookup_of_a_topic_not_published_to_it_is_refused_until_it_is(
    city: TestClient,
) -> None:
    # answer_query reads the published set from memory; publishing must reach it at once.
    code = _tax_code(city)
    path = f"/api/v1/federation/topics/{code}/query"
    body = {"keys": ["91440101MA5CXXXX01"], "items": ["credit_code"], "consumer": "gd-scjgj"}
    status, answer, _ = _as_province(city, path, body)
    assert status == 404, answer
    assert answer["error"]["code"].endswith("not_published")
    resp = city.post(
        "/api/v1/federation/publications", json={"resource_codes": [code]}, headers=OPERATOR
    )
    assert resp.status_code == 200, resp.text
    status, answer, _ = _as_province(city, path, body)
    # Published now: refused further on (no grant to the province yet), not as unpublished.
    assert not answer["error"]["code"].endswith("not_published"), answer
    assert status == 403, answer


class _Tax:
    """The tax bureau's side of the broker, for the city: its lookups and its export,
    answering with one enterprise's unconditional items (the provider call itself, signed
    and over HTTP, is the e2e tests')."""

    NAME = "广州某某贸易有限公司"
    LINE: ClassVar[dict[str, str]] = {
        "credit_code": "91440101MA5CXXXX01",
        "status": "正常",
        "taxpayer_name": NAME,
    }

    async def lookup(
        self, provider: str, url: str, keys: list[str], request_id: str, key_item: str | None
    ) -> LookupAnswer:
        assert provider == "swj"
        return LookupAnswer([dict(self.LINE, credit_code=k) for k in keys], [], [])

    @contextlib.asynccontextmanager
    async def stream(
        self, provider: str, url: str, params: dict[str, str], request_id: str
    ) -> AsyncIterator[Any]:
        assert provider == "swj"
        body = orjson.dumps(self.LINE) + b"\n"
        headers = {"X-Total-Rows": "1", "X-Next-Offset": "1"}
        yield SimpleNamespace(headers=headers, read=AsyncMock(return_value=body))


def test_a_peer_call_the_city_cannot_audit_is_answered_503_and_serves_nothing(
    city: TestClient, city_ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The province's lookup and provision page, signed and granted, are answered with
    records while the city's audit writer runs; once it has stopped, the same calls get
    503 broker.audit_unavailable (signed for the peer), no record, nothing counted as
    provided: on the FastAPI routes and on the lean path that takes peer lookups under
    ``exchange up``."""
    code = _tax_code(city)
    resp = city.post(
        "/api/v1/federation/publications", json={"resource_codes": [code]}, headers=OPERATOR
    )
    assert resp.status_code == 200, resp.text
    unconditional = ["credit_code", "status", "taxpayer_name"]
    applied = _apply(city, code, "gdzsj", unconditional, operator=OPERATOR_KEY)
    assert applied["status"] == "approved"  # unconditional items: granted at once
    resp = city.patch(
        "/api/v1/departments/swj", json={"base_url": "http://swj.test"}, headers=OPERATOR
    )
    assert resp.status_code == 200, resp.text
    broker, fed = city_ctx.broker, city_ctx.federation
    assert broker is not None
    assert fed is not None
    assert city_ctx.audit is not None
    tax = _Tax()
    broker.lookups = tax  # type: ignore[assignment]
    monkeypatch.setattr(broker.upstream, "stream", tax.stream)
    credential = derive_provider_secret(PROVINCE_MASTER, "gz")
    query = f"/api/v1/federation/topics/{code}/query"
    raw = orjson.dumps({"keys": [_Tax.LINE["credit_code"]], "consumer": "gd-scjgj"})
    page = f"/api/v1/federation/topics/{code}/records"

    def ask() -> list[httpx.Response]:
        headers = _peer_headers(credential, "gz", "POST", query, raw)
        lookup = city.post(query, content=raw, headers=headers)
        return [lookup, city.get(page, headers=_peer_headers(credential, "gz", "GET", page, b""))]

    # Served while the writer runs: the calls are signed right and granted.
    for resp in ask():
        assert resp.status_code == 200, resp.text
        assert _Tax.NAME in resp.text
    provided = fed.provided_total
    assert provided == 2

    city_ctx.audit.stop()
    for resp in ask():
        assert_audit_unavailable(resp)
        assert resp.headers["X-Exchange-Signature"]
        assert _Tax.NAME not in resp.text
    # The lean path (exchange up's front claims a peer lookup before FastAPI) alike.
    dispatch = FederationDispatch(city_ctx)
    headers = _peer_headers(credential, "gz", "POST", query, raw)
    scope = {
        "method": "POST",
        "path": query,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    assert dispatch.match(scope) == code
    assert city.portal is not None
    lean = city.portal.call(dispatch.lean, code, lambda scope, size: True, scope, raw)
    assert lean is not None
    status, lean_headers, out = lean
    resp = httpx.Response(status, headers=lean_headers, content=out)
    assert_audit_unavailable(resp)
    assert resp.headers["X-Exchange-Signature"]
    assert _Tax.NAME not in resp.text
    assert fed.provided_total == provided
