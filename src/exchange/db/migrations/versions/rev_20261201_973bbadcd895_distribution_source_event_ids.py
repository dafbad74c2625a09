"""distribution: the source's event id on each outbox event (publish idempotency)

A provider may give each change its own id; a publish retried after a timeout then
answers the ids already given instead of writing the events again. Unique per topic
(NULLs, events sent without an id, are distinct on both backends).

Revision ID: 973bbadcd895
Revises: 5e7a1c9b3d20
Create Date: 2026-12-01 20:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "973bbadcd895"
down_revision: str | Sequence[str] | None = "5e7a1c9b3d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("distribution_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_id", sa.String(length=128), nullable=True))
        batch_op.create_index(
            "uq_distribution_event_source_id", ["resource_code", "source_id"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("distribution_event", schema=None) as batch_op:
        batch_op.drop_index("uq_distribution_event_source_id")
        batch_op.drop_column("source_id")
