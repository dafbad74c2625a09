"""The portal's page, script and style sheet are served, and every API route the script calls
exists in the app's OpenAPI schema with the method the script uses.

The script names its endpoints in one table (``const API = {name: "METHOD /path"}``); these
tests read that table, so renaming a route (or a path parameter) fails here rather than in
front of an audience.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from exchange.web.router import STATIC

# The portal's own modules (vendor/ holds the libraries, not ours to check).
MODULES = sorted(STATIC.glob("*.js"))
SCRIPT = "\n".join(p.read_text(encoding="utf-8") for p in MODULES)
PAGE = (STATIC / "index.html").read_text(encoding="utf-8")

_TABLE = re.search(r"const API = \{(.*?)\n\};", SCRIPT, re.S)
assert _TABLE, "core.js must declare the portal's endpoints in `export const API = {...};`"
ENDPOINTS: dict[str, tuple[str, str]] = {
    name: (method, path)
    for name, method, path in re.findall(
        r'^\s*(\w+): "(GET|POST|PUT|PATCH|DELETE) (/[^"]*)",', _TABLE.group(1), re.M
    )
}


@pytest.mark.parametrize(
    ("path", "content_type", "needle"),
    [
        ("/", "text/html", "政务信息共享平台"),
        ("/portal.js", "text/javascript", "guard(start());"),
        ("/core.js", "text/javascript", "export const API = {"),
        ("/glossary.js", "text/javascript", "export function T("),
        ("/dashboard.js", "text/javascript", "export async function startDashboard"),
        ("/ui.js", "text/javascript", "export function html("),
        ("/static/vendor/echarts/echarts.min.js", "text/javascript", "echarts"),
        ("/portal.css", "text/css", "--b:"),
    ],
)
def test_assets_served(client: TestClient, path: str, content_type: str, needle: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == f"{content_type}; charset=utf-8"
    assert needle in resp.text


def test_the_glossary_of_codes_is_served_as_the_json_module_glossary_js_imports(
    client: TestClient,
) -> None:
    # A JSON module loads only when served as JSON; the words are the CLI's too.
    resp = client.get("/codes.json")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["app_status"]["approved"] == ["已通过", "Approved"]
    assert 'from "./codes.json" with { type: "json" }' in client.get("/glossary.js").text


def test_page_loads_only_local_assets() -> None:
    """No CDN, no build step: the page loads its own modules and style sheet, nothing else;
    the modules import only each other, by absolute local path."""
    assert '<script type="module" src="/portal.js"></script>' in PAGE
    assert '<link rel="stylesheet" href="/portal.css">' in PAGE
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", PAGE)
    assert "http://" not in SCRIPT
    assert "https://" not in SCRIPT
    imported = set(re.findall(r'^import .* from "(/[\w.]+)";$', SCRIPT, re.M))
    assert imported == {f"/{p.name}" for p in MODULES if p.name != "portal.js"}


def test_every_static_file_is_routed(client: TestClient) -> None:
    for file in Path(STATIC).iterdir():
        if file.is_dir():
            continue  # vendor/: the API docs' assets, crawled by test_offline.py
        path = "/" if file.name == "index.html" else f"/{file.name}"
        assert client.get(path).status_code == 200, file.name


def test_script_endpoints_exist_in_openapi(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    missing = [
        f"{name}: {method} {path}"
        for name, (method, path) in ENDPOINTS.items()
        if method.lower() not in schema["paths"].get(path, {})
    ]
    assert not missing, f"the portal calls routes the API no longer has: {missing}"


def test_script_covers_the_demo_flow() -> None:
    """The endpoints the request-and-authorization demo needs are all in the table."""
    wanted = {
        ("GET", "/api/v1/catalog/topics"),
        ("POST", "/api/v1/applications"),
        ("GET", "/api/v1/applications"),
        ("POST", "/api/v1/applications/{app_id}/approve"),
        ("POST", "/api/v1/applications/{app_id}/reject"),
        ("POST", "/api/v1/applications/{app_id}/dispute"),
        ("POST", "/api/v1/disputes/{dispute_id}/messages"),
        ("POST", "/api/v1/disputes/{dispute_id}/decide"),
        ("GET", "/api/v1/grants"),
        ("POST", "/api/v1/grants/{grant_id}/revoke"),
        ("POST", "/api/v1/authz/check"),
        ("POST", "/api/v1/exchange/{front}/{seq}/query"),
        ("GET", "/api/v1/audit/entries"),
        ("GET", "/api/v1/audit/stats"),
        ("GET", "/api/v1/audit/verify"),
        ("POST", "/api/v1/clock/advance"),
    }
    assert wanted <= set(ENDPOINTS.values())


def test_script_calls_only_named_endpoints() -> None:
    """Every api(...) call names a table entry; no call builds an /api/ path by hand."""
    called = set(re.findall(r'\bapi\("(\w+)"', SCRIPT))
    assert called, "no api(...) calls found"
    assert called <= set(ENDPOINTS), f"unknown endpoint names: {called - set(ENDPOINTS)}"
    assert not re.search(r"\bapi\(\s*[`'\"]/", SCRIPT)
    assert not re.search(r"fetch\((?!url\()", SCRIPT), "fetch only through api()/url()"
    unused = set(ENDPOINTS) - called
    assert not unused, f"endpoints declared but never called: {unused}"


def test_script_renders_through_the_escaper() -> None:
    """innerHTML is only ever assigned escaped markup (toHTML of an html`` template)."""
    for line in SCRIPT.splitlines():
        if "innerHTML" in line and "=" in line.split("innerHTML", 1)[1][:3]:
            assert "toHTML(" in line, line.strip()
    assert "insertAdjacentHTML" not in SCRIPT
    assert "outerHTML" not in SCRIPT
    assert "eval(" not in SCRIPT
    assert "new Function" not in SCRIPT


def test_hash_parameters_are_documented() -> None:
    """The #key=…&tab=… deep links the demos and screenshots rely on are written down."""
    for param in ("key=", "keys=", "tab=", "topic=", "app=", "dispute=", "grant="):
        assert param in PAGE
        assert f'p.get("{param[:-1]}")' in SCRIPT


def test_every_label_has_its_english() -> None:
    """Chinese first, English on request: each T("…") the modules use is in the glossary."""
    glossary = (STATIC / "glossary.js").read_text(encoding="utf-8")
    block = re.search(r"const EN = \{(.*?)\n\};", glossary, re.S)
    assert block
    english = set(re.findall(r'"((?:[^"\\]|\\.)*)":\s*"', block.group(1)))
    used = set(re.findall(r'\bT\("((?:[^"\\]|\\.)*)"', SCRIPT))
    static = set(re.findall(r'data-t(?:-ph|-label)?="([^"]*)"', PAGE))
    missing = sorted((used | static) - english)
    assert not missing, f"labels without English: {missing}"
    assert len(used) > 150  # the page's words really go through T()


def test_each_label_has_one_english() -> None:
    """A label written twice in the glossary's object literal silently takes the last one."""
    glossary = (STATIC / "glossary.js").read_text(encoding="utf-8")
    block = re.search(r"const EN = \{(.*?)\n\};", glossary, re.S)
    assert block
    labels = re.findall(r'"((?:[^"\\]|\\.)*)":\s*"', block.group(1))
    twice = sorted({label for label in labels if labels.count(label) > 1})
    assert not twice, f"labels with two English entries: {twice}"


def test_the_favicon_is_served(client: TestClient) -> None:
    resp = client.get("/favicon.ico")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/svg+xml"
