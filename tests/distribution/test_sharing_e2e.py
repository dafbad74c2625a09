"""Two exchange processes on one database share push delivery: every event reaches every
subscription, and no batch is pushed twice (a lease per subscription, claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL and a guarded UPDATE everywhere)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from tests.conftest import OPERATOR_KEY
from tests.distribution.conftest import credential, wait_for
from tests.distribution.test_reliability_e2e import Counting, _publish, _setup
from tests.serve import exchange_up

from exchange.client import PushReceiver
from exchange.security import demo_key

pytestmark = pytest.mark.e2e

SUBSCRIPTIONS = 6


def test_two_processes_share_delivery_without_double_work(
    tmp_path: Path, database_url: str
) -> None:
    env = {
        "EXCHANGE_MOCK_DEPARTMENTS": "false",
        "EXCHANGE_PROVIDER_SECRET": "exms_test",
        "EXCHANGE_DISTRIBUTION_BATCH": "20",
        # Fixed batches of 20 (no growth while behind): many batches to share or kill mid-way.
        "EXCHANGE_DISTRIBUTION_BATCH_MAX": "20",
        "EXCHANGE_DISTRIBUTION_POLL": "0.1",
    }
    wjw = {"Authorization": f"Bearer {demo_key(OPERATOR_KEY, 'wjw')}"}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with ExitStack() as stack:
        inboxes = [Counting() for _ in range(SUBSCRIPTIONS)]
        receivers = [
            PushReceiver(inbox, secret=credential("wjw"), audience="wjw") for inbox in inboxes
        ]
        urls = [stack.enter_context(r.serve()) for r in receivers]
        first = stack.enter_context(exchange_up(tmp_path / "a", database_url, OPERATOR_KEY, **env))
        http = stack.enter_context(httpx.Client(base_url=first.url, timeout=30))
        topic, gaj = _setup(http, f"{urls[0]}/push")
        for url in urls[1:]:
            resp = http.post(
                "/api/v1/subscriptions",
                json={"topic": topic, "delivery": "push", "endpoint": f"{url}/push"},
                headers=wjw,
            )
            assert resp.status_code == 201, resp.text
        stack.enter_context(exchange_up(tmp_path / "b", database_url, OPERATOR_KEY, **env))
        accepted = set(_publish(http, topic, gaj, 0))
        for inbox in inboxes:
            wait_for(lambda i=inbox: i.ids >= accepted, timeout=120, what="every event")
    assert [r.duplicates for r in receivers] == [0] * SUBSCRIPTIONS
