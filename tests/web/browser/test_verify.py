"""信息核验 in a real browser: a bank, holding no grant, checks a citizen's declared name
and address against household registration from the 订阅分发 tab; the page shows match
and mismatch per item and never the source's value."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect
from tests.web.browser.conftest import OPERATOR_KEY, Portal

HOUSEHOLD = "101001001/000001"


def test_a_bank_verifies_a_declared_name_and_address(portal: Portal) -> None:
    born = httpx.post(
        f"{portal.server.url}/departments/_changes/birth",
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        timeout=30,
    )
    assert born.status_code == 201, born.text
    child = next(e for e in born.json()["events"] if e["topic"] == "household-registration")
    record = child["record"]
    page = portal.page
    portal.open("icbc", tab="subs")
    page.fill("#verify-topic", HOUSEHOLD)
    page.fill("#verify-key", child["key"])
    page.fill(
        "#verify-lines",
        f"name={record['name']}\nregistered_address=广州市越秀区不存在路1号",
    )
    page.click('form[data-form="verify-claims"] button[type="submit"]')
    card = page.locator("#verify-card")
    expect(card).to_contain_text("并非全部一致")
    expect(card).to_contain_text("源头有该记录")
    expect(page.locator('#verify-table tr[data-item="name"] [data-outcome]')).to_have_text("一致")
    expect(
        page.locator('#verify-table tr[data-item="registered_address"] [data-outcome]')
    ).to_have_text("不一致")
    # The answer never carries the source's value.
    expect(card).not_to_contain_text(record["registered_address"])
    portal.shot("verify-mismatch")
    page.fill("#verify-lines", f"name={record['name']}")
    page.click('form[data-form="verify-claims"] button[type="submit"]')
    expect(card).to_contain_text("全部一致")
    expect(card).not_to_contain_text("并非")
    # A line that is not item=value is explained, not sent.
    page.fill("#verify-lines", "just a sentence")
    page.click('form[data-form="verify-claims"] button[type="submit"]')
    expect(page.locator("#claims-result")).to_contain_text("声明内容格式不正确")
