"""The sweep of a full pass on both databases: what the pass did not write goes, for its
source only; once per pass; nothing before a pass has begun; conflicts about it close."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from tests.libraries.test_store import A, B, C, _rows, _source

from exchange.authn import Principal
from exchange.context import AppContext
from exchange.libraries.models import LibraryConflict, LibraryRecord, LibrarySource
from exchange.libraries.quality import VANISHED, run_checks
from exchange.libraries.service import LibraryService
from exchange.libraries.store import Page, sweep, write_events, write_page
from exchange.members.models import Department

NOW = dt.datetime(2026, 12, 2, 4, 0, tzinfo=dt.UTC)


def _begin_pass(ctx: AppContext, source_id: int) -> None:
    """What a pass from offset 0 does first (``SourceBook._start_pass``): a new number."""
    with ctx.db.session() as session:
        session.execute(
            update(LibrarySource)
            .where(LibrarySource.id == source_id)
            .values(generation=LibrarySource.generation + 1, pass_removed=0)
        )


def _subjects(ctx: AppContext, source_id: int) -> set[str]:
    with ctx.db.sessions() as session:
        return set(
            session.scalars(
                select(LibraryRecord.subject).where(LibraryRecord.source_id == source_id)
            )
        )


def _counts(ctx: AppContext, source_id: int) -> tuple[int, int, int, int]:
    with ctx.db.sessions() as session:
        row = session.get(LibrarySource, source_id)
        assert row is not None
        return row.generation, row.swept_generation, row.removed, row.pass_removed


@pytest.fixture
def two_sources(ctx: AppContext) -> tuple[int, int]:
    """gaj (the source of name and status) and rsj (re-shares the name, sources the
    insurance status), each gathered once by a full pass: A, B, C and A, B."""
    with ctx.db.session() as session:
        for code in ("gaj", "rsj", "mzj"):
            session.add(Department(code=code, name=f"部门{code}", kind="municipal"))
    gaj = _source(
        ctx,
        "101001001/000001",
        "gaj",
        [
            ["name", "person.name", True, "unconditional"],
            ["status", "person.household_status", True, "unconditional"],
        ],
    )
    rsj = _source(
        ctx,
        "201002001/000001",
        "rsj",
        [
            ["name", "person.name", False, "unconditional"],
            ["status", "social_insurance.status", True, "unconditional"],
        ],
    )
    for sid, values in (
        (gaj, {A: ["张伟", "正常"], B: ["李娜", "正常"], C: ["王芳", "正常"]}),
        (rsj, {A: ["张玮", "参保缴费"], B: ["李娜", "参保缴费"]}),
    ):
        _begin_pass(ctx, sid)
        write_page(ctx.db, sid, _rows(sid, values), watermark=3, total_rows=3, refreshed_at=NOW)
        assert sweep(ctx.db, sid, refreshed_at=NOW) == 0
    return gaj, rsj


def test_a_full_pass_sweeps_what_it_did_not_write_for_its_source_only(
    ctx: AppContext, two_sources: tuple[int, int]
) -> None:
    gaj, rsj = two_sources
    assert _counts(ctx, gaj) == (1, 1, 0, 0)
    _begin_pass(ctx, gaj)
    # B is no longer at gaj: the second pass's export holds A and C (an export page, as
    # the gatherer writes it, and rows, as tests and events do).
    page = Page(
        gaj,
        f'{{"id_number":"{A}","name":"张伟","status":"正常"}}\n'.encode(),
        "id_number",
        ("name", "status"),
        1_764_547_200,
    )
    write_page(ctx.db, gaj, page, watermark=1, total_rows=2, refreshed_at=NOW)
    write_page(
        ctx.db, gaj, _rows(gaj, {C: ["王芳", "正常"]}), watermark=2, total_rows=2, refreshed_at=NOW
    )
    assert _subjects(ctx, gaj) == {A, B, C}  # nothing goes before the pass reached its end
    assert sweep(ctx.db, gaj, refreshed_at=NOW) == 1
    assert _subjects(ctx, gaj) == {A, C}
    assert _subjects(ctx, rsj) == {A, B}  # rsj's record of B stays
    assert _counts(ctx, gaj) == (2, 2, 1, 1)
    # Swept once: run again (a restart before the source's state moved), nothing happens.
    assert sweep(ctx.db, gaj, refreshed_at=NOW) is None
    assert _counts(ctx, gaj) == (2, 2, 1, 1)
    # B's assembled record now holds rsj's elements only; a subject no source holds is gone.
    svc = LibraryService(ctx)
    try:
        answer = svc.lookup(Principal("mzj"), "person", [A, B])
        by_key = {r["key"]: r["elements"] for r in answer["records"]}
        assert {v["provider"] for v in by_key[B].values()} == {"rsj"}
        assert {v["provider"] for v in by_key[A].values()} == {"gaj", "rsj"}
        _begin_pass(ctx, rsj)
        write_page(
            ctx.db,
            rsj,
            _rows(rsj, {A: ["张玮", "参保缴费"]}),
            watermark=1,
            total_rows=1,
            refreshed_at=NOW,
        )
        assert sweep(ctx.db, rsj, refreshed_at=NOW) == 1
        gone = svc.lookup(Principal("mzj"), "person", [B])
        assert gone["records"] == []
        assert gone["not_found"] == [B]
    finally:
        svc.close()


def test_no_sweep_without_a_full_pass_and_events_carry_the_pass_number(
    ctx: AppContext, two_sources: tuple[int, int]
) -> None:
    gaj, _ = two_sources
    # Change events (an incremental pass) between two full passes: written with the
    # current number, so the next full pass keeps them if the source still exports them.
    write_events(
        ctx.db,
        gaj,
        _rows(gaj, {"440105199001010050": ["陈晨", "正常"]}),
        [A],
        cursor=7,
        refreshed_at=NOW,
    )
    assert sweep(ctx.db, gaj, refreshed_at=NOW) is None  # no full pass since the last sweep
    assert _subjects(ctx, gaj) == {B, C, "440105199001010050"}
    _begin_pass(ctx, gaj)
    write_page(
        ctx.db,
        gaj,
        _rows(gaj, {B: ["李娜", "正常"], "440105199001010050": ["陈晨", "正常"]}),
        watermark=2,
        total_rows=2,
        refreshed_at=NOW,
    )
    assert sweep(ctx.db, gaj, refreshed_at=NOW) == 1
    assert _subjects(ctx, gaj) == {B, "440105199001010050"}


def test_a_conflict_about_a_record_gone_from_its_source_closes_as_vanished(
    ctx: AppContext, two_sources: tuple[int, int]
) -> None:
    _, rsj = two_sources
    assert run_checks(ctx.db, "person", NOW, force=True) == 1  # A: 张伟 / 张玮
    later = NOW + dt.timedelta(minutes=5)
    _begin_pass(ctx, rsj)
    write_page(
        ctx.db,
        rsj,
        _rows(rsj, {B: ["李娜", "参保缴费"]}),
        watermark=1,
        total_rows=1,
        refreshed_at=later,
    )
    assert sweep(ctx.db, rsj, refreshed_at=later) == 1
    # Not forced: the sweep marked rsj refreshed, so the pair is checked again.
    assert run_checks(ctx.db, "person", later) == 0
    with ctx.db.sessions() as session:
        (conflict,) = session.scalars(select(LibraryConflict))
    assert (conflict.subject, conflict.status) == (A, "resolved")
    assert (conflict.resolution, conflict.resolved_by) == (VANISHED, "library")
