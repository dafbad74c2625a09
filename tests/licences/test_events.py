"""The mock departments' systems issue licences for their city's changes: a marriage's two
certificates, a new enterprise's business licence, before the change counts as handed over."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest

from exchange.departments.changes import ChangeLog
from exchange.departments.definitions import DepartmentDefinition, load_definitions
from exchange.departments.licence_issue import licence_for
from exchange.departments.publisher import Publisher

pytestmark = pytest.mark.anyio
AT = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
MAN, WOMAN = "440524188001010014", "11010519491231002X"
MARRIAGE: dict[str, Any] = {
    "registration_type": "结婚登记",
    "registered_on": "2026-12-01",
    "certificate_number": "J440104-2026-000123",
    "registration_office": "广州市越秀区民政局婚姻登记处",
    "man_name": "张三",
    "man_id_number": MAN,
    "woman_name": "李四",
    "woman_id_number": WOMAN,
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def definitions() -> dict[str, DepartmentDefinition]:
    from exchange.config import Settings

    return dict(load_definitions(Settings().services_dir))


def test_each_spouse_gets_a_certificate_naming_the_other() -> None:
    man = licence_for("mzj", "marriage-registration", "marriage", MAN,
                      {**MARRIAGE, "id_number": MAN, "name": "张三"})  # fmt: skip
    woman = licence_for("mzj", "marriage-registration", "marriage", WOMAN,
                        {**MARRIAGE, "id_number": WOMAN, "name": "李四"})  # fmt: skip
    assert man is not None
    assert woman is not None
    assert man["content"]["spouse_id_number"] == WOMAN
    assert woman["content"]["spouse_name"] == "张三"
    assert man["external_ref"] != woman["external_ref"]
    assert (man["type_code"], man["issued_on"]) == ("JHZ", "2026-12-01")
    divorce = {**MARRIAGE, "registration_type": "离婚登记", "id_number": MAN, "name": "张三"}
    assert licence_for("mzj", "marriage-registration", "divorce", MAN, divorce) is None
    assert licence_for("gaj", "household-registration", "marriage", MAN, {"x": 1}) is None
    firm = {
        "credit_code": "91110108551385082Q",
        "name": "广州某某有限公司",
        "entity_type": "有限责任公司",
        "legal_representative": "张三",
        "registered_capital": 100,
        "founded_on": "2026-12-01",
        "address": "越秀区某路1号",
        "business_scope": "软件开发",
    }
    body = licence_for(
        "scjgj", "enterprise-registration", "enterprise_registered", firm["credit_code"], firm
    )
    assert body is not None
    assert body["type_code"] == "YYZZ"
    assert body["content"]["registered_capital"] == 100


class FakeExchange:
    def __init__(self, licence_answers: list[int]) -> None:
        self.licence_answers = licence_answers
        self.licences: list[dict[str, Any]] = []
        self.changes = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/catalog/topics":
            items = [{"slug": "marriage-registration", "resource_code": "101001002/000001"}]
            return httpx.Response(200, json={"total": 1, "offset": 0, "limit": 200, "items": items})
        if request.url.path == "/api/v1/licences":
            self.licences.append(json.loads(request.content))
            status = self.licence_answers.pop(0) if self.licence_answers else 201
            return httpx.Response(
                status, json={"error": {"code": "x", "message": "m", "request_id": "r"}}
            )
        self.changes += 1
        return httpx.Response(202, json={"accepted": 1})


async def test_the_publisher_issues_before_it_acknowledges(
    definitions: dict[str, DepartmentDefinition],
) -> None:
    fake = FakeExchange([201, 503])  # the second certificate fails once
    mzj = {"mzj": definitions["mzj"]}
    log = ChangeLog(mzj, retain=100)
    pub = Publisher(log, mzj, base_url="http://x.test", keys={"mzj": "k"},
                    transport=httpx.MockTransport(fake))  # fmt: skip
    for key, name in ((MAN, "张三"), (WOMAN, "李四")):
        log.append("mzj", "marriage-registration", key, "marriage", AT,
                   {**MARRIAGE, "id_number": key, "name": name})  # fmt: skip
    async with httpx.AsyncClient(base_url=pub.base_url, transport=pub.transport) as c:
        assert await pub.publish_once(c) == 0  # the licence call failed: not handed over
        assert log.backlog("mzj") == 2
        pub.state["mzj"].retry_at = 0.0
        assert await pub.publish_once(c) == 2
    assert log.backlog("mzj") == 0
    holders = [b["holder_id"] for b in fake.licences]
    assert holders == [MAN, WOMAN, MAN, WOMAN]  # retried with the same references
    assert len({b["external_ref"] for b in fake.licences}) == 2
    assert pub.status()["licences_issued"] == 3
