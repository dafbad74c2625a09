"""Feeds read by cursor (the catalog's change feed, the federation feed) become visible in
cursor order on PostgreSQL: a writer takes its cursor only once the writer before it has
committed, so a reader, which moves past the highest cursor it read, cannot pass over a row
committed later with a lower one. (The per-topic change events: tests/distribution.)"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session
from tests.conftest import make_department
from tests.polling import wait_until

from exchange.authn import OPERATOR, Principal
from exchange.catalog import service as catalog
from exchange.catalog.models import Change
from exchange.context import AppContext
from exchange.db.feeds import Feed, in_cursor_order
from exchange.federation import service as federation
from exchange.federation.models import FeedEntry

NOW = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


def _topic(client: TestClient, headers: dict[str, str], name: str, field: str) -> str:
    spec = {
        "category": "101001001",
        "group": "basic",
        "name": name,
        "provider": "gaj",
        "abstract": f"{name}。",
        "resource_type": "interface",
        "items": [
            {
                "field": "id_number",
                "name": "公民身份号码",
                "sharing_type": "unconditional",
                "is_key": True,
            },
            {"field": field, "name": name, "sharing_type": "unconditional"},
        ],
        "sharing": {"type": "unconditional", "usage_scopes": ["data_verification"]},
        "update_cycle": "daily",
    }
    resp = client.post("/api/v1/catalog/topics", json=spec, headers=headers)
    assert resp.status_code == 201, resp.text
    code: str = resp.json()["resource_code"]
    return code


def _waiting_for_a_feed(ctx: AppContext) -> int:
    with ctx.db.sessions() as session:
        return int(
            session.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"
                )
            )
            or 0
        )


def _retire(session: Session, code: str) -> int:
    topic = catalog.get_topic_by_code(session, code)
    catalog.retire(session, topic, "superseded", Principal(topic.provider), NOW)
    session.flush()
    return int(session.scalar(select(func.max(Change.cursor))) or 0)


def _publish(session: Session, code: str) -> int:
    federation.publish(session, [code], Principal(OPERATOR), NOW)
    session.flush()
    return int(session.scalar(select(func.max(FeedEntry.cursor))) or 0)


@pytest.mark.parametrize("write", [_retire, _publish], ids=["catalog changes", "federation feed"])
def test_the_next_writer_of_a_feed_takes_its_cursor_after_the_one_before_committed(
    client: TestClient, ctx: AppContext, database_url: str, write: Callable[[Session, str], int]
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: a transaction commits before the next one inserts")
    gaj = make_department(client, "gaj", "广州市公安局")
    first_code = _topic(client, gaj, "户籍地址", "address")
    second_code = _topic(client, gaj, "兵役状况", "military_service")
    first = ctx.db.sessions()
    try:
        earlier = write(first, first_code)
        later: dict[str, int] = {}

        def write_next() -> None:
            with ctx.db.session() as session:
                later["cursor"] = write(session, second_code)

        thread = threading.Thread(target=write_next)
        thread.start()
        wait_until(lambda: _waiting_for_a_feed(ctx) == 1, "the next writer waits")
        assert "cursor" not in later
        first.commit()
    finally:
        first.close()
    thread.join(timeout=30)
    assert later["cursor"] > earlier


def test_a_transaction_takes_a_feed_s_lock_once(ctx: AppContext, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the lock is PostgreSQL's")
    statements: list[str] = []

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(ctx.db.engine, "before_cursor_execute", seen)
    try:
        with ctx.db.sessions() as session:
            for _ in range(3):
                in_cursor_order(session, Feed.CATALOG_CHANGES)
            in_cursor_order(session, Feed.FEDERATION_FEED)
            session.rollback()
            in_cursor_order(session, Feed.CATALOG_CHANGES)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", seen)
    locks = [s for s in statements if "pg_advisory_xact_lock" in s]
    # once per feed in the first transaction, once more in the next
    assert len(locks) == 3
