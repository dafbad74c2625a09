"""The catalog through real HTTP against ``exchange up``, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.catalog.test_catalog_api import HUKOU
from tests.conftest import OPERATOR_KEY
from tests.serve import exchange_up

from exchange.security import demo_key

pytestmark = pytest.mark.e2e


def test_catalog_lifecycle_over_http(tmp_path: Path, database_url: str) -> None:
    with exchange_up(
        tmp_path, database_url, OPERATOR_KEY, EXCHANGE_MOCK_DEPARTMENTS="false"
    ) as srv:
        op = {"Authorization": f"Bearer {OPERATOR_KEY}"}
        with httpx.Client(base_url=srv.url, timeout=10) as http:
            # Seeding registered the 151 member units with their demo keys.
            units = http.get("/api/v1/departments", headers=op).json()
            assert len(units) == 151
            gaj = {"Authorization": f"Bearer {demo_key(OPERATOR_KEY, 'gaj')}"}
            assert http.get("/api/v1/departments/me", headers=gaj).json()["code"] == "gaj"
            assert http.get("/api/v1/catalog/topics").status_code == 401

            body = HUKOU | {"slug": "e2e-household", "category": "101009001"}
            body["items"] = [
                {**i, "element": None} for i in HUKOU["items"]
            ]  # the seeded core catalog may already source person.*
            created = http.post("/api/v1/catalog/topics", json=body, headers=gaj)
            assert created.status_code == 201, created.text
            code = created.json()["resource_code"]
            assert code == "101009001/000001"
            url = f"/api/v1/catalog/topics/{code}"

            found = http.get("/api/v1/catalog/topics", params={"q": "户籍"}, headers=gaj).json()
            assert code in {t["resource_code"] for t in found["items"]}

            changed = http.patch(url, json={"abstract": "已更新", "reason": "e2e"}, headers=gaj)
            assert changed.status_code == 200
            assert changed.json()["version"] == 2

            retired = http.post(url + "/retire", json={"reason": "e2e 废置"}, headers=gaj)
            assert retired.json()["status"] == "retired"

            feed = http.get(
                "/api/v1/catalog/changes", params={"after": 0, "limit": 1000}, headers=gaj
            ).json()
            mine = [c["kind"] for c in feed["changes"] if c["resource_code"] == code]
            assert mine == ["registered", "changed", "retired"]

            missing = http.get("/api/v1/catalog/topics/101009001/000999", headers=gaj)
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "topic_not_found"
            bad = http.post("/api/v1/catalog/topics", json={"name": "x"}, headers=gaj)
            assert bad.status_code == 422
            assert bad.json()["error"]["request_id"] == bad.headers["x-request-id"]
