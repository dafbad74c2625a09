"""No acknowledged exchange loses its audit entry when the broker is killed with SIGKILL;
``exchange audit verify`` finds tampering in the chain."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text, update
from tests.e2e.harness import (
    OPERATOR_KEY,
    apply,
    free_port,
    key_of,
    seed_exchange,
    serve,
    settings_for,
    topic_code,
)

from exchange.app import build_context
from exchange.audit.chain import append
from exchange.audit.entry import Entry
from exchange.audit.models import AuditEntry
from exchange.audit.trust import Trust
from exchange.audit.verify import verify
from exchange.audit.writer import AuditWriter, recover
from exchange.db.engine import Database
from exchange.db.migrate import ensure_current
from exchange.departments.app import create_departments_app
from exchange.departments.city import City

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

_SERVER = """
import sys
from exchange.app import build_context, create_app
from exchange.serving import run
from tests.e2e.harness import settings_for
settings = settings_for(sys.argv[1])
ctx = build_context(settings)
run(create_app(settings, ctx=ctx), host="127.0.0.1", port=int(sys.argv[2]))
"""


@pytest.fixture
def departments(tmp_path: Path) -> Iterator[str]:
    with serve(create_departments_app(settings_for(f"sqlite:///{tmp_path}/unused.db"))) as url:
        yield url


def test_sigkill_loses_no_acknowledged_entry(database_url: str, departments: str) -> None:
    """On SQLite the answer waits for the journal write (replayed after the kill); on
    PostgreSQL for the group's commit (audit.pgchain), so nothing is left to replay."""
    url_db = database_url
    ctx = build_context(settings_for(url_db))
    seed_exchange(ctx, f"{departments}/departments")
    code = topic_code(ctx, "household-registration")
    ctx.db.dispose()

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EXCHANGE_OPERATOR_KEY": OPERATOR_KEY}
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, url_db, str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        with httpx.Client(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    http.get("/healthz")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            apply(http, "mzj", code, ["id_number", "name"])
        city = City(2020, 2_000, 500)

        def load(worker: int) -> None:
            with httpx.Client(base_url=base, timeout=5) as client:
                for i in range(2_000):  # bounded; the kill ends it far sooner
                    if stop.is_set():
                        return
                    try:
                        resp = client.post(
                            f"/api/v1/exchange/{code}/query",
                            json={"keys": [city.id_number_of((worker * 97 + i) % 2_000)]},
                            headers=key_of("mzj"),
                        )
                    except httpx.TransportError:
                        return
                    if resp.status_code == 200:
                        with lock:
                            acknowledged.append(resp.json()["request_id"])

        threads = [threading.Thread(target=load, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        # Kill mid-load once the load is going (polled: a busy machine starts slowly).
        deadline = time.monotonic() + 30
        while len(acknowledged) <= 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    assert len(acknowledged) > 50, "the load never got going"
    db = Database(url_db)
    try:
        # What a restarted broker (or `exchange audit verify`) does first: commit the
        # entries the killed one had journaled (acknowledged) but not yet committed.
        trust = Trust.of(settings_for(url_db), create=False)
        assert trust.signer is not None
        assert (trust.journal is not None) == db.is_sqlite
        if trust.journal is not None:
            assert recover(db, trust.journal, trust.signer).replayed is not None
        with db.sessions() as session:
            stored = set(session.scalars(select(AuditEntry.request_id)))
        assert set(acknowledged) <= stored
        report = verify(db, trust.verifier, trust.mirror, trust.journal)
        assert report.ok, report.findings
        assert report.checkpoints >= 1  # the killed writer's opening one at least
    finally:
        db.dispose()


def test_audit_verify_cli_detects_an_edited_entry(tmp_path: Path) -> None:
    url_db = f"sqlite:///{tmp_path}/audit.db"
    db = Database(url_db)
    ensure_current(db)
    trust = Trust.of(settings_for(url_db))
    writer = AuditWriter(db, signer=trust.signer, mirror=trust.mirror)
    writer.start()
    now = dt.datetime.now(dt.UTC)
    for i in range(4):
        writer.record_sync(
            Entry(
                f"r{i}",
                now,
                "query",
                "mzj",
                "gaj",
                "101001001/000001",
                ["name"],
                None,
                1,
                "ok",
                200,
                900,
            )
        )
    writer.stop()
    run = [sys.executable, "-c", "from exchange.cli import main; main()"]
    run += ["audit", "verify", "--database-url", url_db]
    ok = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "4 entries" in ok.stdout
    with db.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(consumer="gaj"))
    db.dispose()
    bad = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "entry 2" in bad.stderr
    assert "edited" in bad.stderr


def test_audit_cli_reports_forgery_and_a_broken_database_without_a_traceback(
    tmp_path: Path,
) -> None:
    url_db = f"sqlite:///{tmp_path}/audit.db"
    db = Database(url_db)
    ensure_current(db)
    trust = Trust.of(settings_for(url_db))
    writer = AuditWriter(db, signer=trust.signer, mirror=trust.mirror)
    writer.start()
    entry = Entry(
        "r1",
        dt.datetime.now(dt.UTC),
        "query",
        "mzj",
        "gaj",
        "101001001/000001",
        ["name"],
        None,
        1,
        "ok",
        200,
        900,
    )
    writer.record_sync(entry)
    writer.stop()
    cli = [sys.executable, "-m", "exchange.cli", "audit"]

    key = subprocess.run(
        [*cli, "public-key", "--database-url", url_db], capture_output=True, timeout=60, check=True
    )
    assert trust.verifier is not None
    assert key.stdout.decode() == trust.verifier.pem()

    # Appended with the head moved along, after the exchange stopped cleanly.
    append(db, [dataclasses.replace(entry, request_id="r2", records=900, cached=None)])
    forged = subprocess.run(
        [*cli, "verify", "--database-url", url_db], capture_output=True, text=True, timeout=60
    )
    assert forged.returncode == 1
    assert "entry 2 (forged)" in forged.stderr

    with db.session() as session:
        session.execute(text("DROP TABLE audit_volume"))
    broken = subprocess.run(
        [*cli, "verify", "--database-url", url_db], capture_output=True, text=True, timeout=60
    )
    assert broken.returncode != 0
    assert "Traceback" not in broken.stderr + broken.stdout
    assert "cannot be read" in broken.stderr
    db.dispose()
