"""Engine and session factory for one exchange process.

Built by ``create_app`` (or a CLI command) from Settings and closed with it: there is no
module-level engine for tests to patch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from exchange.db.freshness import Freshness
from exchange.db.reactions import Reactions
from exchange.db.sqlite_memstatus import disable_memory_statistics
from exchange.db.turns import WriteTurns

log = logging.getLogger(__name__)


def prepare_sqlite_path(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


#: SQLite's page cache per connection, KiB (its default, set so that the bound is stated:
#: exchange.bounds declares it times the pool's connections).
SQLITE_CACHE_KIB = 2000


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (search, checks) run while the audit writer commits; NORMAL is
    # durable across a process kill in WAL mode (only an OS crash can lose the last commit).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


class Database:
    """One engine plus its session factory."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            # Before the first connection: threads then use SQLite side by side.
            disable_memory_statistics()
            prepare_sqlite_path(url)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if ":memory:" in url or url in {"sqlite://", "sqlite:///"}:
                from sqlalchemy.pool import StaticPool

                kwargs["poolclass"] = StaticPool
        else:
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _on_sqlite_connect)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        #: change announcements: how every cache, in every process, stays fresh
        self.freshness = Freshness(self.engine, self.sessions)
        #: in-transaction reactions of one domain to another's events
        self.reactions = Reactions(self.sessions)
        self._turns = WriteTurns()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def writing(self) -> Iterator[None]:
        """A background writer's turn at a SQLite database (see :mod:`exchange.db.turns`);
        nothing on PostgreSQL, whose writers lock rows, not the database."""
        if not self.is_sqlite:
            yield
            return
        with self._turns.turn():
            yield

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def checked_out(self) -> int:
        """Connections taken from the pool and not given back (0 for a pool without count)."""
        pool = self.engine.pool
        return pool.checkedout() if isinstance(pool, QueuePool) else 0

    def dispose(self) -> None:
        self.freshness.close()
        # Disposing closes only the pooled connections: one still checked out belongs to work
        # that outlived its owner's stop() (a thread the caller stopped waiting for), and is
        # never closed (psycopg warns much later, in whatever runs then). Said here, where the
        # cause is: the owner should await its thread (exchange.db.threads.run_joined).
        if out := self.checked_out():
            log.warning(
                "database %s disposed with %d connection(s) still checked out: work in a "
                "thread outlived the shutdown of what started it",
                self.engine.url.render_as_string(hide_password=True),
                out,
            )
        self.engine.dispose()
