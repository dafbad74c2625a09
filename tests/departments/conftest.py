"""Shared fixtures: one small city and the department app built from the real services/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from tests.signing import ExchangeSigned

from exchange.config import Settings
from exchange.departments.app import DepartmentsApp, create_departments_app
from exchange.departments.city import City
from exchange.departments.definitions import DepartmentDefinition, load_definitions
from exchange.departments.faults import FaultProfile

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_KEY = "test-operator-key"
PROVIDER_SECRET = "test-provider-secret"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def city() -> City:
    return City(seed=2020, population=100_000, enterprises=20_000)


@pytest.fixture(scope="session")
def definitions() -> dict[str, DepartmentDefinition]:
    return load_definitions(ROOT / "services")


@pytest.fixture
def settings() -> Settings:
    return Settings(
        operator_key=OPERATOR_KEY,
        provider_secret=PROVIDER_SECRET,
        services_dir=ROOT / "services",
        catalog_dir=ROOT / "catalog",
    )


@pytest.fixture
def app(
    settings: Settings, definitions: dict[str, DepartmentDefinition], city: City
) -> DepartmentsApp:
    # Default profiles add latency and rare errors; tests start from clean behaviour.
    clean = {c: d.model_copy(update={"faults": FaultProfile()}) for c, d in definitions.items()}
    return create_departments_app(settings, definitions=clean, city=city)


@pytest.fixture
async def client(app: DepartmentsApp) -> AsyncIterator[httpx.AsyncClient]:
    # Signed as the exchange signs its calls: the departments answer nothing else.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://dept.test",
        auth=ExchangeSigned(PROVIDER_SECRET),
    ) as c:
        yield c


@pytest.fixture
def operator() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_KEY}"}
