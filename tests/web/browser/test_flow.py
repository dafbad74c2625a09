"""The five-minute demo of the README, clicked through as a presenter does."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import Locator, expect
from tests.web.browser.conftest import Portal

HOUSEHOLD = "101001001/000001"
TAX = "301005001/000001"
VEHICLE = "301001001/000001"


def _apply(portal: Portal, words: str, code: str, until: dt.date | None = None) -> str:
    """Search, open the topic, submit the apply form; returns the result card's text."""
    page = portal.page
    page.fill("#q", words)
    page.press("#q", "Enter")
    page.click(f'#results tr[data-code="{code}"]')
    expect(page.locator("#topic-card")).to_have_attribute("data-code", code)
    if until is not None:
        page.fill('form[data-form="apply"] input[name="valid_until"]', until.isoformat())
    page.click('form[data-form="apply"] button.primary')
    result = page.locator("#apply-result")
    expect(result).to_contain_text("已提交")
    return str(result.inner_text())


def _reason(portal: Portal, scope: str, field: str) -> Locator:
    return portal.page.locator(f'{scope} table.decisions tr[data-field="{field}"] td.reason')


def test_the_presenters_demo(portal: Portal) -> None:
    page = portal.page
    portal.open("mzj", keys=("operator", "gaj", "mzj"), tab="catalog")
    portal.shot("01-catalog")

    # 1. As mzj: household registration, eleven items granted at once, the photo waits.
    text = _apply(portal, "户籍", HOUSEHOLD)
    assert "11 项已授权" in text
    assert "1 项有条件共享，待 市公安局 审核" in text
    expect(_reason(portal, "#apply-result", "name")).to_have_text("无条件共享，自动授权")
    portal.shot("02-applied", full_page=True)
    # The tax secrets: refused at once, citing the law, in the item's own row.
    _apply(portal, "涉税", TAX)
    expect(_reason(portal, "#apply-result", "taxpayer_name")).to_contain_text("税收征收管理法")
    # Vehicles: wholly conditional, granted until a near date.
    soon = dt.date.today() + dt.timedelta(days=10)
    _apply(portal, "机动车", VEHICLE, until=soon)

    # 2. As gaj: the inbox lists both; reject the photo, approve vehicles narrowed.
    portal.switch("gaj")
    expect(page.locator('#tabs [data-tab="review"] .badge')).to_have_text("2")
    portal.tab("review")
    rows = page.locator("#review-list tr[data-id]")
    expect(rows).to_have_count(2)
    rows.filter(has_text="户籍登记信息").click()
    page.fill("#rj-reason", "相片仅限公安业务使用")
    page.click('form[data-form="reject"] button')
    expect(page.locator("#notice")).to_contain_text("已退回")
    rows.filter(has_text="机动车登记信息").click()
    for field in ("vin", "owner_id_number"):
        page.uncheck(f'form[data-form="approve"] input[value="{field}"]')
    page.fill("#rv-reason", "核对无需车架号与车主身份证号")
    page.fill("#rv-quota", "200")
    page.click('form[data-form="approve"] button.primary')
    expect(page.locator("#notice")).to_contain_text("部分通过")
    # The reason for leaving items out is theirs alone, not the granted items'.
    expect(_reason(portal, "#review-detail", "vin")).to_contain_text("核对无需车架号")
    expect(_reason(portal, "#review-detail", "plate_number")).to_have_text("提供单位审核通过")
    portal.shot("03-reviewed", full_page=True)

    # 3. As mzj: dispute the photo, write in the thread.
    portal.switch("mzj")
    portal.tab("applications")
    page.locator("#apps-list tr[data-id]").filter(has_text="户籍登记信息").click()
    page.fill("#dp-reason", "低保核对须比对相片")
    page.click('form[data-form="dispute"] button.primary')
    expect(page.locator("#dispute-detail")).to_contain_text("协调中")
    page.fill("#msg-body", "请予协调")
    page.click('form[data-form="message"] button')
    expect(page.locator("#dispute-detail .msg")).to_have_count(1)

    # 4. As the operator: decide the dispute.
    portal.switch("operator")
    portal.tab("disputes")
    page.locator("#disputes-list tr[data-id]").first.click()
    page.fill("#dc-reason", "履职确需，准予共享")
    page.click('form[data-form="decide"] button.primary')
    expect(page.locator("#dispute-decision")).to_contain_text("全部授权")
    portal.shot("04-decided", full_page=True)

    # 5. As mzj: query through the broker; the answer has a request id linked to its audit.
    portal.switch("mzj")
    portal.tab("exchange")
    page.select_option("#x-topic", HOUSEHOLD)
    page.click('button[data-act="sample-keys"]')
    expect(page.locator("#notice")).to_contain_text("已取 3 个样本键")
    page.fill("#x-case", "低保审核 2026-0001")
    page.click('form[data-form="query"] button.primary')
    expect(page.locator("#exchange-ok")).to_contain_text("返回 3 条记录")
    request_id = page.locator("#x-rid").inner_text()
    portal.shot("05-exchanged", full_page=True)
    page.click('#exchange-ok button[data-act="goto-audit"]')
    expect(page.locator("#au-rid")).to_have_value(request_id)
    audited = page.locator("#audit-table tbody tr")
    expect(audited).to_have_count(1)
    assert audited.first.get_attribute("data-rid") == request_id
    expect(audited.first).to_contain_text("低保审核 2026-0001")

    # An item outside the grant is denied, and the denial is audited under its request id.
    portal.tab("exchange")
    page.select_option("#x-topic", VEHICLE)
    portal.watch.expect(403, "/query")
    page.check('#x-items input[value="vin"]')
    page.fill("#x-keys", "粤A12345")
    page.click('form[data-form="query"] button.primary')
    expect(page.locator("#exchange-denied")).to_contain_text("client.item_not_granted")
    page.click('#exchange-denied button[data-act="goto-audit"]')
    expect(page.locator("#audit-table tbody tr")).to_have_count(1)
    expect(page.locator("#audit-table tbody tr")).to_contain_text("client.item_not_granted")

    # 6. As the operator: verify the chain; advance the clock past the vehicle grant.
    portal.switch("operator")
    portal.tab("audit")
    page.click('button[data-act="verify"]')
    expect(page.locator("#verify-result")).to_contain_text("完整")
    portal.shot("06-audit", full_page=True)
    portal.tab("platform")
    page.click('button[data-act="advance"][data-by="2w"]')
    expect(page.locator("#notice")).to_contain_text("平台时钟已推进 2w")
    expect(page.locator("#expired-table tbody")).to_contain_text(VEHICLE)
    expect(page.locator("#clock")).to_contain_text("已推进 14 天")
    portal.shot("07-clock", full_page=True)
