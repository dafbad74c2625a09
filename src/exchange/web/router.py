"""Serves the portal: one static page that talks to the same public API as everyone else.

The page (``/``), its modules, its style sheet (``/portal.css``) and the icon are plain files
under ``static/``; the chart library is under ``static/vendor/`` (served at
``/static/vendor/``, see its README): no build step, nothing fetched from elsewhere. The
page's ``exchange-demo`` meta tag tells it whether this deployment is a demonstration
(``Settings.portal_demo``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from exchange.context import ctx_of

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)

# Static files are tiny and change with the code: revalidate rather than cache blindly.
_HEADERS = {"Cache-Control": "no-cache"}

#: file name → content type of everything served from ``static/`` (tests check the list).
ASSETS = {
    "portal.js": "text/javascript; charset=utf-8",
    "core.js": "text/javascript; charset=utf-8",
    "catalog.js": "text/javascript; charset=utf-8",
    "applications.js": "text/javascript; charset=utf-8",
    "disputes.js": "text/javascript; charset=utf-8",
    "grants.js": "text/javascript; charset=utf-8",
    "exchange.js": "text/javascript; charset=utf-8",
    "audit.js": "text/javascript; charset=utf-8",
    "platform.js": "text/javascript; charset=utf-8",
    "members.js": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
    "glossary.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "licences.js": "text/javascript; charset=utf-8",
    "subscriptions.js": "text/javascript; charset=utf-8",
    "verify.js": "text/javascript; charset=utf-8",
    "credit.js": "text/javascript; charset=utf-8",
    "libraries.js": "text/javascript; charset=utf-8",
    # The glossary of codes: a JSON module of glossary.js, and what the CLI words codes with.
    "codes.json": "application/json",
    "favicon.svg": "image/svg+xml",
}


_DEMO_META = '<meta name="exchange-demo" content="true">'


@router.get("/")
def portal(request: Request) -> HTMLResponse:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    if not ctx_of(request).settings.portal_demo:
        # The page reads this before anything else: no demo picker, no keys in the address.
        page = page.replace(_DEMO_META, _DEMO_META.replace("true", "false"))
    return HTMLResponse(page, headers=_HEADERS)


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    # Browsers ask for /favicon.ico on every load whatever the page links; answer with the icon.
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml", headers=_HEADERS)


def _asset(name: str, media_type: str) -> None:
    def serve() -> FileResponse:
        return FileResponse(STATIC / name, media_type=media_type, headers=_HEADERS)

    router.add_api_route(f"/{name}", serve, methods=["GET"], name=f"asset:{name}")


for _name, _type in ASSETS.items():
    _asset(_name, _type)
