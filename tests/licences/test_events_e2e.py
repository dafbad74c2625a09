"""Over real HTTP, the mock departments inside the exchange: a marriage registered and an
enterprise registered issue their licences through the licence API, signed and verifiable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.e2e.harness import OPERATOR, free_port, seed_exchange, serve, settings_for

from exchange.app import build_context, create_app
from exchange.client import fetch_licence_verifier
from exchange.context import AppContext
from exchange.licences.models import Licence


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[str, AppContext]]:
    port = free_port()
    settings = settings_for(f"sqlite:///{tmp_path}/exchange.db").model_copy(
        update={"mock_departments": True, "port": port, "city_change_scale": 0.0}
    )
    ctx = build_context(settings)
    app = create_app(settings, ctx=ctx)
    seed_exchange(ctx, f"http://127.0.0.1:{port}/departments")
    with serve(app, port) as url:
        yield url, ctx
    ctx.db.dispose()


def _licences(ctx: AppContext, keys: set[str]) -> list[Licence]:
    with ctx.db.sessions() as session:
        return list(session.scalars(select(Licence).where(Licence.holder_id.in_(keys))))


def _wait_for(ctx: AppContext, keys: set[str], n: int) -> list[Licence]:
    deadline = time.monotonic() + 60
    while len(found := _licences(ctx, keys)) < n:
        assert time.monotonic() < deadline, f"{len(found)} of {n} licences issued"
        time.sleep(0.1)
    return found


def test_a_marriage_and_a_registration_issue_their_licences(
    up: tuple[str, AppContext],
) -> None:
    url, ctx = up
    married = httpx.post(f"{url}/departments/_changes/marriage", headers=OPERATOR, timeout=30)
    assert married.status_code == 201, married.text
    spouses = {e["key"] for e in married.json()["events"] if e["topic"] == "marriage-registration"}
    assert len(spouses) == 2
    certificates = _wait_for(ctx, spouses, 2)
    assert {c.type_code for c in certificates} == {"JHZ"}
    assert {c.issuer for c in certificates} == {"mzj"}
    assert {c.content["spouse_id_number"] for c in certificates} == spouses

    opened = httpx.post(
        f"{url}/departments/_changes/enterprise_registration", headers=OPERATOR, timeout=30
    )
    assert opened.status_code == 201, opened.text
    firm = next(
        e["key"] for e in opened.json()["events"] if e["topic"] == "enterprise-registration"
    )
    (licence,) = _wait_for(ctx, {firm}, 1)
    assert (licence.type_code, licence.issuer) == ("YYZZ", "scjgj")

    verifier = fetch_licence_verifier(url)
    for lic in [*certificates, licence]:
        assert verifier.verify(lic.number, lic.code, content=lic.content).ok
