"""Shared fixtures: an exchange app per test on SQLite, and on PostgreSQL when configured.

PostgreSQL tests need ``EXCHANGE_TEST_POSTGRES_URL`` (``.ci/run`` starts a server and sets
it); without it they skip and say so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from exchange.app import build_context, create_app
from exchange.config import Settings
from exchange.context import AppContext
from exchange.db.base import Base
from exchange.db.engine import Database
from exchange.db.registry import import_all_models

OPERATOR_KEY = "exk_operator_test-key"
POSTGRES_URL = os.environ.get("EXCHANGE_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/exchange.db"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: set EXCHANGE_TEST_POSTGRES_URL (.ci/run does)")
    db = Database(POSTGRES_URL)
    import_all_models()
    with db.engine.begin() as conn:
        # Drop leftovers of an earlier, interrupted run before starting clean.
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.dispose()
    yield POSTGRES_URL
    db = Database(POSTGRES_URL)
    Base.metadata.drop_all(db.engine)
    db.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        operator_key=OPERATOR_KEY,
        catalog_profile="core",
        mock_departments=False,
        population=2_000,
        enterprises=500,
    )


@pytest.fixture
def ctx(settings: Settings) -> Iterator[AppContext]:
    context = build_context(settings)
    yield context
    context.db.dispose()


@pytest.fixture
def client(settings: Settings, ctx: AppContext) -> Iterator[TestClient]:
    app = create_app(settings, ctx=ctx)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


OPERATOR = auth(OPERATOR_KEY)


def make_department(
    client: TestClient, code: str, name: str | None = None, **extra: Any
) -> dict[str, str]:
    """Register a department through the API and return its auth headers."""
    body = {"code": code, "name": name or f"测试部门{code}", "kind": "municipal", **extra}
    resp = client.post("/api/v1/departments", json=body, headers=OPERATOR)
    assert resp.status_code == 201, resp.text
    return auth(resp.json()["api_key"])
