"""federation: a forwarded application's dispute events, delivered and applied cursors

Revision ID: d15b07e5a3c2
Revises: 9c4e1b7d2a60
Create Date: 2026-12-02 06:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d15b07e5a3c2"
down_revision: str | Sequence[str] | None = "9c4e1b7d2a60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing forwards have delivered and applied nothing of a dispute: 0 for both.
    with op.batch_alter_table("federation_forward", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dispute_sent", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("dispute_received", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("federation_forward", schema=None) as batch_op:
        batch_op.drop_column("dispute_received")
        batch_op.drop_column("dispute_sent")
