"""audit_entry.case → business_case

The last reserved word used as a column name (CASE, reserved in SQL; see revision
9c4e1b7d2a60 for the others). It holds the business case the caller named in
X-Exchange-Case. Renamed in place on both backends (SQLite 3.25+): no index names the
column. Only the stored name changes: the entry keeps its field ``case``, and the chain's
hashed form keeps its key ``"case"`` (``exchange.audit.entry``), so every entry hashed
before this revision verifies after it. The writers' statements take the column's name
from ``exchange.audit.models.entry_column``.

Revision ID: b5710760f301
Revises: d15b07e5a3c2
Create Date: 2026-12-02 09:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "b5710760f301"
down_revision: str | Sequence[str] | None = "d15b07e5a3c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute('ALTER TABLE audit_entry RENAME COLUMN "case" TO business_case')


def downgrade() -> None:
    op.execute('ALTER TABLE audit_entry RENAME COLUMN business_case TO "case"')
