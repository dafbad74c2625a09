"""no reserved words as column names

catalog_topic."group" → topic_group, catalog_change.by → changed_by,
federation_publication.by → published_by, distribution_event.key → record_key: GROUP is
reserved in SQL (every hand-written query had to quote it), BY too, and KEY is a keyword of
SQLite. The code keeps its attribute names; only the stored names change. Both backends
rename in place (SQLite 3.25+), carrying the indexes that name the columns.

audit_entry.case stays for now: the audit writers' statements name the entry's canonical
fields as columns (``exchange.audit.pgchain``, ``exchange.audit.chain``).

Revision ID: 9c4e1b7d2a60
Revises: 5e2b7c9a4d18
Create Date: 2026-12-02 06:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "9c4e1b7d2a60"
down_revision: str | Sequence[str] | None = "5e2b7c9a4d18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, old name, new name)
RENAMES: tuple[tuple[str, str, str], ...] = (
    ("catalog_topic", "group", "topic_group"),
    ("catalog_change", "by", "changed_by"),
    ("federation_publication", "by", "published_by"),
    ("distribution_event", "key", "record_key"),
)


def upgrade() -> None:
    for table, old, new in RENAMES:
        op.execute(f'ALTER TABLE {table} RENAME COLUMN "{old}" TO {new}')


def downgrade() -> None:
    for table, old, new in reversed(RENAMES):
        op.execute(f'ALTER TABLE {table} RENAME COLUMN {new} TO "{old}"')
