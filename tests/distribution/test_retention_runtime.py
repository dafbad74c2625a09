"""With a retention set, every exchange process prunes the outbox in passes of its own."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.conftest import OPERATOR
from tests.distribution.conftest import Depts, change, person, publish, wait_for

from exchange.config import Settings
from exchange.context import AppContext
from exchange.distribution.models import ChangeEventRow


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"distribution_retention": 0.01, "distribution_prune_every": 0.05}
    )


def test_the_runtime_prunes_on_its_own(
    client: TestClient, ctx: AppContext, depts: Depts, topic: str
) -> None:
    publish(client, depts["gaj"], topic, [change(person(n)) for n in range(5)])

    def count() -> int:
        with ctx.db.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(ChangeEventRow)) or 0)

    # No subscription holds them back: all but the outbox's newest event go.
    wait_for(lambda: count() == 1, what="the outbox pruned to its newest event")
    metrics = client.get("/metrics", headers=OPERATOR).text
    assert "exchange_distribution_pruned_events_total 4.0" in metrics
