"""audit: signed checkpoints, entry version and correlation id.

``audit_checkpoint`` holds the signed checkpoints over the chain; ``audit_entry.version``
is the version of an entry's hashed form (existing entries were hashed in version 1, the
server default); ``audit_entry.correlation_id`` keeps the caller's own X-Request-Id.

Revision ID: d83dc84059d4
Revises: c8e202eeb504
Create Date: 2026-12-01 14:21:50.102135
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d83dc84059d4"
down_revision: str | Sequence[str] | None = "c8e202eeb504"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoint",
        sa.Column(
            "n",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("n", name=op.f("pk_audit_checkpoint")),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("correlation_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("version", sa.SmallInteger(), server_default="1", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_column("version")
        batch_op.drop_column("correlation_id")

    op.drop_table("audit_checkpoint")
