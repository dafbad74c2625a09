"""libraries: change numbers, so the quality check compares only what changed

Every write of a source's records takes the source's next change number
(``library_source.changes``), and a record keeps the number of the write that last changed
its values (``library_record.changed``; a write of the same values keeps the old one). The
quality check then compares, for each pair of sources, only the subjects changed since it
last looked (``library_source.checked_until``, now a change number where it held a time).

Existing records get 0 and existing sources 0, and every source's ``checked_until`` is set
to 0: the first check after this revision compares every pair whole, as before, and the
ones after it only what changed. Plain ADD COLUMNs with a server default on both backends
(no table rebuilt).

Revision ID: c3d9e2f1a7b5
Revises: 6a0d2c4e8f13
Create Date: 2026-12-03 07:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3d9e2f1a7b5"
down_revision: str | Sequence[str] | None = "6a0d2c4e8f13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("library_record", sa.Column("changed", _BIG, server_default="0", nullable=False))
    op.add_column("library_source", sa.Column("changes", _BIG, server_default="0", nullable=False))
    # checked_until held a time (epoch ms); as a change number it must start over.
    op.execute("UPDATE library_source SET checked_until = 0")


def downgrade() -> None:
    # Back to a time: 0 (never checked) makes the older code compare every pair once.
    op.execute("UPDATE library_source SET checked_until = 0")
    with op.batch_alter_table("library_source", schema=None) as batch_op:
        batch_op.drop_column("changes")
    with op.batch_alter_table("library_record", schema=None) as batch_op:
        batch_op.drop_column("changed")
