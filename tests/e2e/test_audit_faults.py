"""What callers do to a running ``exchange up`` (real HTTP, SQLite and PostgreSQL) never
takes the audit down: values PostgreSQL cannot store, reused request ids, exports
abandoned halfway, connections dropped; and SIGTERM always stops it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select
from tests.e2e.harness import OPERATOR, OPERATOR_KEY, apply, key_of
from tests.serve import Server, exchange_up

from exchange.catalog.models import Topic
from exchange.db.engine import Database
from exchange.departments.city import City

pytestmark = pytest.mark.e2e

CITY = City(2020, 2_000, 500)
SMALL = {"EXCHANGE_POPULATION": "2000", "EXCHANGE_ENTERPRISES": "500"}


@pytest.fixture
def running(tmp_path: Path, database_url: str) -> Iterator[tuple[Server, str]]:
    """``exchange up`` with mzj and rsj granted household registration."""
    with exchange_up(tmp_path, database_url, OPERATOR_KEY, **SMALL) as server:
        db = Database(database_url)
        with db.sessions() as s:
            code = s.scalars(
                select(Topic.resource_code).where(Topic.slug == "household-registration")
            ).one()
        db.dispose()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for consumer in ("mzj", "rsj"):
                apply(http, consumer, code, ["id_number", "name"])
        yield server, code


def audit(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    page = http.get("/api/v1/audit/entries", params={**params, "limit": 1000}, headers=OPERATOR)
    assert page.status_code == 200, page.text
    entries: list[dict[str, Any]] = page.json()["entries"]
    return entries


def test_a_value_the_database_cannot_store_fails_nobody_else(
    running: tuple[Server, str],
) -> None:
    server, code = running
    statuses: dict[str, list[int]] = {"mzj": [], "rsj": []}
    lock = threading.Lock()

    def calls(consumer: str, n: int, headers: dict[str, str]) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i in range(n):
                resp = http.post(
                    f"/api/v1/exchange/{code}/query",
                    json={"keys": [CITY.id_number_of(i % 2_000)]},
                    headers={**key_of(consumer), **headers},
                )
                with lock:
                    statuses[consumer].append(resp.status_code)

    # mzj names a case with a NUL byte (PostgreSQL text cannot hold one), while rsj's
    # calls share its commit groups.
    nul = {"X-Exchange-Case": "abc%00def"}
    threads = [threading.Thread(target=calls, args=("mzj", 25, nul))]
    threads += [threading.Thread(target=calls, args=("rsj", 40, {})) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses["mzj"] == [200] * 25
    assert statuses["rsj"] == [200] * 120

    with httpx.Client(base_url=server.url, timeout=30) as http:
        cases = {e["case"] for e in audit(http, consumer="mzj")}
        assert cases == {"abc\\x00def"}  # escaped, not dropped
        assert len(audit(http, consumer="rsj")) == 120
        report = http.get("/api/v1/audit/verify", headers=OPERATOR).json()
        assert report["ok"] is True, report


def test_the_exchange_assigns_request_ids_and_audits_the_callers_as_correlation(
    running: tuple[Server, str],
) -> None:
    server, code = running
    seen = []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for consumer in ("mzj", "rsj"):
            resp = http.post(
                f"/api/v1/exchange/{code}/query",
                json={"keys": [CITY.id_number_of(1)]},
                headers={**key_of(consumer), "X-Request-Id": "case-2026-7"},
            )
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-correlation-id"] == "case-2026-7"
            assert resp.json()["request_id"] == resp.headers["x-request-id"] != "case-2026-7"
            seen.append(resp.headers["x-request-id"])
        assert seen[0] != seen[1]
        for consumer, rid in zip(("mzj", "rsj"), seen, strict=True):
            (entry,) = audit(http, request_id=rid)
            assert (entry["consumer"], entry["correlation_id"]) == (consumer, "case-2026-7")
        # rsj cannot pass its call off as mzj's by reusing mzj's request id.
        mine = audit(http, request_id="case-2026-7")
        assert mine == []


def _drop_mid_request(url: str, path: str, key: str) -> None:
    """Send a lookup and hang up before the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80)) as sock:
        body = b'{"keys":["%s"]}' % CITY.id_number_of(3).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)


def test_abandoned_exports_and_dropped_calls_leave_it_serving_and_sigterm_stops_it(
    running: tuple[Server, str], tmp_path: Path, database_url: str
) -> None:
    server, code = running
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(4):
            # Read the head and a first chunk of the export, then hang up.
            with http.stream(
                "GET", f"/api/v1/exchange/{code}/export", headers=key_of("mzj")
            ) as resp:
                assert resp.status_code == 200
                next(resp.iter_raw())
        for _ in range(10):
            _drop_mid_request(
                server.url,
                f"/api/v1/exchange/{code}/query",
                key_of("rsj")["Authorization"],
            )
        # Every call after that is answered (once: 503 broker.audit_unavailable until restart).
        for i in range(30):
            resp = http.post(
                f"/api/v1/exchange/{code}/query",
                json={"keys": [CITY.id_number_of(i)]},
                headers=key_of("mzj"),
            )
            assert resp.status_code == 200, resp.text
        # Each export is audited, finished or abandoned (client.abandoned, 499).
        deadline = time.monotonic() + 20
        while len([e for e in audit(http, consumer="mzj") if e["kind"] == "export"]) < 4:
            assert time.monotonic() < deadline, "an export went unaudited"
            time.sleep(0.1)

    server.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught: -SIGTERM.
    code_ = server.process.wait(timeout=30)
    assert code_ in (0, -signal.SIGTERM), server.log.read_text()[-2000:]
    assert "Traceback" not in server.log.read_text()

    # Stopped cleanly: its close checkpoint covers every entry, and the log verifies.
    run = [sys.executable, "-m", "exchange.cli", "audit", "verify", "--database-url"]
    done = subprocess.run(
        [*run, database_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=os.environ,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unsigned" not in done.stdout
