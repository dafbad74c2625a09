"""The platform clock: advancing stays within range, and the operator can reset it."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR, make_department
from typer.testing import CliRunner

from exchange.cli import app as cli
from exchange.clock import MAX_OFFSET, Clock, parse_duration
from exchange.config import Settings
from exchange.context import AppContext
from exchange.db.base import utcnow


@pytest.mark.parametrize("by", ["3000000d", "36526d", "5300w", "99999999999999999999h", "1e9d"])
def test_advancing_past_the_range_is_422_and_stores_nothing(client: TestClient, by: str) -> None:
    resp = client.post("/api/v1/clock/advance", json={"by": by}, headers=OPERATOR)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["detail"]["field"] == "by"
    clock = client.get("/api/v1/clock", headers=OPERATOR)
    assert clock.status_code == 200
    assert clock.json()["offset_seconds"] == 0


def test_the_offset_in_total_is_bounded_too(client: TestClient) -> None:
    half = f"{MAX_OFFSET.days // 2 + 1}d"
    assert client.post("/api/v1/clock/advance", json={"by": half}, headers=OPERATOR).is_success
    resp = client.post("/api/v1/clock/advance", json={"by": half}, headers=OPERATOR)
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "clock_out_of_range"
    # every other call still works
    assert client.get("/api/v1/departments", headers=OPERATOR).status_code == 200


def test_reset_puts_the_clock_back_to_wall_time(client: TestClient) -> None:
    key = make_department(client, "clock-a")
    client.post("/api/v1/clock/advance", json={"by": "10d"}, headers=OPERATOR)
    assert client.post("/api/v1/clock/reset", headers=key).status_code == 403
    resp = client.post("/api/v1/clock/reset", headers=OPERATOR)
    assert resp.status_code == 200
    assert resp.json()["offset_seconds"] == 0
    now = dt.datetime.fromisoformat(resp.json()["now"])
    assert abs((now.replace(tzinfo=None) - utcnow().replace(tzinfo=None)).total_seconds()) < 60


def test_parse_duration_refuses_what_the_clock_cannot_hold() -> None:
    assert parse_duration("2w") == dt.timedelta(weeks=2)
    for text in ("36526d", "1" + "0" * 400 + "s"):
        with pytest.raises(ValueError, match="run ahead"):
            parse_duration(text)


def test_cli_reset_recovers_a_clock_stored_out_of_range(
    settings: Settings, ctx: AppContext
) -> None:
    from exchange.clock import ClockState

    # An offset an earlier version let through: every call reading the clock overflowed.
    with ctx.db.session() as session:
        session.merge(ClockState(id=1, offset_seconds=3_000_000 * 86400.0))
    with pytest.raises(OverflowError):
        Clock(ctx.db).now()
    result = CliRunner().invoke(cli, ["clock", "reset", "--database-url", settings.database_url])
    assert result.exit_code == 0, result.output
    assert "wall time" in result.output
    assert Clock(ctx.db).offset_seconds() == 0
    refused = CliRunner().invoke(
        cli, ["clock", "advance", "40000d", "--database-url", settings.database_url]
    )
    assert refused.exit_code != 0
    assert Clock(ctx.db).offset_seconds() == 0
