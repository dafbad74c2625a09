"""authz: drop authz_epoch, replaced by the freshness announcements (exchange.db.freshness)

Caches polled the epoch row to learn of grant changes made by other processes; changes now
announce themselves after commit and the acknowledging call waits until they bite in every
process, so nothing reads or writes the row any more.

Revision ID: c8e202eeb504
Revises: 9f1c2a7d4b10
Create Date: 2026-12-01 14:29:44.873783
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c8e202eeb504"
down_revision: str | Sequence[str] | None = "9f1c2a7d4b10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("authz_epoch")


def downgrade() -> None:
    op.create_table(
        "authz_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authz_epoch")),
    )
