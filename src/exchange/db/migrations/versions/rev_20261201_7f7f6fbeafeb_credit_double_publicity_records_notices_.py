"""credit: double-publicity records, notices and baseline counts.

``credit_record`` holds the published permit and penalty decisions, ``credit_notice`` the
decisions units announced (what makes a missing submission countable), ``credit_baseline``
the counts a profile starts from (exchange.credit.baseline).

Revision ID: 7f7f6fbeafeb
Revises: e776a737cb1b
Create Date: 2026-12-01 16:52:44.042057
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7f7f6fbeafeb"
down_revision: str | Sequence[str] | None = "e776a737cb1b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credit_baseline",
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("permits", sa.BigInteger(), nullable=False),
        sa.Column("penalties", sa.BigInteger(), nullable=False),
        sa.Column("late", sa.BigInteger(), nullable=False),
        sa.Column("missing", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("unit", name=op.f("pk_credit_baseline")),
    )
    op.create_table(
        "credit_notice",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("submitter", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("decision_number", sa.String(length=100), nullable=False),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("noticed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_notice")),
        sa.UniqueConstraint(
            "submitter", "kind", "decision_number", name=op.f("uq_credit_notice_submitter")
        ),
    )
    with op.batch_alter_table("credit_notice", schema=None) as batch_op:
        batch_op.create_index("ix_credit_notice_open_due", ["record_id", "due_at"], unique=False)

    op.create_table(
        "credit_record",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("submitter", sa.String(length=32), nullable=False),
        sa.Column("decision_number", sa.String(length=100), nullable=False),
        sa.Column("party_kind", sa.String(length=20), nullable=False),
        sa.Column("party_name", sa.String(length=200), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        sa.Column("legal_representative", sa.String(length=100), nullable=True),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("violation_facts", sa.Text(), nullable=True),
        sa.Column("fine_fen", sa.BigInteger(), nullable=True),
        sa.Column("confiscated_fen", sa.BigInteger(), nullable=True),
        sa.Column("major", sa.Boolean(), nullable=False),
        sa.Column("licence_number", sa.String(length=100), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("authority_code", sa.String(length=18), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("public_until", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_record")),
        sa.UniqueConstraint(
            "submitter", "kind", "decision_number", name=op.f("uq_credit_record_submitter")
        ),
    )
    with op.batch_alter_table("credit_record", schema=None) as batch_op:
        batch_op.create_index(
            "ix_credit_record_code_date", ["credit_code", "decision_date"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_credit_record_party_name"), ["party_name"], unique=False
        )
        batch_op.create_index("ix_credit_record_submitter_id", ["submitter", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("credit_record", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_record_submitter_id")
        batch_op.drop_index(batch_op.f("ix_credit_record_party_name"))
        batch_op.drop_index("ix_credit_record_code_date")

    op.drop_table("credit_record")
    with op.batch_alter_table("credit_notice", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_notice_open_due")

    op.drop_table("credit_notice")
    op.drop_table("credit_baseline")
