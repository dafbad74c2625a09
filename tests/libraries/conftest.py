"""An exchange and the mock departments on loopback, for gathering through the broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.harness import OPERATOR, key_of, seed_exchange, serve, settings_for
from tests.polling import wait_until

from exchange.app import build_context, create_app
from exchange.context import AppContext
from exchange.departments.app import create_departments_app


@dataclass
class Site:
    url: str
    departments_url: str
    ctx: AppContext
    http: httpx.Client
    app: Any

    def gather(self, *, full: bool = False, library: str | None = None) -> dict[str, Any]:
        """Start a pass and wait for it to end; the status after it."""
        body: dict[str, Any] = {"full": full}
        if library:
            body["library"] = library
        resp = self.http.post("/api/v1/libraries/gather", json=body, headers=OPERATOR)
        assert resp.status_code == 202, resp.text
        return self.wait_idle()

    def wait_idle(self, timeout: float = 120) -> dict[str, Any]:
        def idle() -> dict[str, Any] | None:
            status = self.http.get("/api/v1/libraries/gather", headers=OPERATOR).json()
            return None if status["running"] else dict(status)

        return wait_until(idle, "gathering to finish", within=timeout, every=0.05)

    def approve_pending(self) -> int:
        """Each provider approves the library unit's applications waiting in its inbox."""
        apps = self.http.get(
            "/api/v1/applications",
            params={"role": "consumer", "status": "pending_review", "limit": 100},
            headers=key_of("zsj"),
        ).json()["items"]
        for app in apps:
            resp = self.http.post(
                f"/api/v1/applications/{app['id']}/approve",
                json={},
                headers=key_of(app["provider"]),
            )
            assert resp.status_code == 200, resp.text
        return len(apps)

    def wait_granted(self) -> None:
        """Until the broker's grant cache holds every grant of the library unit."""
        cache = self.ctx.grants

        def granted() -> bool:
            sources = self.http.get("/api/v1/libraries", headers=OPERATOR).json()
            codes = [s["resource_code"] for lib in sources for s in lib["sources"]]
            return all(cache.check("zsj", c, None).allowed for c in codes)

        wait_until(granted, "the grants in the broker's cache", every=0.05)

    def faults(self, code: str, slug: str | None = None, **profile: object) -> None:
        path = f"/departments/_faults/{code}" + (f"/{slug}" if slug else "")
        resp = httpx.put(f"{self.departments_url}{path}", json=profile, headers=OPERATOR)
        assert resp.status_code in (200, 204), resp.text


@contextmanager
def sites(
    tmp: Path, url: str | None = None, **overrides: Any
) -> Iterator[Callable[..., AbstractContextManager[Site]]]:
    """A departments process, and a way to start (and restart) an exchange beside it on one
    database (``url``; a SQLite file in ``tmp`` by default): a small city, small export
    pages so a pass spans several."""
    settings = settings_for(url or f"sqlite:///{tmp}/exchange.db").model_copy(
        update={
            "population": 3_000,
            "enterprises": 600,
            "library_page": 500,
            # A still city: the tests publish the changes they need themselves.
            "city_change_scale": 0.0,
            **overrides,
        }
    )
    seeded = False
    with serve(create_departments_app(settings)) as dept_url:

        @contextmanager
        def start(**changes: Any) -> Iterator[Site]:
            nonlocal seeded
            ctx = build_context(settings.model_copy(update=changes))
            if not seeded:
                seed_exchange(ctx, f"{dept_url}/departments")
                seeded = True
            app = create_app(ctx.settings, ctx=ctx)
            with serve(app) as url, httpx.Client(base_url=url, timeout=30) as http:
                yield Site(url, dept_url, ctx, http, app)
            ctx.db.dispose()

        yield start


@pytest.fixture
def site_factory(tmp_path: Path) -> Iterator[Callable[..., AbstractContextManager[Site]]]:
    with sites(tmp_path) as start:
        yield start


@pytest.fixture
def both_sites(
    tmp_path: Path, database_url: str
) -> Iterator[Callable[..., AbstractContextManager[Site]]]:
    """:func:`site_factory` on each backend (a fresh migrated database)."""
    with sites(tmp_path, database_url) as start:
        yield start


@pytest.fixture(scope="module")
def gathered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """An exchange whose libraries hold the whole (clean) city: every source granted."""
    with sites(tmp_path_factory.mktemp("libraries")) as start, start() as site:
        site.gather()
        site.approve_pending()
        site.wait_granted()
        site.gather()
        yield site
