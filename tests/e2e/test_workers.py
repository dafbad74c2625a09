"""``exchange up --workers 2``: two processes on one port and one database, each seeing what
the other changed as soon as the change is acknowledged.

A connection stays with the worker that accepted it, so the test holds one connection to
each worker (told apart by ``/healthz``'s ``process``), changes something through one and
asks the other at once: no polling, since the rule is that nothing forbidden is served
once a change is acknowledged.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text
from tests.serve import exchange_up

from exchange.db.engine import Database
from exchange.departments.city import City
from exchange.security import demo_key

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OPERATOR_KEY = "exk_operator_workers-test"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
POSTGRES_URL = os.environ.get("EXCHANGE_TEST_POSTGRES_URL")


def _up(tmp: Path, database_url: str) -> Iterator[str]:
    # The supervisor stops its workers, then the departments process, on SIGTERM.
    with exchange_up(
        tmp,
        database_url,
        OPERATOR_KEY,
        args=("--workers", "2"),
        start_within=120,
        stop_within=30,
        EXCHANGE_POPULATION="2000",
        EXCHANGE_ENTERPRISES="500",
    ) as server:
        yield server.url


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def workers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One ``exchange up --workers 2`` per backend for the module (each start seeds)."""
    tmp = tmp_path_factory.mktemp("workers")
    if request.param == "sqlite":
        yield from _up(tmp, f"sqlite:///{tmp}/exchange.db")
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: set EXCHANGE_TEST_POSTGRES_URL (.ci/run does)")
    _drop(POSTGRES_URL)
    upgrade = subprocess.run(
        [sys.executable, "-m", "exchange.cli", "db", "upgrade", "--database-url", POSTGRES_URL],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    try:
        yield from _up(tmp, POSTGRES_URL)
    finally:
        _drop(POSTGRES_URL)


def _drop(url: str) -> None:
    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.dispose()


@pytest.fixture
def pair(workers: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    a, b = one_per_worker(workers)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def one_per_worker(url: str) -> tuple[httpx.Client, httpx.Client]:
    """A client (one kept-alive connection) on each of the two workers."""
    found: dict[int, httpx.Client] = {}
    spare: list[httpx.Client] = []
    deadline = time.monotonic() + 30
    while len(found) < 2:
        assert time.monotonic() < deadline, f"connections reached only processes {list(found)}"
        client = httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_connections=1))
        process = client.get("/healthz").json()["process"]
        if process in found:
            spare.append(client)
        else:
            found[process] = client
    for client in spare:
        client.close()
    a, b = found.values()
    # The connection is the worker: it answers from the same process every time.
    for client, process in zip((a, b), found, strict=True):
        assert {client.get("/healthz").json()["process"] for _ in range(5)} == {process}
    return a, b


