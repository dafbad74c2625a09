"""audit_entry's outcome index leaves out the answered calls (partial: outcome <> 'ok')

Revision 4c1d7a9e2b63 indexed (outcome, seq) for the log filtered by outcome. The filters
that need it look for the rare outcomes (denials, provider failures); "ok" is nearly every
entry and is found at once by reading the chain in seq order. Indexing it cost every
answered call's insert one more index entry in the audit writer's group commit (on the
path of every lookup's CPU): the partial index keeps the rare outcomes only. The query
for a rare outcome repeats the index's condition (``exchange.audit.service.entries``).

Both SQLite and PostgreSQL build partial indexes. Dropping and creating an index is safe
while exchanges serve (PostgreSQL locks the table's writes while it builds the index).

Revision ID: ba1e0c5d7f21
Revises: 7cfda6e28135
Create Date: 2026-12-02 03:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ba1e0c5d7f21"
down_revision: str | Sequence[str] | None = "7cfda6e28135"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_audit_entry_outcome_seq"
# Frozen here, not imported from the models (a revision keeps meaning what it meant).
NOT_OK = "outcome <> 'ok'"


def upgrade() -> None:
    op.drop_index(NAME, table_name="audit_entry")
    op.create_index(
        NAME,
        "audit_entry",
        ["outcome", "seq"],
        sqlite_where=sa.text(NOT_OK),
        postgresql_where=sa.text(NOT_OK),
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="audit_entry")
    op.create_index(NAME, "audit_entry", ["outcome", "seq"])
