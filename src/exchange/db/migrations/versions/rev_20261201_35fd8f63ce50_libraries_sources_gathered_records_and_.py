"""libraries: sources, gathered records and conflicts of the base information libraries

``library_source`` is what each library gathers from which topic, with its watermark and
counts; ``library_record`` one subject's record from one source (WITHOUT ROWID on SQLite:
the primary key is the table); ``library_conflict`` the quality check's findings.

Revision ID: 35fd8f63ce50
Revises: 2a32dbabdc65
Create Date: 2026-12-01 16:54:39.907299
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "35fd8f63ce50"
down_revision: str | Sequence[str] | None = "2a32dbabdc65"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "library_conflict",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("library", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("element", sa.String(length=120), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("other_source_id", sa.Integer(), nullable=False),
        sa.Column("other_provider", sa.String(length=32), nullable=False),
        sa.Column("other_value", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=32), nullable=True),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_conflict")),
        sa.UniqueConstraint(
            "library",
            "subject",
            "kind",
            "element",
            "other_source_id",
            name=op.f("uq_library_conflict_library"),
        ),
    )
    with op.batch_alter_table("library_conflict", schema=None) as batch_op:
        batch_op.create_index("ix_library_conflict_status", ["library", "status"], unique=False)

    op.create_table(
        "library_record",
        sa.Column("source_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("vals", sa.Text(), nullable=False),
        sa.Column(
            "refreshed", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint("source_id", "subject", name=op.f("pk_library_record")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "library_source",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("library", sa.String(length=16), nullable=False),
        sa.Column("resource_code", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("topic_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("key_field", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "watermark", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "total_rows", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("gathered", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "pass_gathered", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("pass_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "checked_until", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_source")),
        sa.UniqueConstraint("library", "resource_code", name=op.f("uq_library_source_library")),
    )


def downgrade() -> None:
    op.drop_table("library_source")
    op.drop_table("library_record")
    with op.batch_alter_table("library_conflict", schema=None) as batch_op:
        batch_op.drop_index("ix_library_conflict_status")

    op.drop_table("library_conflict")
