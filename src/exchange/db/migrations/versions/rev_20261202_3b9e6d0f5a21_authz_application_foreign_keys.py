"""authz: an application's provider, topic and grant are foreign keys

An application named its provider (member_department), its topic (catalog_topic) and the
grant its items landed in (authz_grant) by value only. Every application is written from a
topic that exists, its provider is the topic's (itself a key of member_department), its
grant id is that of a grant just flushed, and none of units, topics or grants is ever
deleted: existing rows satisfy the keys (PostgreSQL checks them when it adds each one).

On SQLite the table is rebuilt (batch mode). Events and disputes refer to it ON DELETE
CASCADE, which would empty them if foreign keys were enforced while the old table is
dropped; the migration connection leaves them off (``exchange.db.migrate``), and the
revision's test upgrades a database holding an event, a dispute and its message. The
rebuild drops the status triggers of revision 4c1d7a9e2b63, which are created again here.

authz_usage.grant_id stays without a key: the grant cache adds a whole batch of counts in
one statement, so one unknown grant id would fail the batch, and the counts stay pending and
are retried, stopping every grant's quota count instead of one.

Revision ID: 3b9e6d0f5a21
Revises: ba1e0c5d7f21
Create Date: 2026-12-02 03:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "3b9e6d0f5a21"
down_revision: str | Sequence[str] | None = "ba1e0c5d7f21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (column, referred table, referred column)
KEYS: tuple[tuple[str, str, str], ...] = (
    ("provider", "member_department", "code"),
    ("resource_code", "catalog_topic", "resource_code"),
    ("grant_id", "authz_grant", "id"),
)

# As revision 4c1d7a9e2b63 froze them: the SQLite form of the status CHECK.
_STATUS = "status IN ('pending_review', 'approved', 'partially_approved', 'returned', 'disputed')"
_CHECK = "ck_authz_application_status"


def _name(column: str, table: str) -> str:
    return f"fk_authz_application_{column}_{table}"


def _status_triggers() -> None:
    refused = _STATUS.replace("status", "NEW.status", 1)
    then = f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {_CHECK}'); END"
    op.execute(f"DROP TRIGGER IF EXISTS {_CHECK}_insert")
    op.execute(f"DROP TRIGGER IF EXISTS {_CHECK}_update")
    op.execute(
        f"CREATE TRIGGER {_CHECK}_insert BEFORE INSERT ON authz_application "
        f"WHEN NOT ({refused}) {then}"
    )
    op.execute(
        f"CREATE TRIGGER {_CHECK}_update BEFORE UPDATE OF status ON authz_application "
        f"WHEN NOT ({refused}) {then}"
    )


def upgrade() -> None:
    with op.batch_alter_table("authz_application", schema=None) as batch_op:
        for column, table, referred in KEYS:
            batch_op.create_foreign_key(
                batch_op.f(_name(column, table)), table, [column], [referred]
            )
    if op.get_bind().dialect.name == "sqlite":
        _status_triggers()


def downgrade() -> None:
    with op.batch_alter_table("authz_application", schema=None) as batch_op:
        for column, table, _referred in reversed(KEYS):
            batch_op.drop_constraint(batch_op.f(_name(column, table)), type_="foreignkey")
    if op.get_bind().dialect.name == "sqlite":
        _status_triggers()
