"""Schema migrations: a baseline database with data upgrades to head, the migrated schema
is the models' schema, and a server database that is behind is refused at start.

Runs on SQLite and PostgreSQL (the ``database_url`` fixture), as CI does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, inspect, select, text
from tests.conftest import OPERATOR_KEY, POSTGRES_URL, empty_postgres

from exchange.app import build_context
from exchange.audit.entry import GENESIS, STORED, Entry, chain_hash
from exchange.audit.models import AuditEntry
from exchange.audit.verify import verify
from exchange.authz.models import (
    Application,
    ApplicationEvent,
    Dispute,
    DisputeMessage,
    Grant,
)
from exchange.catalog.models import Topic
from exchange.config import Settings
from exchange.db import migrate
from exchange.db.base import Base
from exchange.db.engine import Database
from exchange.db.registry import import_all_models
from exchange.members.models import Department

DEMO_KEY = "exk_tst1_key-written-at-the-baseline"

# Rows written with the baseline's columns only (never the models: they follow head).
# Later revisions must carry them: each is read back through today's models below.
BASELINE_ROWS = [
    """INSERT INTO member_department (code, name, short_name, kind, credit_code, area_code,
         base_url, active, created_at)
       VALUES ('tst1', '测试部门一', '一', 'municipal', NULL, '440100', NULL, :true,
         '2026-01-05 08:00:00+00:00'),
              ('tst2', '测试部门二', NULL, 'district', '91440101MA5CYD1234', '440103',
         'http://127.0.0.1:1/departments/tst2', :true, '2026-01-05 08:00:00+00:00')""",
    """INSERT INTO member_api_key (department_code, key_hash, prefix, created_at, revoked_at)
       VALUES ('tst1', :key_hash, 'exk_tst1_key-wri', '2026-01-05 08:00:00+00:00', NULL)""",
    """INSERT INTO catalog_topic (category, sequence, resource_code, slug, name, provider,
         classification, "group", resource_type, sharing_type, status, version, data,
         search_text, published_on, created_at, updated_at, retired_at, retire_reason)
       VALUES ('440100001', '000001', '440100001000001', 'household', '户籍人口信息', 'tst2',
         'basic', 'person', 'table', 'conditional', 'published', 1, '{"items": []}',
         '户籍人口信息', '2026-01-05', '2026-01-05 08:00:00+00:00',
         '2026-01-05 08:00:00+00:00', NULL, NULL)""",
    "INSERT INTO catalog_sequence (category, last) VALUES ('440100001', 1)",
    """INSERT INTO authz_grant (consumer, provider, resource_code, items, purpose_scope,
         purpose_text, legal_function, delivery, valid_from, valid_until, daily_quota, status,
         status_reason, created_at, updated_at, changed_by)
       VALUES ('tst1', 'tst2', '440100001000001', '["name", "hukou_address"]', 'assistance',
         '低保核对', '《社会救助暂行办法》', 'query', '2026-01-05', '2027-01-04', 1000,
         'active', NULL, '2026-01-05 08:00:00+00:00', '2026-01-05 08:00:00+00:00', NULL)""",
    # An application whose refused item is disputed: the revision that makes the
    # application's provider, topic and grant foreign keys rebuilds its table on SQLite,
    # under the rows that refer to it ON DELETE CASCADE.
    """INSERT INTO authz_application (id, consumer, provider, resource_code, topic_name, items,
         decisions, purpose_scope, purpose_text, legal_function, valid_from, valid_until,
         daily_quota, delivery, status, submitted_at, review_deadline, reviewed_at,
         reviewed_by, review_reason, grant_id)
       VALUES (1, 'tst1', 'tst2', '440100001000001', '户籍人口信息',
         '["name", "hukou_address", "religion"]',
         '{"name": {"sharing_type": "conditional", "outcome": "granted", "reason": null},
           "hukou_address": {"sharing_type": "conditional", "outcome": "granted",
             "reason": null},
           "religion": {"sharing_type": "not_shared", "outcome": "refused",
             "reason": "不予共享"}}',
         'assistance', '低保核对', '《社会救助暂行办法》', '2026-01-05', '2027-01-04', 1000,
         'query', 'disputed', '2026-01-05 08:00:00+00:00', NULL,
         '2026-01-05 08:00:00+00:00', 'tst2', NULL, 1)""",
    """INSERT INTO authz_application_event (application_id, at, actor, kind, reason, detail)
       VALUES (1, '2026-01-05 08:00:00+00:00', 'tst1', 'submitted', NULL,
         '{"items": ["name", "hukou_address", "religion"]}')""",
    """INSERT INTO authz_dispute (id, application_id, consumer, provider, items, status,
         opened_at, reason, decision, decided_items, decided_at, decided_by, decision_reason)
       VALUES (1, 1, 'tst1', 'tst2', '["religion"]', 'open', '2026-01-06 08:00:00+00:00',
         '民族宗教事务需要', NULL, NULL, NULL, NULL, NULL)""",
    """INSERT INTO authz_dispute_message (dispute_id, at, author, body)
       VALUES (1, '2026-01-06 09:00:00+00:00', 'tst2', '请说明法定职责')""",
    "INSERT INTO platform_clock (id, offset_seconds) VALUES (1, 86400.0)",
]


@pytest.fixture
def empty_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the fixture's backend (no tables, no version)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/empty.db"
        return
    empty_postgres(database_url)
    yield database_url


def _settings(url: str) -> Settings:
    return Settings(database_url=url, operator_key=OPERATOR_KEY, mock_departments=False)


def _write_baseline_rows(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for sql in BASELINE_ROWS:
            params = {"true": True, "key_hash": hashlib.sha256(DEMO_KEY.encode()).hexdigest()}
            conn.execute(text(sql), {k: v for k, v in params.items() if f":{k}" in sql})
    engine.dispose()


def _differences(url: str, metadata: MetaData) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts=migrate.migration_options(conn))
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_one_line_of_history_from_the_baseline() -> None:
    history = migrate.history()
    assert history[0].revision == migrate.head()
    assert history[-1].revision == migrate.baseline()
    # Each revision revises the one before it: no branch for `upgrade head` to trip on.
    for newer, older in itertools.pairwise(history):
        assert newer.down_revision == older.revision


def test_a_baseline_database_with_data_upgrades_to_head(empty_url: str) -> None:
    assert migrate.upgrade(empty_url, migrate.baseline()).current == (migrate.baseline(),)
    _write_baseline_rows(empty_url)

    after = migrate.upgrade(empty_url)

    assert after.at_head
    ctx = build_context(_settings(empty_url))
    try:
        with ctx.db.sessions() as session:
            tst1 = session.get(Department, "tst1")
            assert tst1 is not None
            assert (tst1.name, tst1.active) == ("测试部门一", True)
            assert tst1.created_at == dt.datetime(2026, 1, 5, 8, tzinfo=dt.UTC)
            topic = session.query(Topic).filter_by(resource_code="440100001000001").one()
            assert (topic.provider, topic.data) == ("tst2", {"items": []})
            grant = session.query(Grant).one()
            assert (grant.consumer, grant.items) == ("tst1", ["name", "hukou_address"])
            application = session.query(Application).one()
            assert (application.provider, application.grant_id) == ("tst2", grant.id)
            # The JSON map became rows, codes inferred for a map stored without them.
            assert {
                item: (row.outcome, row.code, row.reason)
                for item, row in application.outcomes.items()
            } == {
                "name": ("granted", "approved", None),
                "hukou_address": ("granted", "approved", None),
                "religion": ("refused", "not_shared", "不予共享"),
            }
            assert [e.kind for e in session.query(ApplicationEvent)] == ["submitted"]
            dispute = session.query(Dispute).one()
            assert (dispute.application_id, dispute.items) == (application.id, ["religion"])
            assert [m.body for m in session.query(DisputeMessage)] == ["请说明法定职责"]
        assert ctx.auth.authenticate(f"Bearer {DEMO_KEY}").code == "tst1"
        assert ctx.clock.offset == dt.timedelta(days=1)
    finally:
        ctx.db.dispose()


#: The revision that renamed audit_entry.case to business_case.
CASE_RENAMED = "b5710760f301"


def test_an_audit_log_written_before_the_case_column_was_renamed_verifies_after(
    empty_url: str,
) -> None:
    """The column's name changed, never the chain's hashed form (its key stays "case"):
    entries hashed and stored under the old name keep verifying, their case intact."""
    before = next(s.down_revision for s in migrate.history() if s.revision == CASE_RENAMED)
    assert isinstance(before, str)
    migrate.upgrade(empty_url, before)
    at = dt.datetime(2026, 1, 5, 2, 0, tzinfo=dt.UTC)  # 10:00 in Beijing
    entries = [
        Entry(
            request_id=f"req-{i}",
            at=at + dt.timedelta(seconds=i),
            kind="query",
            consumer="tst1",
            provider="tst2",
            resource_code="440100001000001",
            items=["name"],
            case=case,
            records=2,
            outcome="ok",
            status=200,
            latency_us=900,
            version=version,
        )
        for i, (case, version) in enumerate([("低保核对 2026-001", 1), (None, 2), ("公积金", 3)])
    ]
    # The table as it stood: every column as today, the case under its old name.
    old = Table(
        "audit_entry",
        MetaData(),
        *(
            Column("case" if c.name == "business_case" else c.name, c.type)
            for c in AuditEntry.__table__.columns
        ),
    )
    rows: list[dict[str, object]] = []
    prev = GENESIS
    for seq, entry in enumerate(entries, 1):
        digest = chain_hash(prev, entry)
        fields = {f: getattr(entry, f) for f in STORED}
        rows.append({"seq": seq, **fields, "prev_hash": prev, "hash": digest})
        prev = digest
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(old.insert(), rows)
        conn.execute(
            text("INSERT INTO audit_head (id, seq, hash) VALUES (1, :seq, :hash)"),
            {"seq": len(entries), "hash": prev},
        )
        conn.execute(
            text(
                "INSERT INTO audit_volume (day, consumer, provider, resource_code, calls, "
                "records) VALUES (:day, 'tst1', 'tst2', '440100001000001', 3, 6)"
            ),
            {"day": dt.date(2026, 1, 5)},
        )
    engine.dispose()

    assert migrate.upgrade(empty_url).at_head

    db = Database(empty_url)
    try:
        report = verify(db)
        assert (report.ok, report.entries, report.last_seq) == (True, 3, 3)
        with db.sessions() as session:
            stored = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
            assert [Entry.of(r).canonical() for r in stored] == [e.canonical() for e in entries]
            assert [r.case for r in stored] == ["低保核对 2026-001", None, "公积金"]
    finally:
        db.dispose()


def test_the_migrated_schema_is_the_models_schema(database_url: str) -> None:
    import_all_models()
    assert _differences(database_url, Base.metadata) == []


def test_the_comparison_sees_a_model_the_revisions_lack(database_url: str) -> None:
    # The check above is only worth something if a missing revision makes it fail.
    changed = MetaData(naming_convention=Base.metadata.naming_convention)
    import_all_models()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["member_department"].append_column(Column("floor", Integer, nullable=True))
    diff = _differences(database_url, changed)
    assert [(d[0], d[3].name) for d in diff if isinstance(d, tuple)] == [("add_column", "floor")]


def test_an_embedded_sqlite_database_is_upgraded_by_the_exchange(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    ctx = build_context(_settings(url))
    ctx.db.dispose()
    assert migrate.state(url).at_head


def test_a_database_made_before_migrations_is_adopted(empty_url: str) -> None:
    # What create_all made at every start until migrations: the baseline, unversioned.
    migrate.upgrade(empty_url, migrate.baseline())
    _write_baseline_rows(empty_url)
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    assert migrate.state(empty_url).unversioned

    after = migrate.upgrade(empty_url)

    assert after.at_head
    db = Database(empty_url)
    with db.sessions() as session:
        assert session.get(Department, "tst2") is not None
    db.dispose()


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="needs EXCHANGE_TEST_POSTGRES_URL")
@pytest.mark.parametrize("stand", ["empty", "unversioned", "behind"])
def test_a_postgres_database_not_at_head_is_refused(stand: str) -> None:
    assert POSTGRES_URL
    empty_postgres(POSTGRES_URL)
    try:
        revisions = [s.revision for s in migrate.history()]
        if stand != "empty":
            # "behind": each older revision in turn, and none (base) for the baseline alone.
            migrate.upgrade(POSTGRES_URL, revisions[1] if len(revisions) > 1 else "base")
        if stand == "unversioned":
            migrate.upgrade(POSTGRES_URL, migrate.baseline())
            engine = create_engine(POSTGRES_URL)
            with engine.begin() as conn:
                conn.execute(text("DROP TABLE alembic_version"))
            engine.dispose()
        before = set(inspect_tables(POSTGRES_URL))

        with pytest.raises(migrate.SchemaNotCurrent, match="run `exchange db upgrade`"):
            build_context(_settings(POSTGRES_URL))

        assert set(inspect_tables(POSTGRES_URL)) == before  # refused without touching it
    finally:
        empty_postgres(POSTGRES_URL)


def inspect_tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return inspect(conn).get_table_names()
    finally:
        engine.dispose()
