"""Shared fixtures: an exchange app per test on SQLite, and on PostgreSQL when configured.

PostgreSQL tests need ``EXCHANGE_TEST_POSTGRES_URL`` (``.ci/run`` starts a server and sets
it); without it they skip and say so.

Every test's database has the migrated schema (the Alembic revisions, not ``create_all``):
on SQLite the revisions run once per session into a template file each test copies
(measured: upgrading an empty file costs ~27 ms, a copy ~1 ms); on PostgreSQL the schema is
upgraded once and each test starts by emptying the tables the one before wrote to
(``tests.databases.reset_postgres``; a changed schema is rebuilt).

Under pytest-xdist (``-n 2``) each worker has its own PostgreSQL
database, ``<name>_gw0`` …, and ``EXCHANGE_TEST_POSTGRES_URL`` is rewritten to it here, so
test modules and the exchanges they start as subprocesses use the worker's database too.
SQLite files, ports and state directories are per test already (``tmp_path``, free ports).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.databases import empty_postgres, reset_postgres, worker_postgres_url

from exchange.app import build_context, create_app
from exchange.audit.handover import AuditUnavailable
from exchange.config import Settings
from exchange.context import AppContext
from exchange.db import migrate

OPERATOR_KEY = "exk_operator_test-key"
POSTGRES_URL = worker_postgres_url(os.environ.get("EXCHANGE_TEST_POSTGRES_URL"))
if POSTGRES_URL:
    os.environ["EXCHANGE_TEST_POSTGRES_URL"] = POSTGRES_URL

# Tests run at the machine's real date. From mid-December a ten-working-day deadline runs
# into a year the chinese-calendar package may not cover yet: the exchange's default
# (count Monday-Friday there) is what the tests use; a developer's environment asking to
# refuse must not leak in. The refusal itself is tested with the setting explicit.
os.environ["EXCHANGE_CALENDAR_UNCOVERED"] = "weekdays"


__all__ = ["POSTGRES_URL", "empty_postgres", "fresh_database", "make_department"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file upgraded to head once, for tests to copy."""
    path = tmp_path_factory.mktemp("schema") / "head.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(autouse=True)
def audit_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The audit signing key and checkpoint mirror of this test alone.

    By default both live in the state dir, which for PostgreSQL is the shared ./.exchange:
    a mirror outliving the database a test dropped would rightly report the log deleted.
    Exchanges started as subprocesses inherit the same variables.
    """
    state = tmp_path / "audit-state"
    monkeypatch.setenv("EXCHANGE_AUDIT_KEY_FILE", str(state / "audit-signing.key"))
    monkeypatch.setenv("EXCHANGE_AUDIT_MIRROR", str(state / "audit-checkpoints.ndjson"))
    monkeypatch.setenv("EXCHANGE_LICENCE_KEY_FILE", str(state / "licence-signing.key"))
    return state


@contextmanager
def fresh_database(backend: str, tmp_path: Path, template: Path | None = None) -> Iterator[str]:
    """A database of ``backend`` ("sqlite" or "postgres") with the migrated schema and no
    rows, for as long as the block (an empty SQLite file is upgraded when an app starts)."""
    if backend == "sqlite":
        if template is not None:
            shutil.copyfile(template, tmp_path / "exchange.db")
        yield f"sqlite:///{tmp_path}/exchange.db"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: set EXCHANGE_TEST_POSTGRES_URL (.ci/run does)")
    # Emptied before, not after: the leftovers of an interrupted run go too, and a test
    # that uses the database directly (tests/db, the compose topology) empties it itself.
    reset_postgres(POSTGRES_URL)
    yield POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A database of each backend with the migrated schema and no rows."""
    with fresh_database(request.param, tmp_path, sqlite_template) as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        operator_key=OPERATOR_KEY,
        # Given, not generated: on PostgreSQL the state directory would be ./.exchange.
        provider_secret="exms_test",
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


def assert_audit_unavailable(resp: httpx.Response) -> dict[str, Any]:
    """``resp`` is the one answer of a call the exchange could not audit (every service
    alike): 503 ``broker.audit_unavailable``, the one advice, the reason in ``detail``."""
    assert resp.status_code == 503, resp.text
    error: dict[str, Any] = resp.json()["error"]
    assert error["code"] == "broker.audit_unavailable"
    assert error["message"] == AuditUnavailable.ADVICE
    assert error["detail"]["side"] == "broker"
    assert error["detail"]["reason"]
    return error
