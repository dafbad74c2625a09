"""licences: licence types and issued licences

``licence_type`` is the electronic licence system's type catalog (507 types in the
platform-2020 profile) with each type's starting count and last sequence number;
``licence_record`` holds the licences issued through the platform, each with its signed
verification code, and their revocation.

Revision ID: 2a32dbabdc65
Revises: 0fbfcc4b3377
Create Date: 2026-12-01 16:52:17.386236
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2a32dbabdc65"
down_revision: str | Sequence[str] | None = "0fbfcc4b3377"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "licence_type",
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("issuer", sa.String(length=32), nullable=False),
        sa.Column("holder_kind", sa.String(length=16), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("validity_years", sa.Integer(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("starting_count", sa.BigInteger(), nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuer"],
            ["member_department.code"],
            name=op.f("fk_licence_type_issuer_member_department"),
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_licence_type")),
    )
    with op.batch_alter_table("licence_type", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_licence_type_issuer"), ["issuer"], unique=False)

    op.create_table(
        "licence_record",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("type_code", sa.String(length=8), nullable=False),
        sa.Column("issuer", sa.String(length=32), nullable=False),
        sa.Column("holder_kind", sa.String(length=16), nullable=False),
        sa.Column("holder_id", sa.String(length=18), nullable=False),
        sa.Column("holder_name", sa.String(length=200), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("external_ref", sa.String(length=64), nullable=True),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["issuer"],
            ["member_department.code"],
            name=op.f("fk_licence_record_issuer_member_department"),
        ),
        sa.ForeignKeyConstraint(
            ["type_code"],
            ["licence_type.code"],
            name=op.f("fk_licence_record_type_code_licence_type"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_record")),
        sa.UniqueConstraint("issuer", "external_ref", name="uq_licence_record_issuer_ref"),
        sa.UniqueConstraint("number", name=op.f("uq_licence_record_number")),
    )
    with op.batch_alter_table("licence_record", schema=None) as batch_op:
        batch_op.create_index("ix_licence_record_holder", ["holder_id", "type_code"], unique=False)
        batch_op.create_index("ix_licence_record_status", ["status", "revoked_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_licence_record_type_code"), ["type_code"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("licence_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_licence_record_type_code"))
        batch_op.drop_index("ix_licence_record_status")
        batch_op.drop_index("ix_licence_record_holder")

    op.drop_table("licence_record")
    with op.batch_alter_table("licence_type", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_licence_type_issuer"))

    op.drop_table("licence_type")
