"""Schema migrations with Alembic: upgrade, inspect, and the check every start makes.

The revisions live in the package (``exchange/db/migrations``), so an installed exchange
carries its own schema history. Alembic is driven from here, never from an ``alembic.ini``:
``exchange db …`` commands, ``build_context`` and the tests all go through these functions.

Start-up rule: an embedded SQLite database belongs to one exchange, which upgrades it
itself; a PostgreSQL database is shared by processes and upgraded by an operator
(``exchange db upgrade``), so a process finding it behind refuses to serve.
"""

from __future__ import annotations

import functools
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator, TypeEngine

from exchange.db.engine import Database, prepare_sqlite_path

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
UPGRADE_COMMAND = "exchange db upgrade"
# Any constant: PostgreSQL advisory locks are keyed by a number, this one is ours.
_PG_LOCK_KEY = 4_201_420_301
# Revision files must be importable module names (mypy and ruff check them like all code).
_FILE_TEMPLATE = "rev_%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not the one this exchange's code expects."""


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands relative to the revisions this code carries."""

    current: tuple[str, ...]
    head: str
    # Tables present without an alembic_version table: a database made by create_all
    # before migrations existed (its schema is the baseline's).
    unversioned: bool = False

    @property
    def at_head(self) -> bool:
        return self.current == (self.head,)

    @property
    def empty(self) -> bool:
        return not self.current and not self.unversioned


def _render_item(type_: str, obj: Any, _autogen: AutogenContext) -> str | bool:
    # A revision must not import application code that later changes: a TypeDecorator
    # (UTCDateTime) is written as the plain column type it stores.
    if type_ == "type" and isinstance(obj, TypeDecorator):
        impl: TypeEngine[Any] = obj.impl_instance
        return f"sa.{impl!r}"
    return False


def migration_options(connection: Connection) -> dict[str, Any]:
    """Options of Alembic's migration context, shared by env.py and the schema checks."""
    from exchange.db.base import Base
    from exchange.db.registry import import_all_models

    import_all_models()
    sqlite = connection.dialect.name == "sqlite"
    return {
        "target_metadata": Base.metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        "render_as_batch": sqlite,
        # The caller holds one transaction around the whole upgrade (see _migration_engine).
        "transactional_ddl": True,
        "compare_type": True,
        "compare_server_default": True,
        "render_item": _render_item,
    }


def _migration_engine(url: str) -> Engine:
    """An engine for migrations only: one connection, one transaction for the whole run.

    On SQLite the driver's own transaction handling is switched off and every transaction
    starts with BEGIN IMMEDIATE: the whole upgrade (DDL included) is atomic, and a second
    process starting at the same moment waits for the first one's write lock and then finds
    the schema current. Foreign keys stay off (SQLite's default) so batch mode can copy
    and drop tables others refer to.
    """
    if not url.startswith("sqlite"):
        return create_engine(url, poolclass=NullPool)
    prepare_sqlite_path(url)
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _in_memory(url: str) -> bool:
    return url.startswith("sqlite") and make_url(url).database in {None, "", ":memory:"}


@contextmanager
def _locked(url: str, engine: Engine | None = None) -> Iterator[Connection]:
    """A connection inside a transaction that holds the database's migration lock.

    ``engine`` is used only for an in-memory SQLite database, which exists inside that
    engine's one connection and nowhere else.
    """
    own = engine is None or not _in_memory(url)
    used = _migration_engine(url) if own else engine
    assert used is not None
    try:
        with used.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            yield conn
    finally:
        if own:
            used.dispose()


