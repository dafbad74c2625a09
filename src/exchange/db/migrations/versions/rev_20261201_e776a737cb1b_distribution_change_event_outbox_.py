"""distribution: change-event outbox, subscriptions, dead letters

Revision ID: e776a737cb1b
Revises: d83dc84059d4
Create Date: 2026-12-01 16:50:18.519501
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e776a737cb1b"
down_revision: str | Sequence[str] | None = "d83dc84059d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "distribution_event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("resource_code", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record", sa.JSON(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distribution_event")),
    )
    with op.batch_alter_table("distribution_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_distribution_event_topic_id", ["resource_code", "id"], unique=False
        )

    op.create_table(
        "distribution_subscription",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("consumer", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("resource_code", sa.String(length=16), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("delivery", sa.String(length=8), nullable=False),
        sa.Column("endpoint", sa.String(length=2000), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "delivered", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("retried", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "dead_lettered", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("last_delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_lag_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["consumer"],
            ["member_department.code"],
            name=op.f("fk_distribution_subscription_consumer_member_department"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distribution_subscription")),
    )
    with op.batch_alter_table("distribution_subscription", schema=None) as batch_op:
        batch_op.create_index("ix_distribution_subscription_consumer", ["consumer"], unique=False)
        batch_op.create_index(
            "ix_distribution_subscription_due",
            ["status", "delivery", "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_distribution_subscription_resource_code"),
            ["resource_code"],
            unique=False,
        )

    op.create_table(
        "distribution_dead_letter",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["distribution_subscription.id"],
            name=op.f("fk_distribution_dead_letter_subscription_id_distribution_subscription"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distribution_dead_letter")),
    )
    with op.batch_alter_table("distribution_dead_letter", schema=None) as batch_op:
        batch_op.create_index(
            "ix_distribution_dead_letter_sub", ["subscription_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("distribution_dead_letter", schema=None) as batch_op:
        batch_op.drop_index("ix_distribution_dead_letter_sub")

    op.drop_table("distribution_dead_letter")
    with op.batch_alter_table("distribution_subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_distribution_subscription_resource_code"))
        batch_op.drop_index("ix_distribution_subscription_due")
        batch_op.drop_index("ix_distribution_subscription_consumer")

    op.drop_table("distribution_subscription")
    with op.batch_alter_table("distribution_event", schema=None) as batch_op:
        batch_op.drop_index("ix_distribution_event_topic_id")

    op.drop_table("distribution_event")
