"""libraries: each source's change-event subscription and cursor

Revision ID: 7e0f59e971b2
Revises: 01d2fa601d59
Create Date: 2026-12-01 17:40:29.449405
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7e0f59e971b2"
down_revision: str | Sequence[str] | None = "01d2fa601d59"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("library_source", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subscription_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "event_cursor",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                server_default="0",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "events_applied",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                server_default="0",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("library_source", schema=None) as batch_op:
        batch_op.drop_column("events_applied")
        batch_op.drop_column("event_cursor")
        batch_op.drop_column("subscription_id")
