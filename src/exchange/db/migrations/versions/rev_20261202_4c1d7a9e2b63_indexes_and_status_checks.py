"""indexes for the scans without one; status columns hold only the code's values

Indexes: catalog_element_source.topic_id (a topic's change or retirement reads its sources),
authz_usage.day (the day's usage of every grant, read when quota counters warm up) and
audit_entry (outcome, seq) (the log filtered by outcome, in chain order).

Checks: the status columns of catalog_topic, authz_application, authz_grant and
authz_dispute (and the dispute's decision) accept only the values of the code's enums, as
they stand at this revision. Rows written by the code already hold only these values.

PostgreSQL gets CHECK constraints. SQLite cannot add one to an existing table without
rebuilding it, and rebuilding authz_application, authz_dispute or catalog_topic drops the
table under rows that reference it ON DELETE CASCADE (events, messages, element sources):
with foreign keys enforced, as the exchange runs SQLite, the drop would delete them. So on
SQLite two triggers per column (insert, update of the column) refuse the same values with
the same constraint name. Safe while exchanges serve: the new objects only refuse values
the code never writes.

Revision ID: 4c1d7a9e2b63
Revises: b7d4e1a2c9f0
Create Date: 2026-12-02 00:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "4c1d7a9e2b63"
down_revision: str | Sequence[str] | None = "b7d4e1a2c9f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, values, nullable): frozen here, not imported, so that the revision keeps
# meaning what it meant when later code changes its enums (that needs a revision of its own).
CHECKS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("catalog_topic", "status", ("published", "retired"), False),
    (
        "authz_application",
        "status",
        ("pending_review", "approved", "partially_approved", "returned", "disputed"),
        False,
    ),
    ("authz_grant", "status", ("active", "suspended", "revoked"), False),
    ("authz_dispute", "status", ("open", "decided"), False),
    ("authz_dispute", "decision", ("grant", "partial", "uphold"), True),
)

INDEXES: tuple[tuple[str, str, list[str]], ...] = (
    ("ix_catalog_element_source_topic_id", "catalog_element_source", ["topic_id"]),
    ("ix_authz_usage_day", "authz_usage", ["day"]),
    ("ix_audit_entry_outcome_seq", "audit_entry", ["outcome", "seq"]),
)


def _condition(column: str, values: tuple[str, ...], nullable: bool) -> str:
    condition = f"{column} IN ({', '.join(repr(v) for v in values)})"
    return f"{column} IS NULL OR {condition}" if nullable else condition


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, column, values, nullable in CHECKS:
        name = f"ck_{table}_{column}"
        if not sqlite:
            op.create_check_constraint(op.f(name), table, _condition(column, values, nullable))
            continue
        # RAISE(ABORT) is reported as a constraint violation (IntegrityError), like CHECK.
        refused = _condition(f"NEW.{column}", values, nullable)
        then = f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
        op.execute(
            f"CREATE TRIGGER {name}_insert BEFORE INSERT ON {table} WHEN NOT ({refused}) {then}"
        )
        op.execute(
            f"CREATE TRIGGER {name}_update BEFORE UPDATE OF {column} ON {table} "
            f"WHEN NOT ({refused}) {then}"
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, column, _values, _nullable in reversed(CHECKS):
        name = f"ck_{table}_{column}"
        if sqlite:
            op.execute(f"DROP TRIGGER IF EXISTS {name}_update")
            op.execute(f"DROP TRIGGER IF EXISTS {name}_insert")
        else:
            op.drop_constraint(op.f(name), table, type_="check")
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
