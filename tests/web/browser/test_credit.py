"""The credit view (信用双公示) in a real browser: a published penalty is found by its credit
code, the lists check shows the black list with the decision it rests on, and the
publication statistics carry the seed's counts."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import expect
from tests.web.browser.conftest import Portal, http

CODE = "91110108551385082Q"


def test_search_lists_and_statistics(portal: Portal) -> None:
    with http(portal.server, "scjgj") as scjgj:
        today = dt.date.fromisoformat(scjgj.get("/api/v1/clock").json()["today"])
        resp = scjgj.post(
            "/api/v1/credit/records",
            json={
                "records": [
                    {
                        "kind": "penalty",
                        "decision_number": "穗市监处罚〔2026〕浏览器1号",
                        "party_kind": "legal_person",
                        "party_name": "广州浏览器测试有限公司",
                        "credit_code": CODE,
                        "legal_representative": "张三",
                        "legal_basis": "《中华人民共和国食品安全法》第一百三十五条",
                        "content": "责令停产停业",
                        "violation_facts": "不符合食品安全标准",
                        "categories": ["责令停产停业"],
                        "decision_date": today.isoformat(),
                        "authority": "广州市市场监督管理局",
                        "authority_code": "114401009713466374",
                    }
                ]
            },
        )
        assert resp.status_code == 200, resp.text
    page = portal.page
    portal.open("sw", tab="credit")
    expect(page.locator("#credit-stats")).to_contain_text("公示率")
    page.fill("#credit-q", CODE)
    page.click('form[data-form="credit-search"] button[type="submit"]')
    expect(page.locator("#credit-table")).to_contain_text("穗市监处罚〔2026〕浏览器1号")
    page.click('button[data-act="credit-lists"]')
    expect(page.locator("#credit-result")).to_contain_text("黑名单")
    expect(page.locator("#credit-result")).to_contain_text("major_penalty")
    portal.shot("credit-lists")
