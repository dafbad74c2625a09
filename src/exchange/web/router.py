"""Serves the portal: one static page that talks to the same public API as everyone else."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def portal() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


@router.get("/portal.js")
def portal_js() -> FileResponse:
    return FileResponse(STATIC / "portal.js", media_type="text/javascript; charset=utf-8")
