"""Serves the portal: one static page that talks to the same public API as everyone else.

The page (``/``), its script (``/portal.js``) and its style sheet (``/portal.css``) are
plain files under ``static/``: no build step, nothing fetched from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)

# Static files are tiny and change with the code: revalidate rather than cache blindly.
_HEADERS = {"Cache-Control": "no-cache"}


@router.get("/")
def portal() -> FileResponse:
    return FileResponse(
        STATIC / "index.html", media_type="text/html; charset=utf-8", headers=_HEADERS
    )


@router.get("/portal.js")
def portal_js() -> FileResponse:
    return FileResponse(
        STATIC / "portal.js", media_type="text/javascript; charset=utf-8", headers=_HEADERS
    )


@router.get("/portal.css")
def portal_css() -> FileResponse:
    return FileResponse(
        STATIC / "portal.css", media_type="text/css; charset=utf-8", headers=_HEADERS
    )
