"""Running the mock departments as their own process (``exchange serve departments``)."""

from __future__ import annotations

import sys

import uvicorn

from exchange.config import Settings
from exchange.departments.app import create_departments_app

__all__ = ["serve_departments"]


def serve_departments(settings: Settings, host: str, port: int) -> None:
    """Serve every department in ``settings.services_dir`` on ``host:port`` until stopped.

    Base URLs are ``http://host:port/departments/{code}``, the same paths as inside
    ``exchange up``, so the broker can be pointed at another machine unchanged.
    """
    app = create_departments_app(settings)
    if settings.operator_key is None:
        # Nobody could change faults otherwise; say the generated key once, on stderr.
        sys.stderr.write(f"mock departments: operator key {app.operator_key}\n")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )
