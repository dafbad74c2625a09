"""The licence verification view (证照核验) in a real browser: a licence issued through the
API verifies; the same code with one character changed, or after revocation, does not."""

from __future__ import annotations

from playwright.sync_api import expect
from tests.web.browser.conftest import Portal, http

MARRIAGE = {
    "type_code": "JHZ",
    "holder_id": "440524188001010014",
    "holder_name": "张三",
    "content": {
        "name": "张三",
        "spouse_name": "李四",
        "spouse_id_number": "11010519491231002X",
        "registered_on": "2024-05-20",
    },
}


def _verify(portal: Portal, number: str, code: str) -> None:
    page = portal.page
    page.fill("#lic-number", number)
    page.fill("#lic-code", code)
    page.click('form[data-form="lic-verify"] button')


def test_a_licence_verifies_and_an_altered_or_revoked_one_does_not(portal: Portal) -> None:
    with http(portal.server, "mzj") as mzj:
        resp = mzj.post("/api/v1/licences", json=MARRIAGE)
        assert resp.status_code == 201, resp.text
        lic = resp.json()
    page = portal.page
    portal.open("gaj", tab="licences")
    expect(page.locator("#lic-stats")).to_contain_text("507 类证照")
    expect(page.locator("#lic-stats-table")).to_contain_text("广东省居住证")
    _verify(portal, lic["number"], lic["code"])
    expect(page.locator("#lic-result")).to_contain_text("核验通过")
    expect(page.locator("#lic-result")).to_contain_text("结婚证")
    portal.shot("licence-valid")
    prefix, payload, sig = lic["code"].split(".")
    flipped = "B" if sig[10] == "A" else "A"
    _verify(portal, lic["number"], f"{prefix}.{payload}.{sig[:10]}{flipped}{sig[11:]}")
    expect(page.locator("#lic-result")).to_contain_text("核验未通过")
    expect(page.locator("#lic-result")).to_contain_text("altered")
    with http(portal.server, "mzj") as mzj:
        done = mzj.post(f"/api/v1/licences/{lic['number']}/revoke", json={"reason": "撤销登记"})
        assert done.status_code == 200
    _verify(portal, lic["number"], lic["code"])
    expect(page.locator("#lic-result")).to_contain_text("发证部门已注销该证照")
    expect(page.locator("#lic-result")).to_contain_text("撤销登记")
