"""``exchange up --workers N``: N exchange processes on one port and one database.

uvicorn's supervisor binds the port once and starts N worker processes that accept on
the same socket (the kernel hands each connection to one of them); it restarts a worker
that dies or stops answering its pings. Each worker builds the whole exchange with
:func:`worker_app`, from the ``EXCHANGE_*`` environment the parent sets.

What one process could keep to itself, N processes must share:

* the database: every worker has its own engine on the same URL;
* caches (grants, keys, routes, the search index): each process's caches follow the
  changes other processes make through :mod:`exchange.db.freshness`;
* the mock departments' fault state: one process of its own serves them (``exchange serve
  departments`` on a loopback port), and every worker passes ``/departments/...`` to it,
  so a fault set through any worker is the fault every worker's broker meets;
* the audit journal: each process claims a journal of its own
  (:func:`exchange.audit.journal.claim`), and a starting one replays what a killed one left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from exchange import healthcheck
from exchange.children import end_with_parent, follow_parent
from exchange.config import Settings

__all__ = ["DEPARTMENTS_ENV", "serve_workers", "worker_app"]

#: Where the workers' mock departments run (set by the parent for its workers).
DEPARTMENTS_ENV = "EXCHANGE_WORKERS_DEPARTMENTS_URL"
#: Where the workers' brokers reach the mock departments (``Settings.builtin_departments_url``).
BUILTIN_DEPARTMENTS_ENV = "EXCHANGE_BUILTIN_DEPARTMENTS_URL"
#: The supervisor's pid (set by it for its workers, which end when it dies).
SUPERVISOR_ENV = "EXCHANGE_WORKERS_SUPERVISOR_PID"


def worker_app() -> Any:
    """uvicorn's app factory in each worker: the whole exchange, departments passed on."""
    from exchange.app import PARTS, build_context, create_app, tune_gc
    from exchange.web.gateway import Gateway, PartUrls

    # uvicorn's supervisor stops its workers on SIGTERM; killed, it cannot, and the
    # workers would keep serving the port with nobody to stop them. The supervisor's pid
    # comes from it, not from getppid(): a worker still starting when the supervisor was
    # killed is already an orphan, and getppid() would name its new parent (measured: one
    # worker of two outlived the supervisor about one run in three).
    follow_parent(int(os.environ.get(SUPERVISOR_ENV) or os.getppid()))
    settings = Settings()
    ctx = build_context(settings)
    departments = os.environ.get(DEPARTMENTS_ENV)
    if departments:
        # Every part, without mock departments inside (``parts`` named): their paths go to
        # the one departments process; the broker still reaches them at this port.
        app: Any = Gateway(
            create_app(settings, ctx=ctx, parts=PARTS),
            PartUrls({"departments": [departments]}),
        )
    else:
        app = create_app(settings, ctx=ctx)
    tune_gc(settings)
    return app


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def _departments(settings: Settings) -> Iterator[str]:
    """``exchange serve departments`` on a free loopback port, for as long as the workers run."""
    port = _free_port("127.0.0.1")
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "EXCHANGE_OPERATOR_KEY": str(settings.operator_key),
        # Its city changes on the platform clock and is published to the workers.
        "EXCHANGE_CITY_PUBLISH_URL": settings.city_publish_url or settings.self_url,
    }
    cmd = [sys.executable, "-m", "exchange.cli", "serve", "departments", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, preexec_fn=end_with_parent())
    try:
        why = healthcheck.wait(f"{url}/healthz", within=60, proc=proc)
        if why is not None:
            raise RuntimeError(f"the mock departments {why}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _when_answering(url: str, then: Callable[[], None]) -> None:
    """Call ``then`` once ``url`` is healthy, or never if it is not within 120 s (the
    supervisor's own log says why a worker did not start)."""
    if healthcheck.wait(url, within=120, every=0.05) is None:
        then()


def serve_workers(
    settings: Settings, workers: int, *, on_ready: Callable[[], None] | None = None
) -> None:
    """Serve the whole exchange from ``workers`` processes until stopped (Ctrl-C, SIGTERM).

    ``on_ready`` is called once a worker answers on the port (the supervisor binds it before
    its workers have built the exchange, so bound is not yet answering)."""
    import uvicorn

    from exchange.security import resolve_provider_secret
    from exchange.serving import CoalescingProtocol

    provider_secret, _ = resolve_provider_secret(settings)
    os.environ.update(
        {
            SUPERVISOR_ENV: str(os.getpid()),
            "EXCHANGE_DATABASE_URL": settings.database_url,
            "EXCHANGE_OPERATOR_KEY": str(settings.operator_key),
            # The workers' brokers sign provider calls; the departments process verifies.
            "EXCHANGE_PROVIDER_SECRET": provider_secret,
            "EXCHANGE_HOST": settings.host,
            "EXCHANGE_PORT": str(settings.port),
            "EXCHANGE_CATALOG_PROFILE": settings.catalog_profile,
            "EXCHANGE_MOCK_DEPARTMENTS": "true" if settings.mock_departments else "false",
        }
    )
    if settings.public_url:
        os.environ["EXCHANGE_PUBLIC_URL"] = settings.public_url

    def run() -> None:
        uvicorn.run(
            "exchange.workers:worker_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            loop="auto",
            http=CoalescingProtocol,
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,
        )

    if on_ready is not None:
        threading.Thread(
            target=_when_answering,
            args=(settings.self_url + "/healthz", on_ready),
            name="workers-ready",
            daemon=True,
        ).start()
    if not settings.mock_departments:
        run()
        return
    with _departments(settings) as url:
        os.environ[DEPARTMENTS_ENV] = url
        # The workers' brokers call the departments' process directly: through the
        # exchange's own port, every provider call (a 10,000-record export's megabytes
        # included) crossed a second worker's gateway on its way there.
        os.environ[BUILTIN_DEPARTMENTS_ENV] = url
        run()
