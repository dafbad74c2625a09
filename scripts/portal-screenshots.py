"""Rewrite docs/portal/*.png: each tab of the portal after the demo story, and the operations
dashboard while queries run.

    .venv/bin/python scripts/portal-screenshots.py

Starts its own exchange on a free loopback port (a temporary SQLite), tells the
``exchange demo`` stories through the SDK (household, newborn, enterprise), reports a load
run as ``exchange load`` would, then drives Debian's chromium through Playwright.
The PNGs are reduced to a 64-colour palette (Pillow) so the set stays a few hundred KB.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from rich.console import Console  # noqa: E402
from tests.serve import exchange_up  # noqa: E402
from tests.web.browser.conftest import find_chromium  # noqa: E402

from exchange.config import Settings  # noqa: E402
from exchange.demo import run_demo  # noqa: E402
from exchange.demo_enterprise import run_enterprise_story  # noqa: E402
from exchange.demo_newborn import CONSUMERS as NEWBORN_CONSUMERS  # noqa: E402
from exchange.demo_newborn import run_newborn  # noqa: E402
from exchange.demo_newborn_cast import TOPIC as NEWBORN_TOPIC  # noqa: E402
from exchange.departments.city import City  # noqa: E402
from exchange.security import demo_key  # noqa: E402

OUT = ROOT / "docs" / "portal"
OPERATOR = "exk_operator_screenshots"
VIEW = {"width": 1280, "height": 800}
# (file, identity, hash parameters): one per tab, as a presenter shows them.
SHOTS = [
    ("catalog", "mzj", "tab=catalog&q=户籍&topic=101001001/000001"),
    ("applications", "mzj", "tab=applications&app=1"),
    ("review", "gaj", "tab=review&app=2"),
    ("disputes", "operator", "tab=disputes&dispute=1"),
    ("grants", "mzj", "tab=grants&grant=1"),
    ("exchange", "mzj", "tab=exchange"),
    ("audit", "operator", "tab=audit"),
    ("platform", "operator", "tab=platform"),
    ("departments", "operator", "tab=departments"),
    ("changes", "operator", "tab=changes"),
    ("licences", "operator", "tab=licences"),
    ("credit", "operator", "tab=credit"),
    ("subscriptions", "operator", "tab=subs"),
    ("libraries", "operator", "tab=libraries"),
]
# Sources made noisy before the libraries' full pass, so the conflict list has entries.
NOISY = (("rsj", "social-insurance-enrolment", 0.02), ("gaj", "household-registration", 0.005))
# A load run as `exchange load` reports it, so the dashboard shows its simulated day.
LOAD_RUN = {
    "sim_hour": 10.25,
    "elapsed_s": 256.0,
    "day_seconds": 600.0,
    "records": 15_300_000.0,
    "target_so_far": 15_420_000.0,
    "records_per_s": 63_100.0,
    "target_rate": 62_800.0,
}


def key(code: str) -> str:
    return OPERATOR if code == "operator" else demo_key(OPERATOR, code)


def save(page: object, name: str) -> None:
    png = page.screenshot()  # type: ignore[attr-defined]
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=64, dither=Image.Dither.NONE)
    image.save(OUT / f"{name}.png", optimize=True)
    print(f"{name}.png {(OUT / f'{name}.png').stat().st_size // 1024} KB")  # noqa: T201


def subscribe(url: str) -> None:
    """Pull subscriptions that outlive the stories, so the 订阅分发 tab has something to show.

    The newborn story deletes its own subscriptions when it ends (so it can be told again):
    here its three consumers subscribe to births on its topic again (by pull), three births are
    registered, and 民政局 reads its feed (delivered, no backlog) while the others have not yet
    (a backlog).
    """
    op = {"Authorization": f"Bearer {OPERATOR}"}
    with httpx.Client(base_url=url, timeout=30) as api:
        topics = api.get(
            "/api/v1/catalog/topics", params={"provider": "gaj", "limit": 200}, headers=op
        ).json()
        topic = next(t["resource_code"] for t in topics["items"] if t["slug"] == NEWBORN_TOPIC)
        subs: dict[str, int] = {}
        for consumer in NEWBORN_CONSUMERS:
            made = api.post(
                "/api/v1/subscriptions",
                json={
                    "topic": topic,
                    "items": list(consumer.items),
                    "filter": {"kinds": ["birth"]},
                    "delivery": "pull",
                },
                headers={"Authorization": f"Bearer {key(consumer.code)}"},
            )
            if made.status_code == 201:
                subs[consumer.code] = int(made.json()["id"])
        for _ in range(3):
            api.post("/departments/_changes/birth", headers=op).raise_for_status()
        # 民政局 reads its feed once the three births are in it, then acknowledges the page by
        # asking from its next cursor. The departments push their events asynchronously.
        mzj = {"Authorization": f"Bearer {key('mzj')}"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sub = api.get(f"/api/v1/subscriptions/{subs['mzj']}", headers=mzj).json()
            if sub["stats"]["backlog"] >= 3:
                break
            time.sleep(0.2)
        feed = f"/api/v1/subscriptions/{subs['mzj']}/events"
        page = api.get(feed, headers=mzj)
        page.raise_for_status()
        api.get(feed, params={"cursor": page.json()["next_cursor"]}, headers=mzj)


def load(url: str, stop: threading.Event) -> None:
    """Queries as mzj through the broker until stopped (one in eight asks too much)."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key('mzj')}"}) as api:
        grants = api.get("/api/v1/grants", params={"consumer": "mzj", "status": "active"}).json()
        topic = grants["items"][0]["topic"]
        items = api.get(f"/api/v1/catalog/topics/{topic}").json()["items"]
        field = next(i["field"] for i in items if i["is_key"])
        export = api.get(f"/api/v1/exchange/{topic}/export", params={"limit": 20, "items": field})
        keys = [json.loads(line)[field] for line in export.text.splitlines() if line]
        n = 0
        while not stop.is_set():
            items = ["no_such_item"] if n % 8 == 7 else None
            body: dict[str, object] = {"keys": keys[n % 16 : n % 16 + 4]}
            if items:
                body["items"] = items
            api.post(f"/api/v1/exchange/{topic}/query", json=body)
            n += 1


def gather_libraries(url: str) -> None:
    """Both libraries gathered in full, the library unit's applications approved by their
    providers first, with two noisy sources: the 基础信息库 tab's progress and conflicts."""
    op = {"Authorization": f"Bearer {OPERATOR}"}
    with httpx.Client(base_url=url, timeout=60) as api:

        def run(full: bool) -> None:
            api.post("/api/v1/libraries/gather", json={"full": full}, headers=op).raise_for_status()
            while api.get("/api/v1/libraries/gather", headers=op).json()["running"]:
                time.sleep(0.5)

        run(False)  # files the library unit's applications
        apps = api.get(
            "/api/v1/applications",
            params={"role": "consumer", "status": "pending_review", "limit": 100},
            headers={"Authorization": f"Bearer {key('zsj')}"},
        ).json()["items"]
        for app in apps:
            api.post(
                f"/api/v1/applications/{app['id']}/approve",
                json={},
                headers={"Authorization": f"Bearer {key(app['provider'])}"},
            ).raise_for_status()
        codes = [s["resource_code"] for lib in api.get("/api/v1/libraries", headers=op).json()
                 for s in lib["sources"]]  # fmt: skip
        deadline = time.monotonic() + 60
        while not all(
            api.post(
                "/api/v1/authz/check", json={"consumer": "zsj", "topic": c}, headers=op
            ).json()["allowed"]
            for c in codes
        ):
            if time.monotonic() > deadline:
                sys.exit("the library unit's grants never took effect")
            time.sleep(0.2)
        for code, slug, rate in NOISY:
            api.put(
                f"/departments/_faults/{code}/{slug}", json={"noise_rate": rate}, headers=op
            ).raise_for_status()
        run(True)


def main() -> None:
    chromium = find_chromium()
    if chromium is None:
        sys.exit("no chromium: apt-get install chromium fonts-wqy-microhei")
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        exchange_up(Path(tmp), f"sqlite:///{tmp}/exchange.db", OPERATOR) as server,
    ):
        settings = Settings(operator_key=OPERATOR)
        city = City(settings.seed, settings.population, settings.enterprises)
        quiet = Console(file=io.StringIO())
        run_demo(server.url, OPERATOR, city, console=quiet)
        run_newborn(server.url, OPERATOR, console=quiet)
        run_enterprise_story(server.url, OPERATOR, city, console=quiet)
        subscribe(server.url)
        gather_libraries(server.url)
        httpx.put(
            f"{server.url}/api/v1/load-runs/screenshots",
            json={"progress": LOAD_RUN},
            headers={"Authorization": f"Bearer {OPERATOR}"},
        ).raise_for_status()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport=VIEW, locale="zh-CN")
            for name, who, params in SHOTS:
                page.goto("about:blank")
                page.goto(f"{server.url}/#key={key(who)}&{params}")
                # Not "networkidle": the change feed's long poll never lets the page be idle.
                page.wait_for_timeout(1500)
                save(page, name)
            stop = threading.Event()
            threads = [threading.Thread(target=load, args=(server.url, stop)) for _ in range(4)]
            for t in threads:
                t.start()
            page.goto("about:blank")
            page.goto(f"{server.url}/#key={key('operator')}&tab=ops")
            time.sleep(24)  # a dozen readings: the rate charts fill in
            save(page, "dashboard-under-load")
            page.click("#lang")
            page.wait_for_timeout(2500)
            save(page, "dashboard-english")
            stop.set()
            for t in threads:
                t.join()
            browser.close()


if __name__ == "__main__":
    main()
