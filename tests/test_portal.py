"""The portal page and its script are served, and the script uses only the public API."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_portal_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "政务信息共享平台" in page.text
    script = client.get("/portal.js")
    assert script.status_code == 200
    assert "/api/v1/catalog/topics" in script.text
