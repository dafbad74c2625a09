"""Baseline: the schema of every domain when migrations were introduced.

Until then ``create_all`` made the tables at every start; a database made that way is
adopted by ``exchange db upgrade`` (stamped here, then upgraded). Never edit this file:
change the schema in a new revision.

Revision ID: 9f1c2a7d4b10
Revises:
Create Date: 2026-12-01 14:01:15.540629
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9f1c2a7d4b10"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("consumer", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("resource_code", sa.String(length=16), nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("case", sa.String(length=200), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=48), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("latency_us", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entry")),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index("ix_audit_entry_consumer_seq", ["consumer", "seq"], unique=False)
        batch_op.create_index("ix_audit_entry_provider_seq", ["provider", "seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entry_request_id"), ["request_id"], unique=False)

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_volume",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("consumer", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("resource_code", sa.String(length=16), nullable=False),
        sa.Column("calls", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("records", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "consumer", "provider", "resource_code", name=op.f("pk_audit_volume")
        ),
    )
    op.create_table(
        "authz_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authz_epoch")),
    )
    op.create_table(
        "authz_usage",
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("grant_id", "day", name=op.f("pk_authz_usage")),
    )
    op.create_table(
        "catalog_change",
        sa.Column("cursor", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("resource_code", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("by", sa.String(length=32), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("cursor", name=op.f("pk_catalog_change")),
    )
    with op.batch_alter_table("catalog_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_change_topic_id"), ["topic_id"], unique=False)

    op.create_table(
        "catalog_sequence",
        sa.Column("category", sa.String(length=9), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("category", name=op.f("pk_catalog_sequence")),
    )
    op.create_table(
        "member_department",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("short_name", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        sa.Column("area_code", sa.String(length=6), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_member_department")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_member_department_credit_code")),
        sa.UniqueConstraint("name", name=op.f("uq_member_department_name")),
    )
    with op.batch_alter_table("member_department", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_department_kind"), ["kind"], unique=False)

    op.create_table(
        "platform_clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offset_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_clock")),
    )
    op.create_table(
        "authz_application",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("consumer", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("resource_code", sa.String(length=16), nullable=False),
        sa.Column("topic_name", sa.String(length=200), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("decisions", sa.JSON(), nullable=False),
        sa.Column("purpose_scope", sa.String(length=32), nullable=False),
        sa.Column("purpose_text", sa.Text(), nullable=False),
        sa.Column("legal_function", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("daily_quota", sa.Integer(), nullable=True),
        sa.Column("delivery", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("review_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=32), nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("grant_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["consumer"],
            ["member_department.code"],
            name=op.f("fk_authz_application_consumer_member_department"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authz_application")),
    )
    with op.batch_alter_table("authz_application", schema=None) as batch_op:
        batch_op.create_index(
            "ix_authz_application_consumer_status", ["consumer", "status"], unique=False
        )
        batch_op.create_index(
            "ix_authz_application_provider_status", ["provider", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_authz_application_resource_code"), ["resource_code"], unique=False
        )

    op.create_table(
        "authz_grant",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("consumer", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("resource_code", sa.String(length=16), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("purpose_scope", sa.String(length=32), nullable=False),
        sa.Column("purpose_text", sa.Text(), nullable=False),
        sa.Column("legal_function", sa.Text(), nullable=False),
        sa.Column("delivery", sa.String(length=16), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("daily_quota", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["consumer"],
            ["member_department.code"],
            name=op.f("fk_authz_grant_consumer_member_department"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authz_grant")),
    )
    with op.batch_alter_table("authz_grant", schema=None) as batch_op:
        batch_op.create_index(
            "ix_authz_grant_consumer_topic", ["consumer", "resource_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_authz_grant_provider"), ["provider"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_authz_grant_resource_code"), ["resource_code"], unique=False
        )

    op.create_table(
        "catalog_topic",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("category", sa.String(length=9), nullable=False),
        sa.Column("sequence", sa.String(length=6), nullable=False),
        sa.Column("resource_code", sa.String(length=16), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("group", sa.String(length=16), nullable=False),
        sa.Column("resource_type", sa.String(length=16), nullable=False),
        sa.Column("sharing_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("published_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retire_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider"],
            ["member_department.code"],
            name=op.f("fk_catalog_topic_provider_member_department"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_topic")),
        sa.UniqueConstraint("category", "sequence", name="uq_catalog_topic_code"),
        sa.UniqueConstraint("resource_code", name=op.f("uq_catalog_topic_resource_code")),
        sa.UniqueConstraint("slug", name=op.f("uq_catalog_topic_slug")),
    )
    with op.batch_alter_table("catalog_topic", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_topic_name"), ["name"], unique=False)
        batch_op.create_index(
            "ix_catalog_topic_provider_status", ["provider", "status"], unique=False
        )

    op.create_table(
        "member_api_key",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["member_department.code"],
            name=op.f("fk_member_api_key_department_code_member_department"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_api_key")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_member_api_key_key_hash")),
    )
    with op.batch_alter_table("member_api_key", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_member_api_key_department_code"), ["department_code"], unique=False
        )

    op.create_table(
        "authz_application_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["authz_application.id"],
            name=op.f("fk_authz_application_event_application_id_authz_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authz_application_event")),
    )
    with op.batch_alter_table("authz_application_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authz_application_event_application_id"),
            ["application_id"],
            unique=False,
        )

    op.create_table(
        "authz_dispute",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("consumer", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_items", sa.JSON(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["authz_application.id"],
            name=op.f("fk_authz_dispute_application_id_authz_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authz_dispute")),
        sa.UniqueConstraint("application_id", name=op.f("uq_authz_dispute_application_id")),
    )
    with op.batch_alter_table("authz_dispute", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_authz_dispute_consumer"), ["consumer"], unique=False)
        batch_op.create_index(batch_op.f("ix_authz_dispute_provider"), ["provider"], unique=False)

    op.create_table(
        "catalog_element_source",
        sa.Column("element", sa.String(length=120), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["catalog_topic.id"],
            name=op.f("fk_catalog_element_source_topic_id_catalog_topic"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("element", name=op.f("pk_catalog_element_source")),
    )
    op.create_table(
        "catalog_topic_version",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["catalog_topic.id"],
            name=op.f("fk_catalog_topic_version_topic_id_catalog_topic"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_topic_version")),
        sa.UniqueConstraint("topic_id", "version", name=op.f("uq_catalog_topic_version_topic_id")),
    )
    op.create_table(
        "authz_dispute_message",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dispute_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dispute_id"],
            ["authz_dispute.id"],
            name=op.f("fk_authz_dispute_message_dispute_id_authz_dispute"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authz_dispute_message")),
    )
    with op.batch_alter_table("authz_dispute_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authz_dispute_message_dispute_id"), ["dispute_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("authz_dispute_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_dispute_message_dispute_id"))

    op.drop_table("authz_dispute_message")
    op.drop_table("catalog_topic_version")
    op.drop_table("catalog_element_source")
    with op.batch_alter_table("authz_dispute", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_dispute_provider"))
        batch_op.drop_index(batch_op.f("ix_authz_dispute_consumer"))

    op.drop_table("authz_dispute")
    with op.batch_alter_table("authz_application_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_application_event_application_id"))

    op.drop_table("authz_application_event")
    with op.batch_alter_table("member_api_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_api_key_department_code"))

    op.drop_table("member_api_key")
    with op.batch_alter_table("catalog_topic", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_topic_provider_status")
        batch_op.drop_index(batch_op.f("ix_catalog_topic_name"))

    op.drop_table("catalog_topic")
    with op.batch_alter_table("authz_grant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_grant_resource_code"))
        batch_op.drop_index(batch_op.f("ix_authz_grant_provider"))
        batch_op.drop_index("ix_authz_grant_consumer_topic")

    op.drop_table("authz_grant")
    with op.batch_alter_table("authz_application", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authz_application_resource_code"))
        batch_op.drop_index("ix_authz_application_provider_status")
        batch_op.drop_index("ix_authz_application_consumer_status")

    op.drop_table("authz_application")
    op.drop_table("platform_clock")
    with op.batch_alter_table("member_department", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_department_kind"))

    op.drop_table("member_department")
    op.drop_table("catalog_sequence")
    with op.batch_alter_table("catalog_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_change_topic_id"))

    op.drop_table("catalog_change")
    op.drop_table("authz_usage")
    op.drop_table("authz_epoch")
    op.drop_table("audit_volume")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entry_request_id"))
        batch_op.drop_index("ix_audit_entry_provider_seq")
        batch_op.drop_index("ix_audit_entry_consumer_seq")

    op.drop_table("audit_entry")
