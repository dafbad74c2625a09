"""authz: a grant's provider and topic are foreign keys (member_department, catalog_topic)

A grant named its provider and its topic by value only; a row could name a unit or a topic
that does not exist. Every grant is written from an application whose topic and provider
exist, and neither units nor topics are ever deleted (a topic retires, a unit is kept), so
existing rows satisfy the keys; PostgreSQL checks them when it adds the constraint.

On SQLite the table is rebuilt (batch mode): nothing references authz_grant, so dropping
the old table deletes nothing else, but the rebuild drops the status triggers of revision
4c1d7a9e2b63, which are created again here.

Not done for authz_application (provider, resource_code, grant_id) nor authz_usage.grant_id:
rebuilding authz_application on SQLite with foreign keys enforced would cascade-delete its
events and dispute (ON DELETE CASCADE), and usage rows are counted for grant ids before the
cache learns whether they exist.

Revision ID: 8a3f5c2d1e47
Revises: 54876ac27261
Create Date: 2026-12-02 00:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "8a3f5c2d1e47"
down_revision: str | Sequence[str] | None = "54876ac27261"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS = "status IN ('active', 'suspended', 'revoked')"
_CHECK = "ck_authz_grant_status"


def _status_triggers() -> None:
    """The SQLite form of the grant's status CHECK (as revision 4c1d7a9e2b63 made it)."""
    refused = _STATUS.replace("status", "NEW.status", 1)
    then = f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {_CHECK}'); END"
    op.execute(f"DROP TRIGGER IF EXISTS {_CHECK}_insert")
    op.execute(f"DROP TRIGGER IF EXISTS {_CHECK}_update")
    op.execute(
        f"CREATE TRIGGER {_CHECK}_insert BEFORE INSERT ON authz_grant WHEN NOT ({refused}) {then}"
    )
    op.execute(
        f"CREATE TRIGGER {_CHECK}_update BEFORE UPDATE OF status ON authz_grant "
        f"WHEN NOT ({refused}) {then}"
    )


def upgrade() -> None:
    with op.batch_alter_table("authz_grant", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_authz_grant_provider_member_department"),
            "member_department",
            ["provider"],
            ["code"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_authz_grant_resource_code_catalog_topic"),
            "catalog_topic",
            ["resource_code"],
            ["resource_code"],
        )
    if op.get_bind().dialect.name == "sqlite":
        _status_triggers()


def downgrade() -> None:
    with op.batch_alter_table("authz_grant", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_authz_grant_resource_code_catalog_topic"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_authz_grant_provider_member_department"), type_="foreignkey"
        )
    if op.get_bind().dialect.name == "sqlite":
        _status_triggers()
