"""The audit chain: group commits, gapless sequence, tamper detection, statistics, API."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Select, delete, text, update
from sqlalchemy.orm import Session
from tests.audit.entries import T0, sample_entry
from tests.conftest import OPERATOR, make_department

from exchange.audit import service
from exchange.audit.entry import GENESIS, Entry
from exchange.audit.models import AuditEntry, AuditHead
from exchange.audit.schemas import Problem
from exchange.audit.verify import verify
from exchange.audit.writer import AuditUnavailable, AuditWriter
from exchange.context import AppContext
from exchange.days import BEIJING


def entry(i: int, *, consumer: str = "mzj", outcome: str = "ok", records: int = 1) -> Entry:
    return sample_entry(
        i,
        consumer=consumer,
        case="低保核对 2024-001",
        records=records,
        outcome=outcome,
        status=200 if outcome == "ok" else 403,
        latency_us=1234 + i,
    )


@pytest.fixture
def writer(ctx: AppContext) -> Iterator[AuditWriter]:
    w = AuditWriter(ctx.db)
    w.start()
    yield w
    w.stop()


def test_entries_chain_in_order_and_verify(ctx: AppContext, writer: AuditWriter) -> None:
    seqs = [writer.record_sync(entry(i)) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    report = verify(ctx.db)
    assert report.ok, report.message
    assert report.entries == 5
    with ctx.db.sessions() as s:
        rows = service.entries(s)
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))


def test_concurrent_writers_are_grouped_and_gapless(ctx: AppContext, writer: AuditWriter) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def work(base: int) -> None:
        futures = [writer.submit(entry(base + i)) for i in range(50)]
        got = [f.result(30) for f in futures]
        with lock:
            results.extend(got)

    threads = [threading.Thread(target=work, args=(t * 100,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(1, 401))
    # Submitting faster than one commit per entry must have produced shared groups.
    assert writer.stats.groups < 400
    assert writer.stats.largest_group > 1
    assert verify(ctx.db).ok


def test_stopped_writer_refuses_instead_of_dropping(ctx: AppContext) -> None:
    w = AuditWriter(ctx.db)
    with pytest.raises(AuditUnavailable):
        w.record_sync(entry(1))


def _fill(ctx: AppContext, writer: AuditWriter, n: int = 6) -> None:
    for i in range(n):
        writer.record_sync(entry(i))


def test_verify_detects_an_edited_entry(ctx: AppContext, writer: AuditWriter) -> None:
    _fill(ctx, writer)
    with ctx.db.session() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(records=999))
    report = verify(ctx.db)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, Problem.edited, 3)
    assert report.entries == 2


def test_verify_detects_a_deleted_entry(ctx: AppContext, writer: AuditWriter) -> None:
    _fill(ctx, writer)
    with ctx.db.session() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 4))
    report = verify(ctx.db)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, Problem.deleted, 4)


def test_verify_detects_reordered_entries(ctx: AppContext, writer: AuditWriter) -> None:
    _fill(ctx, writer)
    with ctx.db.session() as s:
        # Swap entries 2 and 3 by moving their seq numbers through a free slot.
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(seq=1000))
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(seq=2))
        s.execute(update(AuditEntry).where(AuditEntry.seq == 1000).values(seq=3))
    report = verify(ctx.db)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, Problem.reordered, 2)


def test_verify_detects_a_cut_tail(ctx: AppContext, writer: AuditWriter) -> None:
    _fill(ctx, writer)
    with ctx.db.session() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq >= 5))
    report = verify(ctx.db)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, Problem.deleted, 5)
    with ctx.db.sessions() as s:
        assert s.get(AuditHead, 1) is not None


def test_stats_count_only_successful_exchanges(ctx: AppContext, writer: AuditWriter) -> None:
    writer.record_sync(entry(1, records=3))
    writer.record_sync(entry(2, records=2, consumer="rsj"))
    writer.record_sync(entry(3, outcome="client.no_grant", records=0))
    with ctx.db.sessions() as s:
        out = service.stats(s, T0.astimezone(BEIJING).date())
    assert out.today.records == 5
    assert out.today.calls == 2
    assert out.today.by_consumer["mzj"].records == 3
    assert out.total.by_topic["101001001/000001"].records == 5
    with ctx.db.sessions() as s:
        tomorrow = service.stats(s, T0.date() + dt.timedelta(days=2))
    assert tomorrow.today.records == 0
    assert tomorrow.total.records == 5


def test_entries_by_outcome_rare_and_ok(ctx: AppContext, writer: AuditWriter) -> None:
    """The outcome index is partial (rare outcomes only): both kinds of filter still find
    every matching entry in chain order, and a rare outcome is looked up through it."""
    outcomes = ["ok", "client.no_grant", "ok", "provider.timeout", "client.no_grant", "ok"]
    for i, outcome in enumerate(outcomes):
        writer.record_sync(entry(i, outcome=outcome, records=int(outcome == "ok")))
    with ctx.db.sessions() as s:
        denied = service.entries(s, outcome="client.no_grant")
        answered = service.entries(s, outcome="ok", after=1)
        plan = _plan(s, service.entries_query(outcome="client.no_grant"))
    assert [r.seq for r in denied] == [2, 5]
    assert [r.seq for r in answered] == [3, 6]
    assert "ix_audit_entry_outcome_seq" in plan


def _plan(session: Session, stmt: Select[AuditEntry]) -> str:
    """The database's plan for ``stmt`` (SQLite's EXPLAIN QUERY PLAN; PostgreSQL's
    EXPLAIN with sequential scans discouraged, as a tiny table would otherwise be read
    whole whatever the indexes)."""
    dialect = session.get_bind().dialect
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if dialect.name == "sqlite":
        return " ".join(str(row[-1]) for row in session.execute(text("EXPLAIN QUERY PLAN " + sql)))
    session.execute(text("SET LOCAL enable_seqscan = off"))
    return " ".join(str(row[0]) for row in session.execute(text("EXPLAIN " + sql)))


def test_audit_api_scopes_entries_to_the_department(client: TestClient, ctx: AppContext) -> None:
    mzj = make_department(client, "mzj")
    gaj = make_department(client, "gaj")
    rsj = make_department(client, "rsj")
    writer = ctx.audit
    assert writer is not None
    writer.record_sync(entry(1))  # mzj consumes from gaj
    writer.record_sync(entry(2, consumer="zjj"))

    all_entries = client.get("/api/v1/audit/entries", headers=OPERATOR).json()["entries"]
    assert [e["consumer"] for e in all_entries] == ["mzj", "zjj"]
    own = client.get("/api/v1/audit/entries", headers=mzj).json()["entries"]
    assert [e["request_id"] for e in own] == ["req-1"]
    assert own[0]["case"] == "低保核对 2024-001"
    assert client.get("/api/v1/audit/entries", headers=rsj).json()["entries"] == []

    verify = client.get("/api/v1/audit/verify", headers=OPERATOR).json()
    assert verify["ok"] is True
    assert verify["entries"] == 2
    denied = client.get("/api/v1/audit/verify", headers=mzj)
    assert denied.status_code == 403

    # Statistics too: a department sees the exchanges it took part in, the operator all.
    everything = client.get("/api/v1/audit/stats", headers=OPERATOR).json()
    assert everything["total"]["records"] == 2
    assert set(everything["total"]["by_consumer"]) == {"mzj", "zjj"}
    stats = client.get("/api/v1/audit/stats", headers=mzj).json()
    assert stats["total"]["records"] == 1
    assert set(stats["total"]["by_consumer"]) == {"mzj"}  # not zjj's volume
    assert set(stats["today"]["by_consumer"]) <= {"mzj"}
    provider = client.get("/api/v1/audit/stats", headers=gaj).json()
    assert provider["total"]["records"] == 2  # both consumers of its topic
    assert set(provider["total"]["by_consumer"]) == {"mzj", "zjj"}
    nobody = client.get("/api/v1/audit/stats", headers=rsj).json()
    assert nobody["total"] == {
        "records": 0,
        "calls": 0,
        "by_provider": {},
        "by_consumer": {},
        "by_topic": {},
    }


def test_metrics_need_the_operator_key(client: TestClient) -> None:
    mzj = make_department(client, "mzj")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=mzj).status_code == 403
    resp = client.get("/metrics", headers=OPERATOR)
    assert resp.status_code == 200
    assert "exchange_broker_requests_total" in resp.text
