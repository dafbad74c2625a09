"""Publishing changes: ``POST /api/v1/exchange/{front}/{seq}/changes`` and
``service.accept_changes`` (outbox in the caller's transaction, 一数一源, item checks)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.conftest import OPERATOR
from tests.distribution.conftest import Depts, change, person, publish

from exchange.context import AppContext
from exchange.distribution import publishing, service
from exchange.distribution.models import ChangeEventRow
from exchange.distribution.schemas import ChangeEvent
from exchange.errors import ExchangeError


def _count(ctx: AppContext) -> int:
    with ctx.db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(ChangeEventRow)) or 0)


def test_provider_publishes_changes_into_the_outbox(
    client: TestClient, ctx: AppContext, depts: Depts, topic: str
) -> None:
    events = [change(person(1)), change(person(2), kind="updated")]
    ids = publish(client, depts["gaj"], topic, events)
    assert len(ids) == 2
    assert ids[0] < ids[1]
    with ctx.db.sessions() as session:
        rows = session.scalars(select(ChangeEventRow).order_by(ChangeEventRow.id)).all()
    assert [(r.id, r.kind, r.key, r.provider) for r in rows] == [
        (ids[0], "birth", person(1)["id_number"], "gaj"),
        (ids[1], "updated", person(2)["id_number"], "gaj"),
    ]
    assert rows[0].record == person(1)
    assert rows[0].changed_at == dt.datetime.fromisoformat(events[0]["changed_at"])
    # Audited, hash-chained with the rest: who published what, how many records.
    entries = client.get(
        "/api/v1/audit/entries", params={"resource_code": topic}, headers=OPERATOR
    ).json()["entries"]
    published = [e for e in entries if e["kind"] == "changes"]
    assert len(published) == 1
    assert published[0]["consumer"] == "gaj"
    assert published[0]["records"] == 2
    assert published[0]["outcome"] == "ok"
    assert client.get("/api/v1/audit/verify", headers=OPERATOR).json()["ok"] is True


def test_deletion_may_omit_the_record(client: TestClient, depts: Depts, topic: str) -> None:
    event = {
        "key": person(3)["id_number"],
        "kind": "deleted",
        "changed_at": "2026-12-01T08:00:00+08:00",
    }
    assert len(publish(client, depts["gaj"], topic, [event])) == 1


def test_only_the_source_publishes(
    client: TestClient, ctx: AppContext, depts: Depts, topic: str
) -> None:
    resp = client.post(
        f"/api/v1/exchange/{topic}/changes",
        json={"events": [change(person(1))]},
        headers=depts["wjw"],
    )
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "not_the_source"
    assert resp.json()["error"]["detail"]["provider"] == "gaj"
    resp = client.post(
        f"/api/v1/exchange/{topic}/changes", json={"events": [change(person(1))]}, headers=OPERATOR
    )
    assert resp.status_code == 403
    assert _count(ctx) == 0
    # The refusal is audited too.
    entries = client.get(
        "/api/v1/audit/entries", params={"outcome": "not_the_source"}, headers=OPERATOR
    ).json()["entries"]
    assert [e["consumer"] for e in entries] == ["wjw"]


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (change(person(1, photo_url="x")), 422, "unknown_item"),
        (change(person(1, household_size="three")), 422, "bad_item_value"),
        (change(person(1, household_size=True)), 422, "bad_item_value"),
        ({**change(person(1)), "key": "440104000000000000"}, 422, "key_mismatch"),
        ({**change(person(1)), "record": None}, 422, "record_required"),
        ({**change(person(1)), "changed_at": "2026-12-01T08:00:00"}, 422, None),
        ({**change(person(1)), "kind": "Birth!"}, 422, None),
        ({**change(person(1)), "extra": 1}, 422, None),
        ({**change(person(1)), "key": ""}, 422, None),
    ],
)
def test_bad_events_are_refused_whole(
    client: TestClient,
    ctx: AppContext,
    depts: Depts,
    topic: str,
    event: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    good = change(person(9))
    resp = client.post(
        f"/api/v1/exchange/{topic}/changes", json={"events": [good, event]}, headers=depts["gaj"]
    )
    assert resp.status_code == status, resp.text
    if code is not None:
        assert resp.json()["error"]["code"] == code
        assert resp.json()["error"]["detail"]["index"] == 1
    assert _count(ctx) == 0


@pytest.mark.parametrize("body", [{}, {"events": []}, {"events": "x"}, [1], {"events": [{}]}])
def test_schema_errors(client: TestClient, depts: Depts, topic: str, body: Any) -> None:
    resp = client.post(f"/api/v1/exchange/{topic}/changes", json=body, headers=depts["gaj"])
    assert resp.status_code == 422
    assert "error" in resp.json()


def test_unknown_and_retired_topics(client: TestClient, depts: Depts, topic: str) -> None:
    body = {"events": [change(person(1))]}
    resp = client.post("/api/v1/exchange/101001001/999999/changes", json=body, headers=depts["gaj"])
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "topic_not_found"
    assert client.post(f"/api/v1/exchange/{topic}/changes", json=body).status_code == 401
    retire = client.post(
        f"/api/v1/catalog/topics/{topic}/retire", json={"reason": "合并"}, headers=depts["gaj"]
    )
    assert retire.status_code == 200, retire.text
    resp = client.post(f"/api/v1/exchange/{topic}/changes", json=body, headers=depts["gaj"])
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "topic_retired"


def test_accept_changes_writes_in_the_callers_transaction(
    ctx: AppContext, client: TestClient, depts: Depts, topic: str
) -> None:
    events = [ChangeEvent.model_validate(change(person(n))) for n in range(5)]
    with ctx.db.sessions() as session:
        ids = service.accept_changes(
            session, provider="gaj", resource_code=topic, events=events
        ).ids
        assert len(ids) == 5
        session.rollback()  # the caller's transaction decides
    assert _count(ctx) == 0
    with ctx.db.session() as session:
        ids = service.accept_changes(
            session, provider="gaj", resource_code=topic, events=events
        ).ids
    assert _count(ctx) == 5
    assert ids == sorted(ids)
    with ctx.db.sessions() as session, pytest.raises(ExchangeError) as caught:
        service.accept_changes(session, provider="wjw", resource_code=topic, events=events)
    assert caught.value.code == "not_the_source"


def test_a_retried_publish_answers_the_same_ids(
    client: TestClient, ctx: AppContext, depts: Depts, topic: str
) -> None:
    """The source's event id is the idempotency key: a call retried after a timeout (the
    first one committed, its answer lost) writes nothing new and answers the same ids."""
    events = [{**change(person(n)), "event_id": f"gaj-2026-{n:06d}"} for n in range(3)]
    first = client.post(
        f"/api/v1/exchange/{topic}/changes", json={"events": events}, headers=depts["gaj"]
    )
    assert first.status_code == 202, first.text
    assert first.json()["duplicates"] == 0
    again = client.post(
        f"/api/v1/exchange/{topic}/changes", json={"events": events}, headers=depts["gaj"]
    )
    assert again.status_code == 202, again.text
    assert again.json()["event_ids"] == first.json()["event_ids"]
    assert again.json()["duplicates"] == 3
    assert _count(ctx) == 3
    # A retry that carries one more change writes only that one, answered in its place.
    extra = {**change(person(9)), "event_id": "gaj-2026-000009"}
    mixed = client.post(
        f"/api/v1/exchange/{topic}/changes",
        json={"events": [events[1], extra, events[2]]},
        headers=depts["gaj"],
    ).json()
    ids = first.json()["event_ids"]
    assert mixed["event_ids"][0] == ids[1]
    assert mixed["event_ids"][2] == ids[2]
    assert mixed["event_ids"][1] > ids[2]
    assert mixed["duplicates"] == 2
    assert _count(ctx) == 4
    # Events without an id are not deduplicated (the caller asked for no idempotency).
    plain = change(person(20))
    publish(client, depts["gaj"], topic, [plain])
    publish(client, depts["gaj"], topic, [plain])
    assert _count(ctx) == 6


def test_an_event_id_reused_for_another_change_is_refused(
    client: TestClient, ctx: AppContext, depts: Depts, topic: str
) -> None:
    event = {**change(person(1)), "event_id": "gaj-1"}
    publish(client, depts["gaj"], topic, [event])
    other = {**change(person(2)), "event_id": "gaj-1"}
    resp = client.post(
        f"/api/v1/exchange/{topic}/changes", json={"events": [other]}, headers=depts["gaj"]
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "event_id_reused"
    assert resp.json()["error"]["detail"]["index"] == 0
    twice = client.post(
        f"/api/v1/exchange/{topic}/changes",
        json={"events": [{**change(person(3)), "event_id": "x"}] * 2},
        headers=depts["gaj"],
    )
    assert twice.status_code == 422
    assert twice.json()["error"]["code"] == "duplicate_event_id"
    assert _count(ctx) == 1


def test_concurrent_retries_of_one_event_write_it_once(
    client: TestClient, ctx: AppContext, depts: Depts, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two calls carrying the same new event id at once: both look it up before either
    commits, the unique index refuses the later insert, and that call's retry finds the
    event held and answers its id. The race is staged: the first lookup misses."""
    event = {**change(person(1)), "event_id": "gaj-race"}
    ids = publish(client, depts["gaj"], topic, [event])
    real = publishing._held
    calls: list[int] = []

    def racing(session: Any, resource_code: str, events: Any) -> dict[str, int]:
        calls.append(1)
        return {} if len(calls) == 1 else real(session, resource_code, events)

    monkeypatch.setattr(publishing, "_held", racing)
    resp = client.post(
        f"/api/v1/exchange/{topic}/changes", json={"events": [event]}, headers=depts["gaj"]
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["event_ids"] == ids
    assert resp.json()["duplicates"] == 1
    assert len(calls) == 2
    assert _count(ctx) == 1


def test_a_body_that_is_not_the_schema_is_a_422_naming_the_field(
    client: TestClient, depts: Depts, topic: str
) -> None:
    """The route parses its body itself (pydantic-core's JSON parser): errors still come
    in the one error shape, with the field's place in the body."""
    url = f"/api/v1/exchange/{topic}/changes"
    headers = {**depts["gaj"], "Content-Type": "application/json"}
    for content, field in (
        (b"{not json", ""),
        (b'{"events": []}', "events"),
        (
            b'{"events": [{"key": "k", "kind": "Birth!", "changed_at": "2026-12-01T08:00:00Z"}]}',
            "events.0.kind",
        ),
        (
            b'{"events": [{"key": "k", "kind": "birth", "changed_at": "2026-12-01T08:00:00"}]}',
            "events.0.changed_at",
        ),
    ):
        resp = client.post(url, content=content, headers=headers)
        assert resp.status_code == 422, (content, resp.text)
        error = resp.json()["error"]
        assert error["code"] == "validation_failed"
        assert error["detail"]["field"].startswith(field), (content, error)
    assert (
        client.post(url, content=b"{}", headers={"Content-Type": "application/json"}).status_code
        == 401
    )
