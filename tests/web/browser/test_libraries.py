"""The base libraries view (基础信息库) in a real browser: gathering progress per source and
in total, a pass started from the page, and the conflict list read and resolved by the
operator and by a source department (each seeing only what it may)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.serve import Server, exchange_up
from tests.web.browser.conftest import OPERATOR_KEY, Portal, http


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A small city (the whole of it gathered in seconds), its libraries gathered with two
    noisy sources so the quality check has conflicts to list."""
    tmp = tmp_path_factory.mktemp("browser-libraries")
    with exchange_up(
        tmp,
        f"sqlite:///{tmp}/exchange.db",
        OPERATOR_KEY,
        EXCHANGE_POPULATION="3000",
        EXCHANGE_ENTERPRISES="600",
        EXCHANGE_CITY_CHANGE_SCALE="0",
    ) as running:
        with http(running, "operator") as op:
            _gather(op, full=False)  # files the library unit's applications
            _approve_and_wait(running, op)
            for code, slug, rate in (
                ("rsj", "social-insurance-enrolment", 0.2),
                ("gaj", "household-registration", 0.05),
            ):
                resp = op.put(f"/departments/_faults/{code}/{slug}", json={"noise_rate": rate})
                assert resp.status_code in (200, 204), resp.text
            last = _gather(op, full=True)
            assert last["conflicts"]["person"] > 0, last
        yield running


def _gather(op: httpx.Client, *, full: bool) -> dict[str, Any]:
    resp = op.post("/api/v1/libraries/gather", json={"full": full})
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 120
    while True:
        status = op.get("/api/v1/libraries/gather").json()
        if not status["running"]:
            last: dict[str, Any] = status["last"]
            return last
        assert time.monotonic() < deadline, "gathering did not finish"
        time.sleep(0.1)


def _approve_and_wait(server: Server, op: httpx.Client) -> None:
    with http(server, "zsj") as zsj:
        apps = zsj.get(
            "/api/v1/applications",
            params={"role": "consumer", "status": "pending_review", "limit": 100},
        ).json()["items"]
    for app in apps:
        with http(server, app["provider"]) as owner:
            resp = owner.post(f"/api/v1/applications/{app['id']}/approve", json={})
            assert resp.status_code == 200, resp.text
    libs = op.get("/api/v1/libraries").json()
    codes = [s["resource_code"] for lib in libs for s in lib["sources"]]
    deadline = time.monotonic() + 30
    while not all(
        op.post("/api/v1/authz/check", json={"consumer": "zsj", "topic": c}).json()["allowed"]
        for c in codes
    ):
        assert time.monotonic() < deadline, "the library unit's grants never took effect"
        time.sleep(0.1)


def test_progress_and_conflicts_for_the_operator(portal: Portal) -> None:
    page = portal.page
    portal.open("operator", tab="libraries")
    expect(page.locator("#lib-total")).to_contain_text("两库累计汇集")
    person = page.locator("#lib-sources-person")
    expect(person).to_contain_text("户籍")
    expect(person).to_contain_text("已完成")
    expect(person.locator("progress").first).to_have_attribute("value", "100")
    expect(page.locator("#lib-sources-enterprise")).to_contain_text("已完成")
    expect(page.locator("#lib-pass")).to_contain_text("上一轮（全量）")
    table = page.locator("#lib-conflicts-table")
    expect(table).to_contain_text("两源不一致")
    expect(page.locator("#lib-c-total")).to_contain_text("共")
    portal.shot("libraries")

    # Resolve the first open conflict from the list.
    subject = table.locator("tbody tr").first.locator("td").nth(1).inner_text()
    table.locator('button[data-act="lib-resolve"]').first.click()
    page.select_option("#lib-r-resolution", "source_confirmed")
    page.fill("#lib-r-note", "以公安户籍为准")
    page.click('form[data-form="lib-resolve"] button[type="submit"]')
    expect(page.locator("#notice")).to_contain_text("以源头为准")
    page.select_option("#lib-c-status", "resolved")
    page.click('form[data-form="lib-conflicts"] button[type="submit"]')
    expect(table).to_contain_text(subject)
    expect(table).to_contain_text("以公安户籍为准")
    expect(table).to_contain_text("以源头为准")

    # A pass started from the page is followed until it ends.
    page.click('button[data-act="lib-gather"][data-full="false"]')
    expect(page.locator("#notice")).to_contain_text("增量汇集已开始")
    expect(page.locator("#lib-pass")).to_contain_text("上一轮（增量）")


def test_a_source_department_sees_its_own_conflicts_only(portal: Portal) -> None:
    page = portal.page
    portal.open("rsj", tab="libraries")
    expect(page.locator("#lib-sources-person")).to_contain_text("已完成")
    table = page.locator("#lib-conflicts-table")
    expect(table).to_contain_text("两源不一致")
    # No gathering controls, and no call to the operator's gathering status.
    expect(page.locator('button[data-act="lib-gather"]')).to_have_count(0)
    assert not any("/libraries/gather" in url for url in portal.watch.requests)
    rows = table.locator("tbody tr")
    for i in range(rows.count()):
        expect(rows.nth(i)).to_contain_text("人力资源")
    portal.open("swj", tab="libraries")
    expect(table).to_contain_text("没有冲突")
