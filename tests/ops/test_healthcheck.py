"""``python -m exchange.healthcheck``, the container's HEALTHCHECK, against real servers."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from tests.e2e.harness import free_port, serve

from exchange.healthcheck import check, wait

pytestmark = pytest.mark.e2e


def answering(status: int, body: bytes) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def test_healthy_when_healthz_says_ok() -> None:
    with serve(answering(200, b'{"status": "ok"}')) as url:
        assert check(f"{url}/healthz") is None
        port = url.rsplit(":", 1)[1]
        done = subprocess.run(
            [sys.executable, "-m", "exchange.healthcheck"],
            env={"EXCHANGE_PORT": port, "PATH": ""},
            capture_output=True,
            timeout=30,
        )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("status", "body"), [(503, b'{"status": "ok"}'), (200, b'{"status": "starting"}'), (200, b"<")]
)
def test_unhealthy_on_an_error_a_wrong_status_or_garbage(status: int, body: bytes) -> None:
    with serve(answering(status, body)) as url:
        assert check(f"{url}/healthz") is not None


def test_unhealthy_when_nothing_listens() -> None:
    port = str(free_port())
    problem = check(f"http://127.0.0.1:{port}/healthz", timeout=2)
    assert problem is not None
    done = subprocess.run(
        [sys.executable, "-m", "exchange.healthcheck"],
        env={"EXCHANGE_PORT": port, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "unhealthy" in done.stderr


def test_wait_returns_once_healthy() -> None:
    with serve(answering(200, b'{"status": "ok"}')) as url:
        assert wait(f"{url}/healthz", within=10) is None


def test_wait_says_when_the_server_started_for_it_ended_first() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    url = f"http://127.0.0.1:{free_port()}/healthz"
    assert wait(url, within=30, proc=proc) == "exited with 3"


def test_wait_says_when_nothing_answered_in_time() -> None:
    with serve(answering(200, b'{"status": "starting"}')) as url:
        assert wait(f"{url}/healthz", within=0.3, every=0.05) == "did not answer within 0.3 s"
