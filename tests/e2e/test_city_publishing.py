"""The mock departments publish their city's changes to the exchange over real HTTP, with
their own keys, and the exchange's outbox takes every kind of change they make."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from tests.e2e.harness import OPERATOR, free_port, seed_exchange, serve, settings_for, topic_code
from tests.polling import wait_until

from exchange.app import build_context, create_app
from exchange.context import AppContext
from exchange.departments.app import DepartmentsApp
from exchange.departments.lifeevents import KINDS
from exchange.distribution.models import ChangeEventRow


@dataclass
class Up:
    url: str
    ctx: AppContext

    @property
    def departments(self) -> DepartmentsApp:
        found = self.ctx.departments
        assert found is not None
        return found


@pytest.fixture
def up(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Up]:
    port = free_port()
    # A still city unless the test names a scale (indirect parameter).
    scale = float(getattr(request, "param", 0.0))
    settings = settings_for(f"sqlite:///{tmp_path}/exchange.db").model_copy(
        # Departments inside, as in `exchange up`.
        update={"mock_departments": True, "port": port, "city_change_scale": scale}
    )
    ctx = build_context(settings)
    app = create_app(settings, ctx=ctx)
    seed_exchange(ctx, f"http://127.0.0.1:{port}/departments")
    with serve(app, port) as url:
        yield Up(url, ctx)
    ctx.db.dispose()


def _outbox(ctx: AppContext) -> list[ChangeEventRow]:
    with ctx.db.sessions() as session:
        return list(session.scalars(select(ChangeEventRow).order_by(ChangeEventRow.id)))


def _wait(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    wait_until(condition, what, within=seconds, every=0.1)


def test_a_birth_reaches_the_exchange_outbox(up: Up) -> None:
    resp = httpx.post(f"{up.url}/departments/_changes/birth", headers=OPERATOR)
    assert resp.status_code == 201, resp.text
    events = {e["topic"]: e for e in resp.json()["events"]}
    child = events["household-registration"]["key"]

    def arrived() -> list[ChangeEventRow]:
        return [r for r in _outbox(up.ctx) if r.key == child]

    _wait(lambda: len(arrived()) == 2, "the birth in the outbox")
    rows = {r.provider: r for r in arrived()}
    assert set(rows) == {"gaj", "wjw"}
    assert rows["gaj"].resource_code == topic_code(up.ctx, "household-registration")
    assert rows["wjw"].resource_code == topic_code(up.ctx, "birth-medical-certificates")
    assert rows["gaj"].kind == "birth"
    assert rows["gaj"].record == events["household-registration"]["record"]
    status = up.departments.publisher
    assert status is not None
    assert status.status()["departments"]["gaj"]["published"] == 1


# 2,000 people and 500 enterprises at 50 times the rates: about 330 events a day.
@pytest.mark.parametrize("up", [50.0], indirect=True)
def test_every_kind_of_change_is_accepted_and_the_clock_drives_them(up: Up) -> None:
    """Each kind once on demand, then a day of events after `clock advance 1d`: all of them
    published, none refused by the exchange's checks (items, types, one datum one source)."""
    for kind in KINDS:
        resp = httpx.post(f"{up.url}/departments/_changes/{kind}", headers=OPERATOR)
        assert resp.status_code in (201, 409), resp.text
    engine = up.departments.changes
    before = engine.status(up.departments.now())["kinds"]
    moved = httpx.post(f"{up.url}/api/v1/clock/advance", json={"by": "1d"}, headers=OPERATOR)
    assert moved.status_code == 200
    publisher = up.departments.publisher
    assert publisher is not None

    def logged() -> int:
        return sum(engine.log.last(d) for d in engine.log.departments)

    def settled() -> bool:
        done = engine.backlog(up.departments.now()) == 0
        return done and all(engine.log.backlog(d) == 0 for d in engine.log.departments)

    _wait(settled, "the day's events applied and published", seconds=240)
    status = publisher.status()["departments"]
    assert sum(s["skipped"] for s in status.values()) == 0, status
    with up.ctx.db.sessions() as session:
        count = session.scalar(select(func.count()).select_from(ChangeEventRow))
    assert count == logged() == sum(s["published"] for s in status.values())
    kinds = {r.kind for r in _outbox(up.ctx)}
    assert {"birth", "death", "tax_paid", "marriage", "enterprise_registered"} <= kinds
    after = engine.status(up.departments.now())["kinds"]
    # The day moved the city: far more tax payments than the one made on demand.
    assert after["tax_payment"]["applied"] > before["tax_payment"]["applied"] + 100
