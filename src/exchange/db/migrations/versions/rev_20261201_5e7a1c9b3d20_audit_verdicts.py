"""audit: a verification's outcomes (核验) on its entry.

``audit_entry.verdicts`` holds, for a ``verify`` call, how many keys answered match /
mismatch / unknown per claimed item (never the values); NULL for every other call. Entries
written from this version on are hashed in form 3 (``audit.entry``), which covers it;
existing entries keep verifying in the form they were hashed in.

The catalog's per-item ``verifiable`` flag needs no revision: items live in the topic's
JSON document, and an item without the flag is not verifiable.

Revision ID: 5e7a1c9b3d20
Revises: 7e0f59e971b2
Create Date: 2026-12-01 17:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e7a1c9b3d20"
down_revision: str | Sequence[str] | None = "7e0f59e971b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verdicts", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_column("verdicts")
