"""Running the mock departments as their own process (``exchange serve departments``)."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable

import uvicorn

from exchange.config import Settings
from exchange.departments.app import create_departments_app
from exchange.serving import serve

__all__ = ["serve_departments"]


def serve_departments(
    settings: Settings,
    host: str,
    port: int,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    ssl_ca_certs: str | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve every department in ``settings.services_dir`` on ``host:port`` until stopped.

    Base URLs are ``http://host:port/departments/{code}``, the same paths as inside
    ``exchange up``, so the broker can be pointed at another machine unchanged. With
    ``ssl_certfile`` it serves https; with ``ssl_ca_certs`` too, it requires a client
    certificate issued by that CA (mTLS). ``on_ready`` is called once the port answers.
    """
    app = create_departments_app(settings)
    if settings.operator_key is None:
        # Nobody could change faults otherwise; say the generated key once, on stderr.
        sys.stderr.write(f"mock departments: operator key {app.operator_key}\n")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        ssl_ca_certs=ssl_ca_certs,
        ssl_cert_reqs=ssl.CERT_REQUIRED if ssl_ca_certs else ssl.CERT_NONE,
    )
    serve(config, on_ready)
