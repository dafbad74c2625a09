"""The portal in a real browser: Playwright driving the system's Chromium (Debian's
``chromium`` package; Playwright's own browser download is not used), against a real
``exchange up`` on loopback.

Every page a test opens is watched: a console error, an uncaught exception, a failed
request or an HTTP error answer fails the test unless the test said it expects that one
(``watch.expect(403, "/query")``). Screenshots go to ``$EXCHANGE_ARTIFACTS`` or
``tests/web/artifacts/`` (git-ignored); the directory is printed at the end of the run.

Without Chromium the tests skip, except in CI (``CI=true``), where they fail: ``.ci/run``
installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.serve import Server, exchange_up

from exchange.security import demo_key

OPERATOR_KEY = "exk_operator_browser-tests"
ARTIFACTS = Path(os.environ.get("EXCHANGE_ARTIFACTS") or Path(__file__).parents[1] / "artifacts")
VIEWPORT = {"width": 1280, "height": 860}


def find_chromium() -> str | None:
    for name in (os.environ.get("EXCHANGE_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (found := shutil.which(name)):
            return found
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ARTIFACTS.is_dir() and any(ARTIFACTS.glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {ARTIFACTS}")


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI: no chromium on PATH (.ci/run installs Debian's chromium package)")
        pytest.skip("no chromium on PATH: apt-get install chromium, or set EXCHANGE_CHROMIUM")
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    """Per module, not per session: Playwright's sync API keeps an event loop running in
    this thread while it is open, and tests after it that call asyncio.run would fail."""
    from playwright.sync_api import expect, sync_playwright

    # Deadlines for "it shows up at all": at load 15+ on 2 cores the default 5 s of expect()
    # was not always enough for a tab to be drawn. Speed is the benchmarks' business.
    expect.set_options(timeout=20_000)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One exchange per test module (SQLite: the page, not the database, is under test)."""
    tmp = tmp_path_factory.mktemp("browser")
    with exchange_up(tmp, f"sqlite:///{tmp}/exchange.db", OPERATOR_KEY) as running:
        yield running


def key_of(code: str) -> str:
    return OPERATOR_KEY if code == "operator" else demo_key(OPERATOR_KEY, code)


def http(server: Server, code: str) -> httpx.Client:
    """The API as one department (or the operator), for setting up what a test looks at."""
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key_of(code)}"}, timeout=30
    )


@dataclass
class Watch:
    """What went wrong on a page, minus what the test expects to go wrong."""

    problems: list[str] = field(default_factory=list)
    expected: list[tuple[int, str]] = field(default_factory=list)
    seen_expected: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)

    def expect(self, status: int, url_part: str) -> None:
        self.expected.append((status, url_part))

    def _is_expected(self, status: int, url: str) -> bool:
        return any(status == s and part in url for s, part in self.expected)

    def on_response(self, response: Any) -> None:
        if response.status < 400:
            return
        if self._is_expected(response.status, response.url):
            self.seen_expected.add(response.url)
        else:
            self.problems.append(f"HTTP {response.status} {response.url}")

    def on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        # Chromium logs every HTTP error answer as a console error too.
        if message.text.startswith("Failed to load resource") and where in self.seen_expected:
            return
        self.problems.append(f"console error: {message.text} ({where})")

    def on_failed(self, request: Any) -> None:
        failure = request.failure or ""
        # The page never cancels a request itself: an abort is the browser leaving the page
        # (a reload, a new address, the end of the test) with a call or long poll in flight.
        if "ERR_ABORTED" in failure:
            return
        self.problems.append(f"request failed: {request.url} {failure}")


class Portal:
    """One browser page on the portal, with helpers a presenter's steps map onto."""

    def __init__(self, page: Any, server: Server, watch: Watch, name: str) -> None:
        self.page = page
        self.server = server
        self.watch = watch
        self.name = name

    def open(self, code: str | None = None, *, keys: tuple[str, ...] = (), **params: str) -> Any:
        """Load the page afresh, as ``code`` (or as nobody), with hash parameters."""
        parts = {}
        if code:
            parts["key"] = key_of(code)
        if keys:
            parts["keys"] = ",".join(key_of(k) for k in keys)
        parts.update(params)
        self.page.goto("about:blank")
        self.page.goto(f"{self.server.url}/#" + "&".join(f"{k}={v}" for k, v in parts.items()))
        if code:
            self.expect_identity(code)
        return self.page

    def expect_identity(self, code: str) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("#who")).to_contain_text(f"({code})")

    def switch(self, code: str) -> None:
        """Pick a remembered identity in the header's picker, as a presenter does."""
        option = self.page.locator("#role option", has_text=f"({code})").first
        self.page.select_option("#role", value=option.get_attribute("value"))
        self.expect_identity(code)

    def tab(self, name: str) -> None:
        self.page.click(f'#tabs [data-tab="{name}"]')

    def shot(self, label: str, *, full_page: bool = False) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def portal(browser: Any, server: Server, request: pytest.FixtureRequest) -> Iterator[Portal]:
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(20_000)
    page = context.new_page()
    watch = Watch()
    page.on("response", watch.on_response)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda exc: watch.problems.append(f"uncaught: {exc}"))
    page.on("requestfailed", watch.on_failed)
    page.on("request", lambda r: watch.requests.append(r.url))
    name = request.node.name.removeprefix("test_")
    yield Portal(page, server, watch, name)
    problems = list(watch.problems)
    context.close()
    assert not problems, "the page reported problems:\n" + "\n".join(problems)
