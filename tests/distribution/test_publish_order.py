"""On PostgreSQL a topic's change events become visible in id order: a publication takes
its ids only once the one before it has committed, so delivery, which moves a cursor past
the highest id it read, cannot pass over an event committed later with a lower id."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from tests.distribution.conftest import Depts, change, person, wait_for

from exchange.context import AppContext
from exchange.distribution import service
from exchange.distribution.schemas import ChangeEvent


def _waiting_for_a_publication(ctx: AppContext) -> int:
    """Sessions of this database waiting for a topic's publication lock."""
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


def test_a_publication_takes_its_ids_after_the_one_before_it_committed(
    ctx: AppContext, database_url: str, depts: Depts, topic: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: a publication commits before the next one inserts")

    def events(n: int) -> list[ChangeEvent]:
        return [ChangeEvent.model_validate(change(person(n)))]

    first = ctx.db.sessions()
    try:
        earlier = service.accept_changes(
            first, provider="gaj", resource_code=topic, events=events(1)
        )
        later: dict[str, list[int]] = {}

        def publish_next() -> None:
            with ctx.db.session() as session:
                later["ids"] = service.accept_changes(
                    session, provider="gaj", resource_code=topic, events=events(2)
                ).ids

        thread = threading.Thread(target=publish_next)
        thread.start()
        # Without the lock the second publication would insert and commit at once, its
        # event visible while the first one's lower id is not yet: a reader would move
        # its cursor past the first event before it ever saw it.
        wait_for(lambda: _waiting_for_a_publication(ctx) == 1, what="the next publication waits")
        assert "ids" not in later
        first.commit()
    finally:
        first.close()
    thread.join(timeout=30)
    assert later["ids"][0] > earlier.ids[0]
