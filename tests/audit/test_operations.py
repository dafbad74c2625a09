"""运行监测: the operator's operations reading joins the daily roll-up, the broker's tallies,
review deadlines and grant validity."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from tests.authz.conftest import advance, application, apply, depts, topics  # noqa: F401
from tests.conftest import OPERATOR

from exchange.audit.models import AuditVolume
from exchange.audit.operations import DAYS, side_of
from exchange.broker.metrics import BrokerMetrics
from exchange.context import AppContext


def _reading(client: TestClient) -> dict[str, object]:
    resp = client.get("/api/v1/audit/operations", headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    out: dict[str, object] = resp.json()
    return out


def test_only_the_operator_reads_operations(
    client: TestClient,
    depts: dict[str, dict[str, str]],  # noqa: F811
) -> None:
    resp = client.get("/api/v1/audit/operations", headers=depts["gaj"])
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "operator_only"


def test_volume_by_day_department_and_group(
    client: TestClient,
    ctx: AppContext,
    topics: dict[str, str],  # noqa: F811
) -> None:
    today = dt.date.fromisoformat(_reading(client)["day"])  # type: ignore[arg-type]
    with ctx.db.session() as session:
        session.add_all(
            [
                AuditVolume(
                    day=today,
                    consumer="rsj",
                    provider="gaj",
                    resource_code=topics["person"],
                    calls=3,
                    records=30,
                ),
                AuditVolume(
                    day=today,
                    consumer="rsj",
                    provider="gaj",
                    resource_code=topics["secret"],
                    calls=1,
                    records=5,
                ),
                AuditVolume(
                    day=today - dt.timedelta(days=2),
                    consumer="swj",
                    provider="mzj",
                    resource_code=topics["marriage"],
                    calls=2,
                    records=7,
                ),
            ]
        )
    r = _reading(client)
    assert r["today"] == {"calls": 4, "records": 35}
    assert r["total"] == {"calls": 6, "records": 42}
    days = r["days"]
    assert isinstance(days, list)
    assert len(days) == DAYS
    assert days[-1] == {"day": today.isoformat(), "calls": 4, "records": 35}
    assert days[-3]["records"] == 7
    assert r["by_provider"] == [{"code": "gaj", "calls": 4, "records": 35}]
    assert r["by_group"] == {
        "basic": {"calls": 3, "records": 30},
        "departmental": {"calls": 1, "records": 5},
    }


def test_reviews_due_and_grants_expiring_follow_the_platform_clock(
    client: TestClient,
    depts: dict[str, dict[str, str]],  # noqa: F811
    topics: dict[str, str],  # noqa: F811
) -> None:
    rsj = depts["rsj"]
    apply(client, rsj, application(topics["marriage"], ["status"], days=20))
    apply(client, rsj, application(topics["person"], ["name"], days=10))
    r = _reading(client)
    assert r["reviews"] == {"pending": 1, "due_soon": 0, "overdue": 0}
    assert r["grants"] == {"active": 1, "expiring": 1, "expired": 0}
    advance(client, "3w")
    r = _reading(client)
    assert r["reviews"] == {"pending": 1, "due_soon": 0, "overdue": 1}
    assert r["grants"] == {"active": 0, "expiring": 0, "expired": 1}


def test_broker_tallies_by_side_and_provider() -> None:
    metrics = BrokerMetrics()
    metrics.observe("query", "ok", 0.010, "gaj")
    metrics.observe("query", "ok", 0.030, "gaj")
    metrics.observe("query", "provider.timeout", 2.0, "rsj")
    metrics.observe("query", "client.item_not_granted", 0.001, "gaj")
    metrics.observe("query", "client.bad_key", 0.001)
    assert metrics.outcomes == {
        "ok": 2,
        "provider.timeout": 1,
        "client.item_not_granted": 1,
        "client.bad_key": 1,
    }
    gaj, rsj = metrics.providers["gaj"], metrics.providers["rsj"]
    assert (gaj.calls, gaj.errors) == (3, 0)
    assert abs(gaj.slowest - 0.030) < 1e-9
    assert (rsj.calls, rsj.errors) == (1, 1)
    assert [side_of(o) for o in metrics.outcomes] == ["ok", "provider", "client", "client"]
