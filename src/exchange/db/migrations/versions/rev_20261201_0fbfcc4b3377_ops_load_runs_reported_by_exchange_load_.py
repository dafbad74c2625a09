"""ops: load runs reported by exchange load (ops_load_run)

One row per run, holding its latest progress, so the operations dashboard can show a
simulated day while it runs.

Revision ID: 0fbfcc4b3377
Revises: 7f7f6fbeafeb
Create Date: 2026-12-01 16:58:03.684291
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0fbfcc4b3377"
down_revision: str | Sequence[str] | None = "7f7f6fbeafeb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ops_load_run",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_load_run")),
    )
    with op.batch_alter_table("ops_load_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ops_load_run_updated_at"), ["updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ops_load_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ops_load_run_updated_at"))

    op.drop_table("ops_load_run")
