"""End to end: the department process over real HTTP on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.signing import ExchangeSigned

from exchange.departments.city import City

ROOT = Path(__file__).resolve().parents[2]
KEY = "e2e-operator"
SECRET = "e2e-provider-secret"

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "EXCHANGE_OPERATOR_KEY": KEY,
        "EXCHANGE_PROVIDER_SECRET": SECRET,
        "EXCHANGE_SERVICES_DIR": str(ROOT / "services"),
        "EXCHANGE_LOG_LEVEL": "warning",
    }
    code = (
        "from exchange.config import Settings\n"
        "from exchange.departments.cli import serve_departments\n"
        f"serve_departments(Settings(), '127.0.0.1', {port})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        # A deadline for "starts at all", not a speed check: a busy 2-core machine took 16-18 s.
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(f"{url}/departments/gaj", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("department server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_lookup_export_and_faults_over_http(server: str) -> None:
    city = City(2020, 100_000, 20_000)
    op = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=server, timeout=5, auth=ExchangeSigned(SECRET)) as c:
        c.put("/departments/_faults/gaj", json={"latency_ms": 0, "jitter_ms": 0}, headers=op)
        key = city.id_number_of(123)
        rec = c.get(f"/departments/gaj/topics/household-registration/records/{key}").json()
        assert rec["name"] == city.person(123).name
        assert (
            c.get(
                "/departments/gaj/topics/household-registration/records/11010519491231002X"
            ).status_code
            == 404
        )
        with c.stream(
            "GET", "/departments/gaj/topics/household-registration/export", params={"limit": 3000}
        ) as resp:
            lines = sum(chunk.count(b"\n") for chunk in resp.iter_bytes())
        assert lines == 3000
        # A hang outlives the caller's timeout; the caller gives up, the server carries on.
        c.put(
            "/departments/_faults/gaj/household-registration",
            json={"hang_rate": 1.0, "hang_seconds": 30},
            headers=op,
        )
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            c.get(f"/departments/gaj/topics/household-registration/records/{key}", timeout=0.5)
        assert time.monotonic() - started < 5
        c.delete("/departments/_faults/gaj/household-registration", headers=op)
        again = c.get(f"/departments/gaj/topics/household-registration/records/{key}")
        assert again.status_code == 200


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_export_workers_end_with_a_killed_departments_process() -> None:
    """SIGKILL runs no shutdown: the export worker processes (and multiprocessing's
    resource tracker) must end with their parent anyway, not live on holding a city."""
    port = _free_port()
    env = {
        **os.environ,
        "EXCHANGE_OPERATOR_KEY": KEY,
        "EXCHANGE_PROVIDER_SECRET": SECRET,
        "EXCHANGE_SERVICES_DIR": str(ROOT / "services"),
        "EXCHANGE_LOG_LEVEL": "warning",
        "EXCHANGE_POPULATION": "5000",
        "EXCHANGE_DEPARTMENTS_EXPORT_WORKERS": "2",
    }
    code = (
        "from exchange.config import Settings\n"
        "from exchange.departments.cli import serve_departments\n"
        f"serve_departments(Settings(), '127.0.0.1', {port})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "the departments process exited"
                assert time.monotonic() < deadline, "the departments process did not start"
                time.sleep(0.1)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) >= 2  # the two workers (and the resource tracker)
    finally:
        proc.kill()
        proc.wait()

    def running(pid: str) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        return state != "Z"

    deadline = time.monotonic() + 30
    while any(running(pid) for pid in children):
        assert time.monotonic() < deadline, "export workers outlived the killed process"
        time.sleep(0.1)
