"""PostgreSQL for the benchmarks: a server of their own (``scripts/pg-start`` with its own
PGDATA and port) or one the caller names, a throwaway migrated database on it, and the
server processes whose CPU a run is charged.

A named server is never emptied: the run creates its own database beside the one in the
URL (``CREATE DATABASE``, so the URL's role needs that right) and drops it afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _common import free_port
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Server:
    """A reachable PostgreSQL: a URL to any database on it, and (for a server this run
    started) its data directory, whose processes are all charged to the run."""

    url: str
    pgdata: Path | None = None


@contextmanager
def own_server() -> Iterator[Server]:
    """A fresh server on a free port, with ``scripts/pg-start``'s settings (``fsync=off``:
    a commit does not wait for the disk, as SQLite's ``synchronous=NORMAL`` in WAL mode),
    stopped and deleted afterwards."""
    base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    base.chmod(0o755)  # pg-start runs the server as the postgres user when we are root
    pgdata = base / "data"
    env = {**os.environ, "PGDATA_DIR": str(pgdata), "EXCHANGE_PG_PORT": str(free_port())}
    start = ROOT / "scripts" / "pg-start"
    try:
        url = subprocess.run(
            [str(start)], env=env, check=True, capture_output=True, text=True, timeout=300
        ).stdout.strip()
        yield Server(url.splitlines()[-1], pgdata)
    finally:
        subprocess.run([str(start), "stop"], env=env, capture_output=True, check=False, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def _libpq(url: str) -> str:
    """A SQLAlchemy URL as psycopg's connection string."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database(server: Server) -> Iterator[str]:
    """A new database on ``server`` migrated to the code's head (its URL); dropped after."""
    import psycopg

    from exchange.db import migrate

    name = f"bench_broker_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(server.url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # a generated name, not input
    url = make_url(server.url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(_libpq(server.url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_pids(server: Server, database_url: str) -> Callable[[], list[int]]:
    """What to charge a run: every process of a server this run started (backends and the
    WAL writer, checkpointer …), else the backends serving ``database_url``; a function,
    because backends come and go with the exchange's pool."""
    pgdata = server.pgdata
    if pgdata is not None:

        def cluster() -> list[int]:
            try:
                master = int((pgdata / "postmaster.pid").read_text().split()[0])
                children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
            except (OSError, ValueError, IndexError):
                return []
            return [master, *(int(c) for c in children)]

        return cluster
    database = make_url(database_url).database

    def backends() -> list[int]:
        import psycopg

        with psycopg.connect(_libpq(server.url), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchall()
        return [int(r[0]) for r in rows]

    return backends
