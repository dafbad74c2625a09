"""Works on an isolated network: no page the exchange serves loads anything from another
host. Starting at ``/``, ``/docs`` and ``/redoc``, every script, style sheet and image
they reference is fetched from the exchange (and must be served), and every http(s) URL
in the HTML, JavaScript and CSS is checked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR_KEY

from exchange.app import build_context, create_app
from exchange.config import Settings

BASE = "http://testserver"
PAGES = ["/", "/docs", "/redoc"]
URL = re.compile(r"""https?://([A-Za-z0-9.-]*)""")
CSS_REF = re.compile(r"""url\(\s*['"]?([^'")]+)|@import\s+['"]([^'"]+)""")

# Hosts named in the vendored bundles' code that a browser never fetches, and why. Our own
# pages, scripts and styles get no such allowance.
NEVER_FETCHED = {
    "www.w3.org": "XML/SVG namespace identifiers",
    "json-schema.org": "JSON Schema $schema/$id identifiers",
    "spec.openapis.org": "OpenAPI dialect identifiers",
    "raw.githubusercontent.com": "ajv's $data meta-schema $id (an identifier, bundled)",
    "datatracker.ietf.org": "links in format descriptions, opened only by a click",
    "www.rfc-editor.org": "links in format descriptions, opened only by a click",
    "github.com": "links in error messages and comments",
    "git.io": "links in error messages",
    "fb.me": "React error-message links",
    "reactjs.org": "React error-message links",
    "redux.js.org": "Redux error-message links",
    "marked.js.org": "marked's error-message link",
    "stackoverflow.com": "a comment",
    "spdx.org": "licence identifiers",
    "swagger.io": "a link in Swagger UI's text",
    "vladimirgorej.com": "author link in a comment",
    "redocly.com": "the 'API docs by Redocly' footer link (click) and registry checks (unused)",
    "api.": "Redocly registry URL prefix test (no request)",
    "": "bare scheme prefixes in URL-parsing code (startsWith('https://'))",
    "base": "a dummy base for URL parsing (no request)",
    "example.com": "example values in schemas",
    "www.apache.org": "the licence URL in ECharts' header comment",
    "www.facebook.com": "URL-sanitiser test lists",
    "twitter.com": "URL-sanitiser test lists",
    "instagram.com": "URL-sanitiser test lists",
    "www.tiktok.com": "URL-sanitiser test lists",
    "soundcloud.com": "URL-sanitiser test lists",
    # Fetched only if validatorUrl is left unset: /docs sets it to null (asserted below).
    "validator.swagger.io": "Swagger UI's validator default, switched off by /docs",
}


class References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v for k, v in attrs if k in {"src", "href", "data", "poster"} and v]
        self.inline += [v for k, v in attrs if k == "style" and v]
        self._in = tag if tag in {"script", "style"} else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.inline.append(data)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("offline")
    settings = Settings(
        database_url=f"sqlite:///{tmp}/exchange.db",
        operator_key=OPERATOR_KEY,
        mock_departments=False,
    )
    app = create_app(settings, ctx=build_context(settings))
    with TestClient(app) as c:
        yield c


def local(ref: str, at: str) -> str | None:
    """The exchange path ``ref`` points to; None for data:/fragment refs; fails for others."""
    if ref.startswith(("data:", "#", "javascript:", "about:")):
        return None
    absolute = urljoin(BASE + at, ref)
    assert urlsplit(absolute).netloc == urlsplit(BASE).netloc, f"{at} loads {ref}"
    return urlsplit(absolute).path


def foreign_hosts(text: str) -> set[str]:
    return {h for h in URL.findall(text) if h != urlsplit(BASE).netloc}


def crawl(client: TestClient) -> dict[str, str]:
    """Every page and asset reachable from PAGES, by path, with its text."""
    seen: dict[str, str] = {}
    queue = list(PAGES)
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        resp = client.get(path)
        assert resp.status_code == 200, f"{path}: {resp.status_code}"
        kind = resp.headers["content-type"]
        text = resp.text if not kind.startswith("image/") else ""
        seen[path] = text
        refs: list[str] = []
        if "html" in kind:
            parser = References()
            parser.feed(text)
            refs = parser.refs
            for chunk in parser.inline:
                refs += [m[0] or m[1] for m in CSS_REF.findall(chunk)]
        elif "css" in kind:
            refs = [m[0] or m[1] for m in CSS_REF.findall(text)]
        queue += [p for ref in refs if (p := local(ref, path))]
    return seen


def test_no_page_loads_anything_from_another_host(client: TestClient) -> None:
    served = crawl(client)

    vendored = {p for p in served if p.startswith("/static/vendor/")}
    assert {
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui/swagger-ui.css",
        "/static/vendor/redoc/redoc.standalone.js",
    } <= vendored
    assert {"/portal.js", "/portal.css"} <= set(served)
    for path, text in served.items():
        hosts = foreign_hosts(text)
        if path in vendored:
            unexplained = hosts - set(NEVER_FETCHED)
            assert not unexplained, f"{path} names {sorted(unexplained)}: fetched?"
        else:
            assert not hosts, f"{path} (our own) names {sorted(hosts)}"


STATIC = Path(__file__).resolve().parents[2] / "src/exchange/web/static"
# Our own files may name only XML namespaces (an SVG's xmlns), never a host to load from.
OWN_ALLOWED = {"www.w3.org"}


def test_no_served_file_names_another_host(client: TestClient) -> None:
    """Every file under static/, also those loaded only by script (ECharts on first use),
    and every /static/ path our scripts name is served."""
    for file in sorted(STATIC.rglob("*")):
        if not file.is_file() or file.suffix not in {".js", ".css", ".html", ".svg"}:
            continue  # licences, notices and the vendor README are not loaded by any page
        relative = file.relative_to(STATIC)
        text = file.read_text(errors="replace")
        hosts = foreign_hosts(text)
        if relative.parts[0] == "vendor":
            unexplained = hosts - set(NEVER_FETCHED)
            assert not unexplained, f"{relative} names {sorted(unexplained)}: fetched?"
            continue
        assert hosts <= OWN_ALLOWED, f"{relative} (our own) names {sorted(hosts)}"
        for path in re.findall(r"""["'`](/static/[^"'`]+)["'`]""", text):
            assert client.get(path).status_code == 200, f"{relative} loads {path}"


def test_the_docs_switch_off_what_the_bundles_would_fetch(client: TestClient) -> None:
    docs = client.get("/docs").text
    assert re.search(r'"validatorUrl":\s*null', docs)
    assert "fonts.googleapis.com" not in client.get("/redoc").text
    redoc = client.get("/static/vendor/redoc/redoc.standalone.js").text
    assert "cdn.redoc.ly" not in redoc  # its footer logo, replaced (vendor/README.md)


def test_the_crawler_catches_a_cdn_reference() -> None:
    parser = References()
    parser.feed('<script src="https://cdn.jsdelivr.net/npm/x.js"></script>')
    with pytest.raises(AssertionError, match=r"cdn\.jsdelivr\.net"):
        local(parser.refs[0], "/docs")
    assert foreign_hosts("a{background:url(https://fonts.example/x.woff)}") == {"fonts.example"}


def test_the_vendored_licences_ship_with_the_files() -> None:
    vendor = Path(__file__).resolve().parents[2] / "src/exchange/web/static/vendor"
    assert "Apache License" in (vendor / "swagger-ui" / "LICENSE").read_text()
    assert "MIT" in (vendor / "redoc" / "LICENSE").read_text()
