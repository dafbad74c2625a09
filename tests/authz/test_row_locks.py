"""Two reviewers, a reviewer and a revocation, or a reviewer and the topic's retirement, at
once on PostgreSQL end in one state a serial order could have produced: the decision read
under a row lock (SELECT … FOR UPDATE), the locks taken in one order on every path.

Each test holds the first transaction open in a session of its own (the service call made,
not committed), starts the second through the API in a thread, waits until PostgreSQL shows
that second transaction waiting for a lock, commits the first and checks the outcome. Without
the locks the second read the old row (pending, active) and overwrote the first's result.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from tests.authz.conftest import MARRIAGE, application, apply
from tests.conftest import make_department

from exchange.app import AppContext
from exchange.authn import Principal
from exchange.authz import service
from exchange.authz.models import Application, ApplicationEvent, Grant
from exchange.authz.schemas import Approve
from exchange.catalog import service as catalog_service

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

MZJ = Principal("mzj")


class Second(threading.Thread):
    """The second transaction: one API call, its response kept."""

    def __init__(self, call: Callable[[], httpx.Response]) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.response: httpx.Response | None = None

    def run(self) -> None:
        self.response = self.call()


def wait_until_blocked(ctx: AppContext, deadline: float = 30.0) -> None:
    """Until another backend of this database waits for a lock (polled, not slept)."""
    end = time.monotonic() + deadline
    with ctx.db.engine.connect() as conn:
        while time.monotonic() < end:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            if waiting:
                return
            conn.rollback()  # a fresh snapshot of pg_stat_activity on the next poll
            time.sleep(0.02)
    raise AssertionError("the second transaction never waited for the first's lock")


def race(
    ctx: AppContext,
    first: Callable[[Session], object],
    second: Callable[[], httpx.Response],
    *,
    then: Callable[[Session], object] = lambda _session: None,
) -> httpx.Response:
    """``first`` runs in a transaction held open; ``second`` (an API call) starts in a
    thread and waits for a lock ``first`` holds; ``then`` goes on in the first transaction,
    which commits; the second's response once it ends."""
    with ctx.db.sessions() as session:
        first(session)
        thread = Second(second)
        thread.start()
        wait_until_blocked(ctx)
        then(session)
        session.commit()
    thread.join(timeout=60)
    assert thread.response is not None
    return thread.response


@pytest.fixture
def setup(client: TestClient) -> dict[str, Any]:
    """mzj provides the marriage topic (every item conditional: reviewed); rsj holds a
    grant for id_number and has a second application, for status, pending review."""
    mzj = make_department(client, "mzj", "广州市民政局")
    rsj = make_department(client, "rsj", "广州市人力资源和社会保障局")
    resp = client.post("/api/v1/catalog/topics", json=MARRIAGE, headers=mzj)
    assert resp.status_code == 201, resp.text
    topic = resp.json()["resource_code"]
    first = apply(client, rsj, application(topic, ["id_number"]))
    resp = client.post(f"/api/v1/applications/{first['id']}/approve", json={}, headers=mzj)
    assert resp.status_code == 200, resp.text
    grant_id = resp.json()["grant_id"]
    pending = apply(client, rsj, application(topic, ["status"]))
    assert pending["status"] == "pending_review"
    return {"mzj": mzj, "topic": topic, "grant": grant_id, "pending": pending["id"]}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def approve(session: Session, app_id: int) -> None:
    app = service.get_application(session, app_id, MZJ, for_update=True)
    service.approve(session, app, Approve(), MZJ, now=now(), today=dt.date.today())


def revoke(session: Session, grant_id: int) -> None:
    grant = service.get_grant(session, grant_id, MZJ, for_update=True)
    service.revoke(session, grant, "核查发现超范围使用", MZJ, now=now())


def test_two_reviewers_approve_once(client: TestClient, ctx: AppContext, setup: Any) -> None:
    app_id = setup["pending"]
    response = race(
        ctx,
        lambda s: approve(s, app_id),
        lambda: client.post(
            f"/api/v1/applications/{app_id}/approve", json={}, headers=setup["mzj"]
        ),
    )

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "not_pending"
    with ctx.db.sessions() as s:
        kinds = s.scalars(
            select(ApplicationEvent.kind).where(ApplicationEvent.application_id == app_id)
        ).all()
    assert kinds.count("approved") == 1


