"""libraries: full-pass generations (records gone from a source are swept), removed counts

A full gathering pass numbers itself per source (``library_source.generation``) and
stamps every record it writes (``library_record.generation``); once it has read its source
to the end, the source's records of an older number are no longer at the source and are
removed (``exchange.libraries.store.sweep``), counted in ``removed`` / ``pass_removed``;
``swept_generation`` is the last number swept (a resumed pass sweeps once).

Existing records get generation 0, existing sources 0 and 0: the first full pass after
this revision is generation 1 and sweeps what it did not see. Plain ADD COLUMNs with a
server default on both backends (no table rebuilt; PostgreSQL 11+ adds a constant default
without rewriting the table).

Revision ID: 6a0d2c4e8f13
Revises: b5710760f301
Create Date: 2026-12-02 12:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6a0d2c4e8f13"
down_revision: str | Sequence[str] | None = "b5710760f301"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(
        "library_record",
        sa.Column("generation", sa.Integer(), server_default="0", nullable=False),
    )
    for name, kind in (
        ("generation", sa.Integer()),
        ("swept_generation", sa.Integer()),
        ("removed", _BIG),
        ("pass_removed", _BIG),
    ):
        op.add_column("library_source", sa.Column(name, kind, server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("library_source", schema=None) as batch_op:
        for name in ("pass_removed", "removed", "swept_generation", "generation"):
            batch_op.drop_column(name)
    with op.batch_alter_table("library_record", schema=None) as batch_op:
        batch_op.drop_column("generation")
