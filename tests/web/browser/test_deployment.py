"""A non-demo deployment: a department signs in once with its key; the key is never shown,
the demo picker is gone, and keys in the address are ignored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from tests.serve import Server, exchange_up
from tests.web.browser.conftest import OPERATOR_KEY, Portal, key_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("deployed")
    with exchange_up(
        tmp, f"sqlite:///{tmp}/exchange.db", OPERATOR_KEY, EXCHANGE_PORTAL_DEMO="false"
    ) as running:
        yield running


def test_a_department_signs_in_once(portal: Portal) -> None:
    page = portal.open(keys=("operator",))  # ignored here
    expect(page.locator("#who")).to_contain_text("未登录")
    expect(page.locator("#role")).to_have_count(0)
    page.fill("#key", key_of("gaj"))
    page.click('form[data-form="sign-in"] button')
    portal.expect_identity("gaj")
    # Signed in: no key field at all, and the key is nowhere on the page.
    expect(page.locator("#key")).to_have_count(0)
    assert key_of("gaj") not in page.content()
    page.reload()
    portal.expect_identity("gaj")
    page.click('button[data-act="sign-out"]')
    expect(page.locator("#who")).to_contain_text("未登录")
    assert page.evaluate("localStorage.getItem('exchange.recent')") is None


def test_keys_in_the_address_are_ignored(portal: Portal) -> None:
    page = portal.page
    page.goto(f"{portal.server.url}/#key={key_of('gaj')}&tab=review")
    expect(page.locator("#who")).to_contain_text("未登录")
    assert page.evaluate("localStorage.getItem('exchange.key')") is None