def test_an_approval_after_a_revocation_opens_a_new_grant(
    client: TestClient, ctx: AppContext, setup: Any
) -> None:
    revoked_id, app_id = setup["grant"], setup["pending"]
    response = race(
        ctx,
        lambda s: revoke(s, revoked_id),
        lambda: client.post(
            f"/api/v1/applications/{app_id}/approve", json={}, headers=setup["mzj"]
        ),
    )

    assert response.status_code == 200, response.text
    approved = response.json()
    # Serially: the revoked grant stays revoked with its items; the approval is in force.
    assert approved["grant_id"] != revoked_id
    with ctx.db.sessions() as s:
        old = s.get(Grant, revoked_id)
        new = s.get(Grant, approved["grant_id"])
        assert old is not None
        assert new is not None
        assert (old.status, old.items) == ("revoked", ["id_number"])
        assert (new.status, new.items) == ("active", ["status"])
    check = client.get(f"/api/v1/grants/{approved['grant_id']}", headers=setup["mzj"])
    assert check.json()["status"] == "active"


def test_two_revocations_revoke_once(client: TestClient, ctx: AppContext, setup: Any) -> None:
    grant_id = setup["grant"]
    response = race(
        ctx,
        lambda s: revoke(s, grant_id),
        lambda: client.post(
            f"/api/v1/grants/{grant_id}/revoke",
            json={"reason": "另一审核人同时撤销"},
            headers=setup["mzj"],
        ),
    )

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "grant_revoked"
    with ctx.db.sessions() as s:
        kept = s.get(Grant, grant_id)
        assert kept is not None
        assert (kept.status, kept.status_reason) == ("revoked", "核查发现超范围使用")


def test_a_retirement_meeting_an_approval_midway_waits_and_suspends_what_it_granted(
    client: TestClient, ctx: AppContext, setup: Any
) -> None:
    """The approval holds the application and has yet to take the grant; the retirement
    arrives. Taking the grant first and the application second, the retirement would
    deadlock with it (PostgreSQL aborts one); taking them in the approval's order, it waits
    for the application, and then suspends the grant with the items just approved."""
    app_id, grant_id, topic = setup["pending"], setup["grant"], setup["topic"]
    held: dict[str, Application] = {}

    def lock(session: Session) -> None:
        held["app"] = service.get_application(session, app_id, MZJ, for_update=True)

    def finish(session: Session) -> None:
        service.approve(session, held["app"], Approve(), MZJ, now=now(), today=dt.date.today())

    response = race(
        ctx,
        lock,
        lambda: client.post(
            f"/api/v1/catalog/topics/{topic}/retire",
            json={"reason": "由新版婚姻登记目录替代"},
            headers=setup["mzj"],
        ),
        then=finish,
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "retired"
    with ctx.db.sessions() as s:
        approved = s.get(Application, app_id)
        grant = s.get(Grant, grant_id)
        assert approved is not None
        assert grant is not None
        # Serially: approved first (its item joined the grant), then everything suspended.
        assert (approved.status, approved.grant_id) == ("approved", grant_id)
        assert grant.status == "suspended"
        assert sorted(grant.items) == ["id_number", "status"]
        kinds = s.scalars(
            select(ApplicationEvent.kind).where(ApplicationEvent.application_id == app_id)
        ).all()
    assert "topic_retired" not in kinds
    check = client.get(f"/api/v1/grants/{grant_id}", headers=setup["mzj"])
    assert check.json()["status"] == "suspended"


def test_an_approval_after_a_retirement_finds_nothing_pending(
    client: TestClient, ctx: AppContext, setup: Any
) -> None:
    app_id, grant_id, topic = setup["pending"], setup["grant"], setup["topic"]

    def retire(session: Session) -> None:
        found = catalog_service.get_topic_by_code(session, topic)
        catalog_service.retire(session, found, "由新版婚姻登记目录替代", MZJ, now())

    response = race(
        ctx,
        retire,
        lambda: client.post(
            f"/api/v1/applications/{app_id}/approve", json={}, headers=setup["mzj"]
        ),
    )

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "not_pending"
    with ctx.db.sessions() as s:
        closed = s.get(Application, app_id)
        grant = s.get(Grant, grant_id)
        assert closed is not None
        assert grant is not None
        assert closed.status == "returned"
        assert closed.outcomes["status"].outcome == "rejected"
        assert (grant.status, grant.items) == ("suspended", ["id_number"])