def alembic_config(
    connection: Connection | None = None, *, directory: Path | None = None
) -> Config:
    """Alembic's configuration, built in code (the package carries no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(directory or MIGRATIONS_DIR))
    config.set_main_option("file_template", _FILE_TEMPLATE)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def scripts(directory: Path | None = None) -> ScriptDirectory:
    """The revisions in ``directory`` (default: the package's own, read once a process)."""
    if directory is None:
        return _package_scripts()
    return ScriptDirectory.from_config(alembic_config(directory=directory))


@functools.cache
def _package_scripts() -> ScriptDirectory:
    # An installed package's revisions do not change while it runs; every start-up check
    # and every test's fresh database would otherwise parse them all again (~15 ms).
    return ScriptDirectory.from_config(alembic_config())


def head(directory: Path | None = None) -> str:
    """The newest revision this code carries (exactly one: a branch is a mistake)."""
    heads = scripts(directory).get_heads()
    if len(heads) != 1:
        raise SchemaNotCurrent(
            f"the migrations have {len(heads)} heads ({', '.join(heads)}): re-point the newest "
            "revision's down_revision so there is one line of history"
        )
    return heads[0]


def baseline(directory: Path | None = None) -> str:
    """The first revision: the schema as it was when migrations were introduced."""
    bases = scripts(directory).get_bases()
    assert len(bases) == 1, bases
    return bases[0]


def _state(conn: Connection, directory: Path | None = None) -> SchemaState:
    current = tuple(MigrationContext.configure(conn).get_current_heads())
    unversioned = False
    if not current:
        unversioned = "member_department" in inspect(conn).get_table_names()
    return SchemaState(current=current, head=head(directory), unversioned=unversioned)


def state(url: str) -> SchemaState:
    """Where the database at ``url`` stands (it is not changed)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return _state(conn)
    finally:
        engine.dispose()


def upgrade(
    url: str,
    revision: str = "head",
    *,
    directory: Path | None = None,
    engine: Engine | None = None,
) -> SchemaState:
    """Upgrade the database at ``url`` to ``revision``; returns where it stands after.

    A database created by ``create_all`` before migrations existed is adopted: it is
    stamped at the baseline (its schema) and upgraded from there.
    """
    with _locked(url, engine) as conn:
        config = alembic_config(conn, directory=directory)
        before = _state(conn, directory)
        if not _all_known(before, directory):
            raise SchemaNotCurrent(describe(before, url, directory))
        if before.unversioned:
            command.stamp(config, baseline(directory))
        command.upgrade(config, revision)
        return _state(conn, directory)


def ensure_current(db: Database) -> None:
    """The start-up check: upgrade an embedded SQLite database, refuse a stale server one.

    Raises ``SchemaNotCurrent`` with the command to run when a PostgreSQL database is
    empty, behind or ahead of this code's revisions.
    """
    if db.is_sqlite:
        current = upgrade(db.url, engine=db.engine)
    else:
        with db.engine.connect() as conn:
            current = _state(conn)
    if not current.at_head:
        raise SchemaNotCurrent(describe(current, db.url))


def _all_known(current: SchemaState, directory: Path | None = None) -> bool:
    known = scripts(directory)
    return all(_known(known, rev) for rev in current.current)


def describe(current: SchemaState, url: str, directory: Path | None = None) -> str:
    """Why a database is not current, and what to run: said the same way everywhere."""
    where = make_url(url).render_as_string(hide_password=True)
    if current.empty:
        return (
            f"the database {where} has no exchange schema yet: run `{UPGRADE_COMMAND}` "
            "(with the same EXCHANGE_DATABASE_URL) to create it, then start again"
        )
    if current.unversioned:
        return (
            f"the database {where} was created before schema migrations: run "
            f"`{UPGRADE_COMMAND}` (with the same EXCHANGE_DATABASE_URL) to bring it up to date"
        )
    revisions = ", ".join(current.current)
    if _all_known(current, directory):
        return (
            f"the database {where} is at revision {revisions}, behind this exchange's "
            f"{current.head}: run `{UPGRADE_COMMAND}` (with the same EXCHANGE_DATABASE_URL), "
            "then start again"
        )
    return (
        f"the database {where} is at revision {revisions}, which this exchange does not "
        f"know (its newest is {current.head}): it was upgraded by a newer exchange; run "
        "that version"
    )


def _known(directory: ScriptDirectory, rev: str) -> bool:
    try:
        return directory.get_revision(rev) is not None
    except Exception:  # alembic raises its own errors for unknown or ambiguous ids
        return False


def history(directory: Path | None = None) -> list[Script]:
    """Every revision, newest first."""
    return list(scripts(directory).walk_revisions())


def revision(
    message: str,
    *,
    url: str | None = None,
    autogenerate: bool = True,
    directory: Path | None = None,
) -> Path:
    """Write a new revision file whose operations Alembic derives from the models.

    Without ``url`` the models are compared with a scratch SQLite database upgraded to
    head, so a developer needs no database; name a PostgreSQL one to catch differences
    only it shows. The file is formatted with ruff when ruff is installed (a dev tool).
    """
    scratch = None
    if url is None:
        scratch = tempfile.mkdtemp(prefix="exchange-revision-")
        url = f"sqlite:///{scratch}/head.db"
    try:
        upgrade(url, directory=directory)
        with _locked(url) as conn:
            config = alembic_config(conn, directory=directory)
            # Beside this interpreter first: `.venv/bin/exchange db revision` without an
            # activated venv still finds the venv's ruff.
            beside = Path(sys.executable).with_name("ruff")
            ruff = str(beside) if beside.exists() else shutil.which("ruff")
            if ruff:
                config.set_section_option("post_write_hooks", "hooks", "format, fix")
                for name, args in (
                    ("format", "format --quiet"),
                    ("fix", "check --fix --exit-zero --quiet"),
                ):
                    config.set_section_option("post_write_hooks", f"{name}.type", "exec")
                    config.set_section_option("post_write_hooks", f"{name}.executable", ruff)
                    config.set_section_option(
                        "post_write_hooks", f"{name}.options", f"{args} REVISION_SCRIPT_FILENAME"
                    )
            written = command.revision(config, message=message, autogenerate=autogenerate)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    script = written[0] if isinstance(written, list) else written
    assert script is not None
    return Path(script.path)
