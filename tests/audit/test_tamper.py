"""Tampering by someone who holds the database but not the signing key is detected.

Each case is what issue 10 names, done the careful way (hashes recomputed, the head
moved along, the statistics kept in step) so that only the signatures can catch it; each
runs on SQLite and PostgreSQL through the ``ctx`` fixture.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from tests.audit.entries import T0, sample_entry
from tests.conftest import OPERATOR

from exchange.audit.chain import add_volume
from exchange.audit.entry import GENESIS, Entry, chain_hash
from exchange.audit.journal import line_of
from exchange.audit.keys import Verifier
from exchange.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditVolume
from exchange.audit.schemas import Problem, VerifyReport
from exchange.audit.trust import Trust
from exchange.audit.verify import verify
from exchange.audit.writer import AuditWriter
from exchange.context import AppContext
from exchange.days import beijing_day
from exchange.db.engine import Database


def entry(i: int, records: int = 1) -> Entry:
    return sample_entry(i, records=records, latency_us=1000 + i, correlation_id=f"mzj-{i}")


@pytest.fixture
def trust(ctx: AppContext) -> Iterator[Trust]:
    found = Trust.of(ctx.settings)
    yield found
    found.close()


def writer_of(ctx: AppContext, trust: Trust, journal: Path | None = None) -> AuditWriter:
    # A checkpoint every 3 entries: checkpoints at 3, 6, 9 and the close at 10.
    return AuditWriter(
        ctx.db,
        signer=trust.signer,
        mirror=trust.mirror,
        journal=journal,
        checkpoint_every=3,
        checkpoint_seconds=3600,
    )


def fill(ctx: AppContext, trust: Trust, n: int = 10) -> None:
    """n entries written by an exchange that then stopped cleanly."""
    writer = writer_of(ctx, trust)
    writer.start()
    for i in range(1, n + 1):
        writer.record_sync(entry(i))
    writer.stop()


def check(ctx: AppContext, trust: Trust) -> VerifyReport:
    return verify(ctx.db, trust.verifier, trust.mirror, trust.journal)


def chain_after(db: Database, seq: int, entries: list[Entry]) -> None:
    """What a careful forger does: chain ``entries`` after ``seq`` with correct hashes,
    keep the statistics in step, move the head."""
    with db.session() as s:
        prev = (
            GENESIS
            if seq == 0
            else s.scalars(select(AuditEntry.hash).where(AuditEntry.seq == seq)).one()
        )
        volume: dict[tuple[dt.date, str, str, str], list[int]] = {}
        for e in entries:
            seq += 1
            digest = chain_hash(prev, e)
            values = {name: getattr(e, name) for name in ("request_id", "at", "kind", "consumer")}
            s.add(
                AuditEntry(
                    seq=seq,
                    **values,
                    provider=e.provider,
                    resource_code=e.resource_code,
                    items=e.items,
                    case=e.case,
                    records=e.records,
                    outcome=e.outcome,
                    status=e.status,
                    latency_us=e.latency_us,
                    correlation_id=e.correlation_id,
                    version=e.version,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            assert e.provider is not None
            assert e.resource_code is not None
            key = (beijing_day(e.at), e.consumer, e.provider, e.resource_code)
            acc = volume.setdefault(key, [0, 0])
            acc[0] += 1
            acc[1] += e.records
            prev = digest
        s.flush()
        add_volume(s, volume)
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))


def test_an_untouched_log_verifies_with_its_checkpoints(ctx: AppContext, trust: Trust) -> None:
    fill(ctx, trust)
    report = check(ctx, trust)
    assert report.ok, report.findings
    assert (report.entries, report.signed_seq, report.unsigned_tail) == (10, 10, 0)
    assert report.checkpoints == 5  # open at 0, run at 3, 6, 9, close at 10
    assert trust.verifier is not None
    assert report.key_id == trust.verifier.key_id()


def test_forged_append_and_head_update(ctx: AppContext, trust: Trust) -> None:
    fill(ctx, trust)
    chain_after(ctx.db, 10, [entry(11, records=500)])
    report = check(ctx, trust)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, Problem.forged, 11)

    # A later exchange signs the head it finds: the forged entry stays exposed.
    writer = writer_of(ctx, trust)
    writer.start()
    writer.record_sync(entry(12))
    writer.stop()
    report = check(ctx, trust)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, Problem.forged, 11)


def test_truncate_and_rewrite_the_head(ctx: AppContext, trust: Trust) -> None:
    fill(ctx, trust)
    with ctx.db.session() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq > 6))
        s.execute(delete(AuditVolume))
        last = s.scalars(select(AuditEntry.hash).where(AuditEntry.seq == 6)).one()
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=6, hash=last))
        # …and the statistics of the six entries left, so that only signatures can tell.
        add_volume(s, {(beijing_day(T0), "mzj", "gaj", "101001001/000001"): [6, 6]})
    report = check(ctx, trust)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, Problem.truncated, 7)
    assert "entry 10" in report.message or "entry 9" in report.message


def test_edit_and_recompute_every_hash_after(ctx: AppContext, trust: Trust) -> None:
    fill(ctx, trust)
    with ctx.db.session() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq >= 4))
        s.execute(delete(AuditVolume))
        add_volume(s, {(beijing_day(T0), "mzj", "gaj", "101001001/000001"): [3, 3]})
    forged = [entry(i, records=999 if i == 4 else 1) for i in range(4, 11)]
    chain_after(ctx.db, 3, forged)
    report = check(ctx, trust)
    # Checkpoint 3 still holds; the one at 6 no longer matches: 4–6 were rewritten.
    assert (report.ok, report.problem, report.first_bad_seq) == (False, Problem.rewritten, 4)
    assert report.signed_seq == 3


def test_delete_everything_and_reset_the_head(ctx: AppContext, trust: Trust) -> None:
    fill(ctx, trust)
    with ctx.db.session() as s:
        for table in (AuditEntry, AuditVolume, AuditCheckpoint):
            s.execute(delete(table))
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=0, hash=GENESIS))
    report = check(ctx, trust)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, Problem.truncated, 1)
    assert Problem.checkpoint in {f.problem for f in report.findings}
    # Without the mirror the empty log would look new: the mirror is what catches it.
    assert verify(ctx.db, trust.verifier).ok


def test_a_forged_checkpoint_is_refused(ctx: AppContext, trust: Trust) -> None:
    fill(ctx, trust)
    with ctx.db.session() as s:
        row = s.get(AuditCheckpoint, 5)
        assert row is not None
        row.body = row.body.replace('"kind":"close"', '"kind":"open"')
    report = check(ctx, trust)
    assert not report.ok
    assert Problem.checkpoint in {f.problem for f in report.findings}


def test_inflated_statistics(ctx: AppContext, trust: Trust) -> None:
    fill(ctx, trust)
    with ctx.db.session() as s:
        s.execute(update(AuditVolume).values(records=AuditVolume.records + 100_000))
    report = check(ctx, trust)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, Problem.stats, None)
    assert "100010" in report.message


def test_a_line_written_into_the_journal_is_refused(
    ctx: AppContext, trust: Trust, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    writer = writer_of(ctx, trust, journal=journal)
    writer.start()
    for i in range(1, 4):
        writer.record_sync(entry(i))
    writer.stop()
    # Into the (now free) journal directory: one line MACed with a guessed key, one
    # made with the real key (what a crashed broker would have left; it must replay).
    forged = dataclasses.replace(entry(4), consumer="zjj", records=50_000)
    segment = journal / "seg-00000090.ndjson"
    segment.write_bytes(b"f" * 64 + b" " + forged.canonical() + b"\n")
    assert trust.signer is not None
    genuine = journal / "seg-00000091.ndjson"
    genuine.write_bytes(line_of(trust.signer, entry(5)))

    writer = writer_of(ctx, trust, journal=journal)
    writer.start()
    try:
        assert writer.recovered == 1
        assert len(writer.refused) == 1
    finally:
        writer.stop()
    with ctx.db.sessions() as s:
        ids = list(s.scalars(select(AuditEntry.request_id).order_by(AuditEntry.seq)))
    assert ids == ["req-1", "req-2", "req-3", "req-5"]
    report = verify(ctx.db, trust.verifier, trust.mirror, journal)
    assert (report.ok, report.problem) == (False, Problem.journal)
    assert "1 journal line" in report.message


def test_verify_api_lists_findings(client: TestClient, ctx: AppContext) -> None:
    writer = ctx.audit
    assert writer is not None
    for i in range(1, 4):
        writer.record_sync(entry(i))
    ok = client.get("/api/v1/audit/verify", headers=OPERATOR).json()
    assert ok["ok"] is True, ok
    assert ok["checkpoints"] >= 1
    with ctx.db.session() as s:
        s.execute(update(AuditVolume).values(calls=AuditVolume.calls + 1))
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(records=7))
    bad = client.get("/api/v1/audit/verify", headers=OPERATOR).json()
    assert bad["ok"] is False
    assert (bad["problem"], bad["first_bad_seq"]) == ("edited", 2)
    assert {f["problem"] for f in bad["findings"]} == {"edited", "stats"}


def test_public_key_verifies_checkpoints(client: TestClient, ctx: AppContext) -> None:
    resp = client.get("/api/v1/audit/public-key")
    assert resp.status_code == 200
    verifier = Verifier.from_pem(resp.content)
    assert resp.headers["x-audit-key-id"] == verifier.key_id()
    with ctx.db.sessions() as s:
        first = s.get(AuditCheckpoint, 1)
    assert first is not None  # the writer's opening checkpoint
    assert verifier.verify(first.body.encode(), first.signature)
    assert not verifier.verify(first.body.encode() + b" ", first.signature)


def test_a_database_mirror_catches_a_deleted_log(ctx: AppContext, tmp_path: Path) -> None:
    mirror_url = f"sqlite:///{tmp_path}/mirror.db"
    trust = Trust.of(ctx.settings.model_copy(update={"audit_mirror": mirror_url}))
    try:
        assert trust.mirror is not None
        assert trust.mirror.describe() == mirror_url
        fill(ctx, trust)
        assert len(trust.mirror.read()) == 5
        with ctx.db.session() as s:
            for table in (AuditEntry, AuditVolume, AuditCheckpoint):
                s.execute(delete(table))
            s.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=0, hash=GENESIS))
        report = check(ctx, trust)
        assert (report.ok, report.problem, report.first_bad_seq) == (False, Problem.truncated, 1)
    finally:
        trust.close()


def test_a_value_no_entry_can_hold_is_reported_not_raised(
    client: TestClient, ctx: AppContext
) -> None:
    writer = ctx.audit
    assert writer is not None
    for i in range(1, 4):
        writer.record_sync(entry(i))
    with ctx.db.session() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(items=5))
    resp = client.get("/api/v1/audit/verify", headers=OPERATOR)
    assert resp.status_code == 200
    assert (resp.json()["problem"], resp.json()["first_bad_seq"]) == ("edited", 2)