def test_a_key_rotated_through_one_worker_is_refused_by_the_other_at_once(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    old = {"Authorization": f"Bearer {demo_key(OPERATOR_KEY, 'rsj')}"}
    # Both workers have the key in their caches.
    for client in (a, b):
        assert client.get("/api/v1/departments/me", headers=old).status_code == 200
    rotated = a.post("/api/v1/departments/rsj/keys", headers=OPERATOR)
    assert rotated.status_code == 200, rotated.text
    refused = b.get("/api/v1/departments/me", headers=old)
    assert refused.status_code == 401, refused.text
    new = {"Authorization": f"Bearer {rotated.json()['api_key']}"}
    assert b.get("/api/v1/departments/me", headers=new).json()["code"] == "rsj"


def test_a_grant_revoked_through_one_worker_stops_the_other_workers_broker_at_once(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    consumer = {"Authorization": f"Bearer {demo_key(OPERATOR_KEY, 'mzj')}"}
    topics = a.get(
        "/api/v1/catalog/topics", params={"q": "户籍", "limit": 100}, headers=consumer
    ).json()["items"]
    code = next(t["resource_code"] for t in topics if t["slug"] == "household-registration")
    applied = a.post(
        "/api/v1/applications",
        headers=consumer,
        json={
            "topic": code,
            "items": ["id_number", "name", "sex"],  # unconditional: granted at once
            "purpose": {"scope": "data_verification", "text": "居民家庭经济状况核对"},
            "legal_function": "《社会救助暂行办法》第十一条",
            "valid_until": (dt.date.today() + dt.timedelta(days=365)).isoformat(),
        },
    )
    assert applied.status_code == 201, applied.text
    grant_id = applied.json()["grant_id"]
    assert grant_id is not None, applied.json()
    query = f"/api/v1/exchange/{code}/query"
    key = {"keys": [City(2020, 2_000, 500).id_number_of(1)]}
    served = b.post(query, json=key, headers=consumer)
    assert served.status_code == 200, served.text
    revoked = a.post(f"/api/v1/grants/{grant_id}/revoke", headers=OPERATOR, json={"reason": "test"})
    assert revoked.status_code == 200, revoked.text
    refused = b.post(query, json=key, headers=consumer)
    assert refused.status_code == 403, refused.text


def test_a_fault_set_through_one_worker_is_met_through_the_other(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    # The mock departments keep their fault state in one process for every worker.
    a, b = pair
    assert b.get("/departments/gaj").status_code == 200
    put = a.put("/departments/_faults/gaj", json={"outage": True}, headers=OPERATOR)
    assert put.status_code == 200, put.text
    assert b.get("/departments/gaj").status_code == 503
    assert a.delete("/departments/_faults/gaj", headers=OPERATOR).status_code in (200, 204)
    assert b.get("/departments/gaj").status_code == 200


def test_a_killed_supervisor_takes_its_workers_and_departments_with_it(tmp_path: Path) -> None:
    # SIGKILL runs no cleanup: the workers and the departments process must end by
    # themselves, or they keep the port and the next ``exchange up`` cannot start.
    from exchange import proctree

    with exchange_up(
        tmp_path,
        f"sqlite:///{tmp_path}/exchange.db",
        OPERATOR_KEY,
        args=("--workers", "2"),
        start_within=120,
        EXCHANGE_POPULATION="2000",
        EXCHANGE_ENTERPRISES="500",
    ) as server:
        tree = proctree.descendants(server.process.pid)
        # the supervisor, two workers, the departments (and multiprocessing's tracker)
        assert len(tree) >= 4, tree
        server.process.kill()
        server.process.wait()
        deadline = time.monotonic() + 30
        while left := [pid for pid in tree[1:] if _running(pid)]:
            assert time.monotonic() < deadline, f"outlived the supervisor: {_named(left)}"
            time.sleep(0.1)
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url + "/healthz", timeout=2)


def _named(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            command = "?"
        out.append(f"{pid} {command[:120]}")
    return out


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_an_export_through_the_broker_reaches_the_departments_process(workers: str) -> None:
    # The broker's signed export call (fields= in the signed query) goes through the
    # worker's gateway to the departments process: the gateway must not requote it.
    consumer = {"Authorization": f"Bearer {demo_key(OPERATOR_KEY, 'czj')}"}
    topics = httpx.get(
        f"{workers}/api/v1/catalog/topics",
        params={"q": "商事主体", "limit": 100},
        headers=consumer,
        timeout=30,
    ).json()["items"]
    code = next(t["resource_code"] for t in topics if t["slug"] == "enterprise-registration")
    granted = ["credit_code", "name", "status"]  # unconditional: granted at once
    applied = httpx.post(
        f"{workers}/api/v1/applications",
        headers=consumer,
        timeout=30,
        json={
            "topic": code,
            "items": granted,
            "purpose": {"scope": "administrative_basis", "text": "企业信息核对"},
            "legal_function": "《优化营商环境条例》",
            "valid_until": (dt.date.today() + dt.timedelta(days=365)).isoformat(),
            "delivery": "bulk",
        },
    )
    assert applied.status_code == 201, applied.text
    exported = httpx.get(
        f"{workers}/api/v1/exchange/{code}/export",
        params={"limit": 50, "offset": 3},
        headers=consumer,
        timeout=30,
    )
    assert exported.status_code == 200, exported.text
    records = [orjson.loads(line) for line in exported.content.splitlines() if line]
    assert len(records) == 50
    assert all(set(r) == set(granted) for r in records), records[0]
