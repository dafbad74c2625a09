"""distribution: how far each topic's events were pruned (the replay window)

Events every subscription acknowledged are pruned after the operator's retention; a
topic's mark says through which id, so a replay from an older cursor is refused rather
than silently missing what is gone.

Revision ID: 9b773fd8b94d
Revises: 973bbadcd895
Create Date: 2026-12-01 20:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b773fd8b94d"
down_revision: str | Sequence[str] | None = "973bbadcd895"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "distribution_pruned",
        sa.Column("resource_code", sa.String(length=16), nullable=False),
        sa.Column("through", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("events", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resource_code", name=op.f("pk_distribution_pruned")),
    )


def downgrade() -> None:
    op.drop_table("distribution_pruned")
