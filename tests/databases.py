"""The tests' PostgreSQL databases: one per pytest-xdist worker, and a cheap way back to
"migrated schema, no rows" between tests.

Upgrading an emptied schema through every Alembic revision cost each PostgreSQL test about
1.4 s on the shared 2-core machine (70 ms quiet); emptying only the tables a test wrote to
costs a few milliseconds. The short way is taken only when the database's schema is exactly
the one the upgrade made (a fingerprint of its tables, columns, indexes, constraints,
triggers, functions and Alembic revision): a test that dropped a table, downgraded or
emptied the schema gets the full rebuild.
"""

from __future__ import annotations

import os

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from exchange.db import migrate

# Everything in the public schema that a test could change and the next one would notice.
_FINGERPRINT = """
SELECT 'rel ' || c.relkind::text || ' ' || c.relname
  FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'col ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid AND c.relnamespace = 'public'::regnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'con ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'idx ' || indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'trg ' || tgrelid::regclass::text || ' ' || tgname || ' ' || tgenabled::text
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT 'fn ' || p.oid::regprocedure::text || ' ' || md5(p.prosrc)
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
"""

#: url → the fingerprint of its schema right after this process upgraded it
_UPGRADED: dict[str, frozenset[str]] = {}


def worker_postgres_url(url: str | None) -> str | None:
    """The database of this pytest-xdist worker (``<name>_gw0`` …), created if missing;
    ``url`` itself outside xdist. Workers never share a database: each empties its own."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    engine = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def empty_postgres(url: str) -> None:
    """Drop every table (and Alembic's version table) of the test database."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    finally:
        engine.dispose()
    _UPGRADED.pop(url, None)


def _fingerprint(conn: Connection) -> frozenset[str]:
    found = set(conn.scalars(text(_FINGERPRINT)))
    if "rel r alembic_version" in found:
        found.update(
            f"rev {r}" for r in conn.scalars(text("SELECT version_num FROM alembic_version"))
        )
    return frozenset(found)


def _tables_with_rows(conn: Connection) -> list[str]:
    tables = conn.scalars(
        text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'alembic_version'"
        )
    ).all()
    if not tables:
        return []
    probe = " UNION ALL ".join(f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables)
    return list(conn.scalars(text(probe)))


def _empty_rows(conn: Connection) -> None:
    """Delete every row and rewind every sequence a test advanced (ids start at 1 again)."""
    full = _tables_with_rows(conn)
    if full:
        names = ", ".join(f'"{t}"' for t in full)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    used = conn.scalars(
        text(
            "SELECT sequencename FROM pg_sequences"
            " WHERE schemaname = 'public' AND last_value IS NOT NULL"
        )
    ).all()
    for sequence in used:
        conn.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))


def reset_postgres(url: str) -> None:
    """Leave the database at ``url`` at the head revision with no rows: by emptying its
    tables when its schema is the one this process migrated, else by dropping the schema
    and upgrading again (also what an earlier, interrupted run left)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            known = _UPGRADED.get(url)
            if known is not None and _fingerprint(conn) == known:
                _empty_rows(conn)
                return
        empty_postgres(url)
        migrate.upgrade(url)
        with engine.begin() as conn:
            # The short way assumes the revisions insert no rows (it would delete them).
            seeded = _tables_with_rows(conn)
            if not seeded:
                _UPGRADED[url] = _fingerprint(conn)
    finally:
        engine.dispose()
