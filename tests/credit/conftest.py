"""A seeded exchange (core catalog, the 151 units, the credit baseline and list grants) and
builders of valid double-publicity records about enterprises of its synthetic city."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR_KEY, auth

from exchange.app import create_app
from exchange.authz.calendar import BEIJING
from exchange.config import Settings
from exchange.context import AppContext
from exchange.departments.city import City
from exchange.security import demo_key
from exchange.seed import seed

#: 市市场监督管理局's credit code (catalog/units.yaml), the deciding authority below.
SCJGJ_CODE = "114401009713466374"


def key(code: str) -> dict[str, str]:
    return auth(demo_key(OPERATOR_KEY, code))


@pytest.fixture
def seeded(settings: Settings, ctx: AppContext) -> Iterator[TestClient]:
    seed(ctx.db, settings, OPERATOR_KEY, ctx.clock)
    app = create_app(settings, ctx=ctx)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def city(settings: Settings) -> City:
    return City(
        seed=settings.seed, population=settings.population, enterprises=settings.enterprises
    )


def today(ctx: AppContext) -> dt.date:
    return ctx.clock.now().astimezone(BEIJING).date()


def penalty(
    code: str,
    number: str,
    day: dt.date,
    *,
    categories: tuple[str, ...] = ("罚款",),
    fine: str | None = "5000.00",
    major: bool = False,
) -> dict[str, Any]:
    return {
        "kind": "penalty",
        "decision_number": number,
        "party_kind": "legal_person",
        "party_name": f"广州测试{code[-4:]}有限公司",
        "credit_code": code,
        "legal_representative": "张三",
        "legal_basis": "《中华人民共和国食品安全法》第一百二十四条",
        "content": "罚款",
        "violation_facts": "销售不符合食品安全标准的食品",
        "categories": list(categories),
        "fine_amount": fine if "罚款" in categories else None,
        "major": major,
        "decision_date": day.isoformat(),
        "authority": "广州市市场监督管理局",
        "authority_code": SCJGJ_CODE,
    }


def permit(code: str, number: str, day: dt.date) -> dict[str, Any]:
    return {
        "kind": "permit",
        "decision_number": number,
        "party_kind": "legal_person",
        "party_name": f"广州测试{code[-4:]}有限公司",
        "credit_code": code,
        "legal_representative": "李四",
        "legal_basis": "《中华人民共和国食品安全法》第三十五条",
        "content": "食品经营许可",
        "category": "普通",
        "licence_number": f"JY1440106{number[-6:]}",
        "valid_from": day.isoformat(),
        "valid_until": (day + dt.timedelta(days=5 * 365)).isoformat(),
        "decision_date": day.isoformat(),
        "authority": "广州市市场监督管理局",
        "authority_code": SCJGJ_CODE,
    }
