"""The status columns hold only the values the code's enums know, and a grant names a unit
and a topic that exist, on both backends: a row written around the code (a hand-made UPDATE,
a bad import) is refused by the database (CHECK constraints and foreign keys; on SQLite the
status checks are the revision's triggers)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from tests.authz.conftest import application, apply
from tests.authz.test_grants_api import rejected_marriage

from exchange.app import AppContext

Depts = dict[str, dict[str, str]]


@pytest.fixture
def rows(
    client: TestClient, ctx: AppContext, depts: Depts, topics: dict[str, str]
) -> dict[str, int]:
    """Ids of a topic, an approved application, its grant and an open dispute."""
    # Unconditional items are granted on submission.
    app = apply(client, depts["rsj"], application(topics["person"], ["id_number"]))
    assert app["status"] == "approved"
    grant_id = app["grant_id"]
    refused = rejected_marriage(client, depts, topics)
    resp = client.post(
        f"/api/v1/applications/{refused['id']}/dispute",
        json={"reason": "养老金资格认证需核对婚姻状况"},
        headers=depts["rsj"],
    )
    assert resp.status_code == 201, resp.text
    with ctx.db.engine.connect() as conn:
        topic_id = conn.execute(
            text("SELECT id FROM catalog_topic WHERE resource_code = :code"),
            {"code": topics["person"]},
        ).scalar_one()
    return {
        "catalog_topic": topic_id,
        "authz_application": app["id"],
        "authz_grant": grant_id,
        "authz_dispute": resp.json()["id"],
    }


CASES = [
    ("catalog_topic", "status", "published", "withdrawn"),
    ("authz_application", "status", "approved", "accepted"),
    ("authz_grant", "status", "active", "expired"),  # expired is read, never stored
    ("authz_dispute", "status", "open", "closed"),
    ("authz_dispute", "decision", None, "maybe"),
]


@pytest.mark.parametrize(("table", "column", "valid", "invalid"), CASES)
def test_a_value_the_code_does_not_know_is_refused(
    ctx: AppContext,
    rows: dict[str, int],
    table: str,
    column: str,
    valid: str | None,
    invalid: str,
) -> None:
    update = text(f"UPDATE {table} SET {column} = :value WHERE id = :id")
    with ctx.db.engine.begin() as conn:
        # The values the code writes pass (NULL too, where the column may be empty).
        conn.execute(update, {"value": valid, "id": rows[table]})
    with pytest.raises(IntegrityError, match=f"ck_{table}_{column}"), ctx.db.engine.begin() as conn:
        conn.execute(update, {"value": invalid, "id": rows[table]})
    with ctx.db.engine.connect() as conn:
        kept = conn.execute(
            text(f"SELECT {column} FROM {table} WHERE id = :id"),
            {"id": rows[table]},
        ).scalar_one()
    assert kept == valid


@pytest.mark.parametrize(
    ("column", "value"), [("provider", "nobody"), ("resource_code", "999999999/999999")]
)
def test_a_grant_naming_a_unit_or_topic_that_does_not_exist_is_refused(
    ctx: AppContext, rows: dict[str, int], column: str, value: str
) -> None:
    update = text(f"UPDATE authz_grant SET {column} = :value WHERE id = :id")
    with pytest.raises(IntegrityError), ctx.db.engine.begin() as conn:
        conn.execute(update, {"value": value, "id": rows["authz_grant"]})
