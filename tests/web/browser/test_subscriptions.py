"""订阅分发 in a real browser: a department sees its subscriptions' backlog and dead letters,
and discards a dead letter from the page."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from tests.serve import Server, exchange_up, free_port
from tests.web.browser.conftest import OPERATOR_KEY, Portal, http

HOUSEHOLD = "101001001/000001"
ITEMS = ["id_number", "name", "birth_date"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A still city (only the test's birth), and a push that fails once is a dead letter."""
    tmp: Path = tmp_path_factory.mktemp("subs")
    with exchange_up(
        tmp,
        f"sqlite:///{tmp}/exchange.db",
        OPERATOR_KEY,
        EXCHANGE_CITY_CHANGE_SCALE="0",
        EXCHANGE_DISTRIBUTION_MAX_ATTEMPTS="1",
        EXCHANGE_DISTRIBUTION_BACKOFF="0.1",
    ) as running:
        yield running


def _subscribe(server: Server) -> tuple[int, int]:
    """wjw: a pull subscription and a push one to an address where nothing listens."""
    with http(server, "wjw") as api:
        today = dt.date.fromisoformat(api.get("/api/v1/clock").json()["today"])
        applied = api.post(
            "/api/v1/applications",
            json={
                "topic": HOUSEHOLD,
                "items": ITEMS,
                "purpose": {"scope": "business_collaboration", "text": "新生儿健康档案"},
                "legal_function": "《母婴保健法》第二十四条",
                "valid_until": (today + dt.timedelta(days=30)).isoformat(),
                "delivery": "subscription",
            },
        )
        assert applied.status_code == 201, applied.text
        ids = []
        for extra in (
            {"delivery": "pull"},
            {"delivery": "push", "endpoint": f"http://127.0.0.1:{free_port()}/"},
        ):
            made = api.post(
                "/api/v1/subscriptions", json={"topic": HOUSEHOLD, "items": ITEMS, **extra}
            )
            assert made.status_code == 201, made.text
            ids.append(int(made.json()["id"]))
    return ids[0], ids[1]


def _stats(server: Server, sub: int) -> dict[str, object]:
    with http(server, "wjw") as api:
        return dict(api.get(f"/api/v1/subscriptions/{sub}").json()["stats"])


def test_backlog_and_dead_letters_are_shown_and_discarded(portal: Portal) -> None:
    pull, push = _subscribe(portal.server)
    born = httpx.post(
        f"{portal.server.url}/departments/_changes/birth",
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    assert born.status_code == 201, born.text
    deadline = time.monotonic() + 60
    while _stats(portal.server, push)["dead_letters"] != 1:
        assert time.monotonic() < deadline, _stats(portal.server, push)
        time.sleep(0.2)

    page = portal.page
    portal.open("wjw", tab="subs")
    pull_row = page.locator(f'#subs-table tr[data-sub="{pull}"]')
    push_row = page.locator(f'#subs-table tr[data-sub="{push}"]')
    expect(pull_row.locator('[data-col="backlog"]')).to_have_text("1")
    expect(pull_row).to_contain_text("拉取")
    expect(push_row.locator('[data-col="dead"]')).to_have_text("1 / 1")
    expect(push_row).to_contain_text("推送")
    push_row.locator('button[data-act="sub-dead"]').click()
    expect(page.locator("#dead-card")).to_contain_text(f"订阅 #{push} 的死信")
    portal.shot("subscriptions-dead-letters")
    page.locator('#dead-card button[data-act="sub-discard"]').click()
    expect(page.locator("#notice")).to_contain_text("已丢弃 1 条")
    expect(push_row.locator('[data-col="dead"]')).to_have_text("0 / 1")
    assert _stats(portal.server, push)["dead_letters"] == 0
