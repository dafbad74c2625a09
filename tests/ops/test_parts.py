"""``create_app(parts=…)``: each part alone serves its routes, /healthz and nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR

from exchange.app import _ROUTERS, PARTS, create_app
from exchange.config import Settings
from exchange.context import AppContext
from exchange.ops import router as ops_router
from exchange.web.gateway import part_of

TOPICS = "/api/v1/catalog/topics"
QUERY = "/api/v1/exchange/101001001/000001/query"


@pytest.fixture
def part_client(
    settings: Settings, ctx: AppContext, request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    app = create_app(settings, ctx=ctx, parts=(request.param,))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("part_client", ["broker"], indirect=True)
def test_a_broker_alone_serves_the_exchange_and_not_the_catalog(part_client: TestClient) -> None:
    health = part_client.get("/healthz").json()
    assert health["parts"] == ["broker"]
    assert part_client.get(TOPICS, headers=OPERATOR).status_code == 404
    assert part_client.get("/api/v1/grants", headers=OPERATOR).status_code == 404
    # The broker's own path is answered by the broker (a missing key, not a missing route).
    resp = part_client.post(QUERY, json={"keys": ["x"]})
    assert resp.status_code == 401, resp.text
    assert part_client.get("/metrics", headers=OPERATOR).status_code == 200


@pytest.mark.parametrize("part_client", ["catalog"], indirect=True)
def test_the_catalog_alone_serves_topics_and_units_only(part_client: TestClient) -> None:
    assert part_client.get("/healthz").json()["parts"] == ["catalog"]
    assert part_client.get(TOPICS, headers=OPERATOR).status_code == 200
    assert part_client.get("/api/v1/departments", headers=OPERATOR).status_code == 200
    assert part_client.post(QUERY, json={"keys": ["x"]}).status_code == 404
    assert part_client.get("/api/v1/grants", headers=OPERATOR).status_code == 404
    assert part_client.get("/").status_code == 404


@pytest.mark.parametrize("part_client", ["authz"], indirect=True)
def test_authz_alone_serves_grants_and_the_audit(part_client: TestClient) -> None:
    assert part_client.get("/api/v1/grants", headers=OPERATOR).status_code == 200
    assert part_client.get("/api/v1/audit/verify", headers=OPERATOR).json()["ok"] is True
    assert part_client.get(TOPICS, headers=OPERATOR).status_code == 404
    assert part_client.get("/api/v1/clock", headers=OPERATOR).status_code == 200


def test_an_unknown_part_is_refused(settings: Settings, ctx: AppContext) -> None:
    with pytest.raises(ValueError, match="unknown parts"):
        create_app(settings, ctx=ctx, parts=("brokers",))


def test_the_whole_exchange_serves_every_part(client: TestClient) -> None:
    assert client.get("/healthz").json()["parts"] == list(PARTS)


def test_the_gateway_sends_every_api_route_to_the_part_that_serves_it() -> None:
    # A route added to a part's router but not to the gateway's table (or the other way
    # round) would answer in `exchange up` and 404 behind the portal.
    for part, routers in _ROUTERS.items():
        for router in routers:
            for route in router.routes:
                assert isinstance(route, APIRoute)
                if route.path.startswith("/api/"):
                    assert part_of(route.path) == part, (route.path, part)
    # The clock is on every part; behind the portal it is authz's (deadlines are its).
    clock = [r.path for r in ops_router.routes if isinstance(r, APIRoute) and "clock" in r.path]
    assert clock
    assert all(part_of(p) == "authz" for p in clock)
    assert part_of("/departments/gaj/topics/x/query") == "departments"
    assert part_of("/api/v1/catalogue") is None
    assert part_of("/") is None
