"""authz: an application's per-item outcomes are rows (authz_application_item)

Each application kept its items' outcomes as one JSON map (item → sharing type, outcome,
reason code, reason), copied whole and written back on every decision. They become rows,
one per item asked, changed in place, with the outcome and the code checked against the
code's vocabularies as they stand at this revision.

Every stored map moves to rows. Maps written before reason codes existed carry none: the
code is inferred as the code read them (the texts they carried then, else the outcome's
plain code), so every row has one. Then the JSON column goes; SQLite (3.35+) drops it in
place, without rebuilding the table under the rows that refer to it ON DELETE CASCADE.

Revision ID: 5e2b7c9a4d18
Revises: 3b9e6d0f5a21
Create Date: 2026-12-02 06:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "5e2b7c9a4d18"
down_revision: str | Sequence[str] | None = "3b9e6d0f5a21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here, not imported: the revision keeps meaning what it meant when the enums change.
OUTCOMES = ("pending", "granted", "refused", "rejected")
CODES = (
    "unconditional",
    "conditional",
    "not_shared",
    "approved",
    "left_out",
    "rejected",
    "dispute_granted",
    "topic_retired",
    "removed_from_catalog",
    "not_government",
)
# Maps stored before reason codes existed carried these texts instead.
_LEGACY_REASONS = {
    "无条件共享": "unconditional",
    "approved": "approved",
    "topic retired": "topic_retired",
    "removed from the catalog": "removed_from_catalog",
}
_PLAIN = {
    "pending": "conditional",
    "granted": "approved",
    "refused": "not_shared",
    "rejected": "rejected",
}

_applications = sa.table(
    "authz_application",
    sa.column("id", sa.Integer),
    sa.column("items", sa.JSON),
    sa.column("decisions", sa.JSON),
)
_items = sa.table(
    "authz_application_item",
    sa.column("application_id", sa.Integer),
    sa.column("item", sa.String),
    sa.column("sharing_type", sa.String),
    sa.column("outcome", sa.String),
    sa.column("code", sa.String),
    sa.column("reason", sa.Text),
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _code(decision: dict[str, Any]) -> str:
    if decision.get("code") in CODES:
        return str(decision["code"])
    reason = decision.get("reason") or ""
    if reason in _LEGACY_REASONS:
        return _LEGACY_REASONS[reason]
    if reason.startswith("dispute "):
        return "dispute_granted"
    return _PLAIN[decision["outcome"]]


def upgrade() -> None:
    op.create_table(
        "authz_application_item",
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(length=64), nullable=False),
        sa.Column("sharing_type", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            _in("outcome", OUTCOMES), name=op.f("ck_authz_application_item_outcome")
        ),
        sa.CheckConstraint(_in("code", CODES), name=op.f("ck_authz_application_item_code")),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["authz_application.id"],
            name=op.f("fk_authz_application_item_application_id_authz_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("application_id", "item", name=op.f("pk_authz_application_item")),
    )
    bind = op.get_bind()
    rows: list[dict[str, Any]] = []
    for app_id, items, decisions in bind.execute(
        sa.select(_applications.c.id, _applications.c["items"], _applications.c.decisions)
    ):
        for item in items:
            decision = decisions[item]
            rows.append(
                {
                    "application_id": app_id,
                    "item": item,
                    "sharing_type": decision["sharing_type"],
                    "outcome": decision["outcome"],
                    "code": _code(decision),
                    "reason": decision.get("reason"),
                }
            )
        if len(rows) >= 5_000:
            bind.execute(_items.insert(), rows)
            rows = []
    if rows:
        bind.execute(_items.insert(), rows)
    if bind.dialect.name == "sqlite":
        op.execute("ALTER TABLE authz_application DROP COLUMN decisions")
    else:
        op.drop_column("authz_application", "decisions")


def downgrade() -> None:
    op.add_column(
        "authz_application",
        sa.Column("decisions", sa.JSON(), nullable=False, server_default="{}"),
    )
    bind = op.get_bind()
    maps: dict[int, dict[str, Any]] = {}
    for row in bind.execute(sa.select(_items)):
        maps.setdefault(row.application_id, {})[row.item] = {
            "sharing_type": row.sharing_type,
            "outcome": row.outcome,
            "code": row.code,
            "reason": row.reason,
        }
    for app_id, decisions in maps.items():
        bind.execute(
            _applications.update().where(_applications.c.id == app_id).values(decisions=decisions)
        )
    op.drop_table("authz_application_item")
