"""federation: provision batches (records a peer provided in bulk)

Revision ID: b7d4e1a2c9f0
Revises: 9b773fd8b94d
Create Date: 2026-12-01 20:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d4e1a2c9f0"
down_revision: str | Sequence[str] | None = "9b773fd8b94d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "federation_provision_batch",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("peer_resource_code", sa.String(length=16), nullable=False),
        sa.Column("resource_code", sa.String(length=16), nullable=False),
        sa.Column("rows_from", sa.BigInteger(), nullable=False),
        sa.Column("rows_to", sa.BigInteger(), nullable=False),
        sa.Column("changes_from", sa.BigInteger(), nullable=False),
        sa.Column("changes_to", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("changes", sa.LargeBinary(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_provision_batch")),
    )
    with op.batch_alter_table("federation_provision_batch", schema=None) as batch_op:
        batch_op.create_index(
            "ix_federation_provision_batch_peer_id", ["peer_resource_code", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("federation_provision_batch", schema=None) as batch_op:
        batch_op.drop_index("ix_federation_provision_batch_peer_id")
    op.drop_table("federation_provision_batch")
