"""One seeded exchange and the mock departments, each on its own loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.harness import OPERATOR, seed_exchange, serve, settings_for

from exchange.app import build_context, create_app
from exchange.broker.service import Broker
from exchange.broker.upstream import UpstreamConfig
from exchange.context import AppContext
from exchange.departments.app import create_departments_app

# Short budgets so fault tests run in well under a second each. A module that tests no
# budget sets its own ``UPSTREAM`` (see ``PATIENT_UPSTREAM``): a cold export on a busy
# machine can pause longer than half a second between reads, which is not what it tests.
E2E_UPSTREAM = UpstreamConfig(
    timeout=0.5, connect_timeout=0.5, retries=1, backoff=0.01, breaker_failures=3, breaker_reset=0.6
)
PATIENT_UPSTREAM = UpstreamConfig(timeout=30.0, connect_timeout=5.0)


@dataclass
class Exchange:
    url: str
    departments_url: str
    ctx: AppContext
    http: httpx.Client
    #: the served app (its front holds the broker's dispatch)
    app: Any = None

    @property
    def broker(self) -> Broker:
        found = self.ctx.broker
        assert found is not None
        return found

    def faults(self, code: str, slug: str | None = None, **profile: object) -> None:
        path = f"/departments/_faults/{code}" + (f"/{slug}" if slug else "")
        if profile:
            resp = httpx.put(f"{self.departments_url}{path}", json=profile, headers=OPERATOR)
        else:
            resp = httpx.delete(f"{self.departments_url}{path}", headers=OPERATOR)
        assert resp.status_code in (200, 204), resp.text


@pytest.fixture(scope="module")
def exchange(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Exchange]:
    tmp: Path = tmp_path_factory.mktemp("e2e")
    settings = settings_for(f"sqlite:///{tmp}/exchange.db")
    with serve(create_departments_app(settings)) as dept_url:
        ctx = build_context(settings)
        ctx.broker_config = getattr(request.module, "UPSTREAM", E2E_UPSTREAM)
        app = create_app(settings, ctx=ctx)
        seed_exchange(ctx, f"{dept_url}/departments")
        with serve(app) as url, httpx.Client(base_url=url, timeout=10) as http:
            yield Exchange(url, dept_url, ctx, http, app)
        ctx.db.dispose()
