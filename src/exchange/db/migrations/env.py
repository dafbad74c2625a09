"""Alembic's entry point, run by every ``exchange db`` command (never by alembic's own CLI).

The caller (``exchange.db.migrate``) opens the connection and its transaction and hands
it over in ``config.attributes["connection"]``: the start-up check, the CLI and the tests
then share one way of connecting (SQLite's write lock, PostgreSQL's advisory lock).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from exchange.db.migrate import migration_options

connection: Connection = context.config.attributes["connection"]
context.configure(connection=connection, **migration_options(connection))
with context.begin_transaction():
    context.run_migrations()
