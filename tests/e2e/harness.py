"""Real HTTP on loopback: uvicorn servers in threads, a seeded exchange, free ports."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from exchange.config import Settings
from exchange.context import AppContext
from exchange.security import demo_key
from exchange.serving import CoalescingProtocol

OPERATOR_KEY = "exk_operator_e2e-key"
#: the exchange's master secret: the broker signs with, the departments check, credentials
#: derived from it (both sides are built from the same settings)
PROVIDER_SECRET = "exms_e2e-provider-secret"
SERVED = ("gaj", "ghzyj", "gjj", "mzj", "rsj", "scjgj", "swj", "wjw", "ybj", "zsj")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        """Signals belong to the test process, not to this server thread."""


@contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a thread; yield its base URL."""
    port = port or free_port()
    # Served as `exchange up` serves (exchange.serving.run): its protocol (one write per
    # loop turn, the broker's lean path) and no proxy-headers layer.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http=CoalescingProtocol,
        proxy_headers=False,
    )
    server = _ThreadServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def settings_for(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        operator_key=OPERATOR_KEY,
        provider_secret=PROVIDER_SECRET,
        catalog_profile="core",
        mock_departments=False,
        population=2_000,
        enterprises=500,
    )


def seed_exchange(ctx: AppContext, departments_url: str) -> None:
    from exchange.seed import seed

    seed(
        ctx.db,
        ctx.settings,
        OPERATOR_KEY,
        ctx.clock,
        served=SERVED,
        departments_url=departments_url,
    )


def key_of(code: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo_key(OPERATOR_KEY, code)}"}


OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


def topic_code(ctx: AppContext, slug: str) -> str:
    """Resource code of a seeded topic by its slug."""
    from sqlalchemy import select

    from exchange.catalog.models import Topic

    with ctx.db.sessions() as session:
        code = session.scalar(select(Topic.resource_code).where(Topic.slug == slug))
    if code is None:
        raise LookupError(slug)
    return code


def apply(
    client: httpx.Client,
    consumer: str,
    topic: str,
    items: list[str],
    *,
    valid_until: str | None = None,
    daily_quota: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "topic": topic,
        "items": items,
        "purpose": {"scope": "data_verification", "text": "居民家庭经济状况核对"},
        "legal_function": "《社会救助暂行办法》第十一条",
        "valid_until": valid_until or (dt.date.today() + dt.timedelta(days=365)).isoformat(),
    }
    if daily_quota is not None:
        body["daily_quota"] = daily_quota
    resp = client.post("/api/v1/applications", json=body, headers=key_of(consumer))
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    if out.get("grant_id") is not None:
        _await_grant(client, consumer, topic)
    return out


def _await_grant(client: httpx.Client, consumer: str, topic: str) -> None:
    """Wait until the broker's grant cache sees a new grant.

    FastAPI commits a yield-dependency's session around sending the response, so the
    201 can reach the caller a moment before the commit hook refreshes the cache.
    """
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        resp = client.post(
            "/api/v1/authz/check",
            json={"consumer": consumer, "topic": topic},
            headers=OPERATOR,
        )
        if resp.status_code == 200 and resp.json().get("allowed"):
            return
        time.sleep(0.02)
