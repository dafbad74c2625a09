"""运行监测 under load: the operator's dashboard moves while traffic runs through the broker."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time

import httpx
from playwright.sync_api import expect
from tests.ops.test_load_runs import PROGRESS
from tests.serve import Server
from tests.web.browser.conftest import Portal, http

HOUSEHOLD = "101001001/000001"
UNCONDITIONAL = ["id_number", "name", "sex", "birth_date", "household_number"]


def _grant(server: Server) -> list[str]:
    """mzj holds a grant of the household topic's unconditional items; returns sample keys."""
    with http(server, "mzj") as api:
        today = dt.date.fromisoformat(api.get("/api/v1/clock").json()["today"])
        body = {
            "topic": HOUSEHOLD,
            "items": UNCONDITIONAL,
            "purpose": {"scope": "data_verification", "text": "居民家庭经济状况核对"},
            "legal_function": "《社会救助暂行办法》第十一条",
            "valid_until": (today + dt.timedelta(days=30)).isoformat(),
        }
        assert api.post("/api/v1/applications", json=body).status_code == 201
        export = api.get(
            f"/api/v1/exchange/{HOUSEHOLD}/export", params={"limit": 20, "items": "id_number"}
        )
        assert export.status_code == 200, export.text
        return [line.split('"')[3] for line in export.text.splitlines() if line]


class Load(threading.Thread):
    """Queries as mzj until stopped; one in eight asks for an ungranted item (a client error)."""

    def __init__(self, server: Server, keys: list[str]) -> None:
        super().__init__(daemon=True)
        self.server, self.keys = server, keys
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        with http(self.server, "mzj") as api:
            while not self.stop.is_set():
                items = ["photo_ref"] if self.sent % 8 == 7 else ["name"]
                keys = self.keys[self.sent % len(self.keys) :][:5]
                with contextlib.suppress(httpx.HTTPError):  # counted on the server either way
                    api.post(
                        f"/api/v1/exchange/{HOUSEHOLD}/query", json={"keys": keys, "items": items}
                    )
                self.sent += 1


def test_the_dashboard_moves_under_load(portal: Portal) -> None:
    keys = _grant(portal.server)
    page = portal.open("operator", tab="ops")
    status = page.locator("#ops-updated")
    expect(status).to_have_attribute("data-samples", "1")
    load = Load(portal.server, keys)
    load.start()
    try:
        # Rates come from successive readings: wait for a few, with calls rising between.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            samples = int(status.get_attribute("data-samples") or 0)
            if samples >= 3 and load.sent > 20:
                break
            page.wait_for_timeout(250)
        rate = page.evaluate(
            "echarts.getInstanceByDom(document.getElementById('ch-rate')).getOption()"
            ".series[0].data"
        )
        assert any(v > 0 for v in rate), rate
        expect(page.locator("#st-calls b")).not_to_have_text("0")
        # One call in eight was the caller's fault: the caller's error rate is not zero.
        expect(page.locator("#st-errors b")).not_to_have_text("0.00% / 0.00% / 0.00%")
        expect(page.locator("#ops-slow tbody")).to_contain_text("gaj")
        providers = page.evaluate(
            "echarts.getInstanceByDom(document.getElementById('ch-providers')).getOption()"
            ".yAxis[0].data"
        )
        assert "市公安局" in providers
        portal.shot("under-load", full_page=True)
    finally:
        load.stop.set()
        load.join(10)
    assert load.sent > 20


def test_a_load_run_reported_by_exchange_load_shows_its_day(portal: Portal) -> None:
    page = portal.open("operator", tab="ops")
    panel = page.locator("#ops-load")
    # Before any run, the panel says how to start one.
    expect(panel).to_contain_text("exchange load")
    progress = PROGRESS  # 09:30 of a ten-minute day, 14 M records in
    run = f"browser-{time.monotonic_ns()}"
    with http(portal.server, "operator") as api:
        resp = api.put(f"/api/v1/load-runs/{run}", json={"progress": progress})
        assert resp.status_code == 200, resp.text
        expect(panel).to_have_attribute("data-run", run)
        expect(panel).to_have_attribute("data-state", "running")
        expect(panel).to_contain_text("模拟时刻 09:30")
        expect(panel).to_contain_text("14,000,000")
        expect(page.locator("#load-progress")).to_have_attribute("value", "0.3958")
        resp = api.put(f"/api/v1/load-runs/{run}", json={"state": "finished", "progress": progress})
        assert resp.status_code == 200, resp.text
    expect(panel).to_have_attribute("data-state", "finished")
    expect(panel).to_contain_text("已完成")
    portal.shot("load-run")
