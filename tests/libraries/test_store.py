"""Bulk writes, quality checks and lookups on both databases (no broker needed)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import orjson
import pytest
from sqlalchemy import func, select
from tests.polling import wait_until

from exchange.app import build_context, create_app
from exchange.authn import Principal
from exchange.config import Settings
from exchange.context import AppContext
from exchange.db.engine import SQLITE_CACHE_KIB
from exchange.db.freshness import announce
from exchange.errors import NotFound, NotPermitted, ValidationFailed
from exchange.libraries.models import LibraryConflict, LibraryRecord, LibrarySource
from exchange.libraries.quality import checks_of, normalise, run_checks
from exchange.libraries.service import LibraryService
from exchange.libraries.store import (
    WRITE_CACHE_KIB,
    Page,
    Staged,
    stage_page,
    wide_caches,
    write_page,
)
from exchange.members.models import Department

A = "440105199001010017"  # valid ID numbers (GB 11643 check characters)
B = "440105199001010033"
C = "11010519491231002X"


def _source(ctx: AppContext, code: str, provider: str, fields: list[list[object]]) -> int:
    with ctx.db.session() as session:
        row = LibrarySource(
            library="person",
            resource_code=code,
            provider=provider,
            topic_name=f"{provider} topic",
            role="source" if any(f[2] for f in fields) else "witness",
            key_field="id_number",
            fields=fields,
            state="done",
            watermark=0,
            gathered=0,
            pass_gathered=0,
            passes=1,
            checked_until=0,
        )
        session.add(row)
        session.flush()
        return row.id


def _rows(sid: int, values: dict[str, list[object]]) -> list[tuple[int, str, str, int]]:
    return [(sid, k, orjson.dumps(v).decode(), 1_764_547_200) for k, v in values.items()]


def _units(ctx: AppContext) -> None:
    """Three municipal departments and a bank (what a unit is decides what it sees)."""
    with ctx.db.session() as session:
        for code, kind in (("gaj", "municipal"), ("rsj", "municipal"), ("gjj", "institution")):
            session.add(Department(code=code, name=f"部门{code}", kind=kind))
        session.add(Department(code="icbc", name="工商银行广州分行", kind="financial"))


@pytest.fixture
def library(ctx: AppContext) -> tuple[int, int, int]:
    now = dt.datetime.now(dt.UTC)
    _units(ctx)
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
            ["name", "person.name", False, "conditional"],
            ["status", "social_insurance.status", True, "conditional"],
        ],
    )
    gjj = _source(ctx, "201004001/000001", "gjj", [["name", "person.name", False, "conditional"]])
    write_page(
        ctx.db,
        gaj,
        _rows(gaj, {A: ["张伟", "正常"], B: ["李娜", "死亡注销"], C: ["王芳", "正常"]}),
        watermark=3,
        total_rows=3,
        refreshed_at=now,
    )
    write_page(
        ctx.db,
        rsj,
        _rows(rsj, {A: ["张玮", "参保缴费"], B: ["李娜", "参保缴费"]}),
        watermark=10,
        total_rows=10,
        refreshed_at=now,
    )
    write_page(ctx.db, gjj, _rows(gjj, {C: ["王芳"]}), watermark=5, total_rows=5, refreshed_at=now)
    return gaj, rsj, gjj


def test_pages_upsert_and_move_the_watermark(
    ctx: AppContext, library: tuple[int, int, int]
) -> None:
    gaj, _, _ = library
    now = dt.datetime.now(dt.UTC)
    # The same page again (a page re-read after a restart) replaces, never doubles.
    write_page(
        ctx.db,
        gaj,
        _rows(gaj, {A: ["张伟", "正常"], C: ["王芳芳", "正常"]}),
        watermark=3,
        total_rows=3,
        refreshed_at=now,
    )
    with ctx.db.sessions() as session:
        held = session.scalar(
            select(func.count()).select_from(LibraryRecord).where(LibraryRecord.source_id == gaj)
        )
        assert held == 3
        src = session.get(LibrarySource, gaj)
        assert src is not None
        assert (src.watermark, src.total_rows, src.gathered) == (3, 3, 5)
        assert src.refreshed_at is not None
        vals = session.scalar(
            select(LibraryRecord.vals).where(
                LibraryRecord.source_id == gaj, LibraryRecord.subject == C
            )
        )
        assert orjson.loads(vals or "null") == ["王芳芳", "正常"]


def test_a_page_write_gives_its_connection_back_with_the_pools_cache(
    ctx: AppContext, library: tuple[int, int, int]
) -> None:
    """The 128 MiB cache of a page write is the write's alone (exchange.bounds declares one
    at a time): the pooled connection goes back with the pool's cache size."""
    if not ctx.db.is_sqlite:
        pytest.skip("SQLite's page cache")
    gaj, _, _ = library
    page = Page(
        gaj,
        b'{"id_number":"%s","name":"x","status":"y"}\n' % A.encode(),
        "id_number",
        ("name", "status"),
        1_764_547_200,
    )
    write_page(ctx.db, gaj, page, watermark=1, total_rows=1, refreshed_at=dt.datetime.now(dt.UTC))
    assert wide_caches() == 0
    create_app(ctx.settings, ctx=ctx)  # declares the app's bounds
    assert ctx.memory is not None
    held = next(b for b in ctx.memory if b.name == "libraries.write_cache")
    assert (held.size(), held.limit, held.budget) == (0, 1, WRITE_CACHE_KIB * 1024)
    # Every pooled connection (the pool holds few) is back at the pool's cache size.
    raws = [ctx.db.engine.raw_connection() for _ in range(3)]
    try:
        for raw in raws:
            cur = raw.cursor()
            cur.execute("PRAGMA cache_size")
            assert cur.fetchone()[0] == -SQLITE_CACHE_KIB
            cur.close()
    finally:
        for raw in raws:
            raw.close()


def _schemas_of_pooled(ctx: AppContext) -> list[set[str]]:
    """The schemas attached to each of a few pooled connections (the pool holds few)."""
    raws = [ctx.db.engine.raw_connection() for _ in range(3)]
    try:
        out = []
        for raw in raws:
            cur = raw.cursor()
            cur.execute("PRAGMA database_list")
            out.append({row[1] for row in cur.fetchall()})
            cur.close()
        return out
    finally:
        for raw in raws:
            raw.close()


def test_a_page_staged_beside_the_write_is_stored_as_the_page_itself(
    ctx: AppContext, library: tuple[int, int, int]
) -> None:
    """A page staged first (taken apart and sorted on a private in-memory database, as the
    gatherer does in a thread beside the previous write) is stored as the page given
    whole would be, a key given twice upserted in page order (the later wins); the
    staging is attached to the writing connection only for the write."""
    if not ctx.db.is_sqlite:
        pytest.skip("staging is SQLite's")
    gaj, _, _ = library
    now = dt.datetime.now(dt.UTC)
    records = [
        {"id_number": C, "name": "王芳", "status": "迁出"},
        {"id_number": B, "name": "李娜"},
        {"id_number": C, "name": "王芳芳", "status": "正常"},
    ]
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    page = Page(gaj, body, "id_number", ("name", "status"), 1_764_547_400)
    staged = stage_page(page)
    assert (staged.source_id, staged.records, staged.refreshed) == (gaj, 3, 1_764_547_400)
    # The staged rows are in key order, then page order: the order of the upserts.
    mem = sqlite3.connect(":memory:")
    try:
        mem.deserialize(staged.image)
        got = mem.execute("SELECT subject, vals FROM stage ORDER BY rowid").fetchall()
    finally:
        mem.close()
    assert got == sorted(
        [(C, '["王芳","迁出"]'), (B, '["李娜",null]'), (C, '["王芳芳","正常"]')],
        key=lambda r: r[0],
    )
    assert write_page(ctx.db, gaj, staged, watermark=3, total_rows=3, refreshed_at=now) == 3
    with ctx.db.sessions() as session:
        stored = {
            r.subject: (orjson.loads(r.vals), r.refreshed)
            for r in session.scalars(select(LibraryRecord).where(LibraryRecord.source_id == gaj))
        }
    assert stored[C] == (["王芳芳", "正常"], 1_764_547_400)
    assert stored[B] == (["李娜", None], 1_764_547_400)
    assert stored[A][0] == ["张伟", "正常"]  # not in the page: kept as it was
    assert all(schemas == {"main"} for schemas in _schemas_of_pooled(ctx))
    assert wide_caches() == 0


def test_a_failed_page_write_rolls_back_and_gives_a_clean_connection_back(
    ctx: AppContext, library: tuple[int, int, int]
) -> None:
    """A write that fails mid-way (here: a staged image that is no database) leaves the
    library and the source's watermark as they were, and its connection goes back to the
    pool with nothing attached and the pool's cache size."""
    if not ctx.db.is_sqlite:
        pytest.skip("staging is SQLite's")
    gaj, _, _ = library
    now = dt.datetime.now(dt.UTC)
    broken = Staged(gaj, b"not a database image" * 512, 1, 2)
    with pytest.raises(sqlite3.DatabaseError):
        write_page(ctx.db, gaj, broken, watermark=99, total_rows=99, refreshed_at=now)
    with ctx.db.sessions() as session:
        src = session.get(LibrarySource, gaj)
        assert src is not None
        assert (src.watermark, src.total_rows, src.gathered) == (3, 3, 3)
        held = session.scalar(
            select(func.count()).select_from(LibraryRecord).where(LibraryRecord.source_id == gaj)
        )
        assert held == 3
    assert all(schemas == {"main"} for schemas in _schemas_of_pooled(ctx))
    assert wide_caches() == 0
    raw = ctx.db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA cache_size")
        assert cur.fetchone()[0] == -SQLITE_CACHE_KIB
        cur.close()
    finally:
        raw.close()
    # The next write on the same pool goes through.
    page = Page(gaj, b'{"id_number":"%s","name":"x"}\n' % A.encode(), "id_number", ("name",), 5)
    write_page(ctx.db, gaj, page, watermark=4, total_rows=4, refreshed_at=now)


def test_postgresql_is_given_the_page_not_a_staged_image(
    ctx: AppContext, library: tuple[int, int, int]
) -> None:
    """A staged image is SQLite's: PostgreSQL's write refuses one, and writes nothing."""
    if ctx.db.is_sqlite:
        pytest.skip("PostgreSQL's write")
    gaj, _, _ = library
    staged = Staged(gaj, b"", 1, 0)
    with pytest.raises(TypeError, match="SQLite's"):
        write_page(
            ctx.db, gaj, staged, watermark=9, total_rows=9, refreshed_at=dt.datetime.now(dt.UTC)
        )
    with ctx.db.sessions() as session:
        src = session.get(LibrarySource, gaj)
        assert src is not None
        assert src.watermark == 3


def test_an_export_page_is_stored_as_its_records_decoded_would_be(
    ctx: AppContext, library: tuple[int, int, int]
) -> None:
    """A page written from its NDJSON (SQLite: in one statement, no decoding in Python)
    holds what its records decoded would: each value with its JSON type, null for a
    field the record lacks and for one outside the grant, a key given twice upserted."""
    gaj, _, _ = library
    now = dt.datetime.now(dt.UTC)
    records = [
        {"id_number": B, "name": "李娜", "status": "死亡注销", "extra": 1},
        {"id_number": A, "name": 'Zoë "Z" \\ 张', "flag": True, "n": 1.5, "doc": {"a": [1]}},
        {"id_number": C, "name": None},
        {"id_number": A, "name": "张伟", "flag": False, "n": 2, "doc": [None, "x"]},
    ]
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    fields = ("name", None, "flag", "n", "doc")  # status not granted: null in its place
    page = Page(gaj, body, "id_number", fields, 1_764_547_300)
    assert page.records == 4
    wrote = write_page(ctx.db, gaj, page, watermark=7, total_rows=9, refreshed_at=now)
    assert wrote == 4
    with ctx.db.sessions() as session:
        stored = {
            r.subject: (orjson.loads(r.vals), r.refreshed)
            for r in session.scalars(select(LibraryRecord).where(LibraryRecord.source_id == gaj))
        }
        src = session.get(LibrarySource, gaj)
        assert src is not None
        assert (src.watermark, src.total_rows, src.gathered) == (7, 9, 7)
    assert stored[A] == (["张伟", None, False, 2, [None, "x"]], 1_764_547_300)
    assert stored[B] == (["李娜", None, None, None, None], 1_764_547_300)
    assert stored[C] == ([None, None, None, None, None], 1_764_547_300)
    # The same records decoded in Python (PostgreSQL's path) make the same rows.
    decoded = {row[1]: orjson.loads(row[2]) for row in page.rows()}
    assert decoded == {k: v[0] for k, v in stored.items()}
    # A record given once keeps every value's JSON type.
    one = Page(gaj, orjson.dumps(records[1]) + b"\n", "id_number", fields, 1)
    write_page(ctx.db, gaj, one, watermark=8, total_rows=9, refreshed_at=now)
    with ctx.db.sessions() as session:
        vals = session.scalar(
            select(LibraryRecord.vals).where(
                LibraryRecord.source_id == gaj, LibraryRecord.subject == A
            )
        )
    assert orjson.loads(vals or "null") == [records[1]["name"], None, True, 1.5, {"a": [1]}]
    # Values are kept as the source wrote them (escapes, spaces): they read back the same.
    raw = f'{{ "flag" : true, "id_number": "{C}", "name": "\\u5f20\\u4f1f" , "n": -0.5e1 }}\n'
    spaced = Page(gaj, raw.encode(), "id_number", fields, 1)
    write_page(ctx.db, gaj, spaced, watermark=9, total_rows=9, refreshed_at=now)
    with ctx.db.sessions() as session:
        vals = session.scalar(
            select(LibraryRecord.vals).where(
                LibraryRecord.source_id == gaj, LibraryRecord.subject == C
            )
        )
    assert orjson.loads(vals or "null") == ["张伟", None, True, -5.0, None]


def test_a_page_with_blank_lines_or_one_field_is_stored_like_any_other(
    ctx: AppContext, library: tuple[int, int, int]
) -> None:
    """The pieces of the one-statement write that are not the common case: a page whose
    NDJSON has blank lines (not one JSON array once joined: written row by row), one
    whose layout has a single slot (granted or not) or a slot not granted."""
    gaj, _, _ = library
    now = dt.datetime.now(dt.UTC)

    def stored() -> dict[str, list[object]]:
        with ctx.db.sessions() as session:
            rows = session.scalars(select(LibraryRecord).where(LibraryRecord.source_id == gaj))
            return {r.subject: orjson.loads(r.vals) for r in rows}

    blank = (
        orjson.dumps({"id_number": A, "name": "张伟", "status": "正常"})
        + b"\n\n  \n"
        + orjson.dumps({"id_number": B, "name": "李娜"})
        + b"\n"
    )
    write_page(
        ctx.db,
        gaj,
        Page(gaj, blank, "id_number", ("name", "status"), 1),
        watermark=2,
        total_rows=2,
        refreshed_at=now,
    )
    got = stored()
    assert (got[A], got[B]) == (["张伟", "正常"], ["李娜", None])
    body = orjson.dumps({"id_number": A, "name": "王芳", "status": "迁出"}) + b"\n"
    for fields, expected in (
        (("name",), ["王芳"]),
        ((None,), [None]),
        (("status", None), ["迁出", None]),
    ):
        page = Page(gaj, body, "id_number", fields, 2)
        write_page(ctx.db, gaj, page, watermark=2, total_rows=2, refreshed_at=now)
        assert stored()[A] == expected, fields
        assert [orjson.loads(r[2]) for r in page.rows()] == [expected]


def test_checks_find_mismatches_and_the_insured_dead(
    ctx: AppContext, library: tuple[int, int, int]
) -> None:
    gaj, rsj, _ = library
    with ctx.db.sessions() as session:
        sources = list(session.scalars(select(LibrarySource)))
    kinds = sorted((c.kind, c.other.provider) for c in checks_of(sources))
    assert kinds == [("deceased_insured", "rsj"), ("mismatch", "gjj"), ("mismatch", "rsj")]
    now = dt.datetime.now(dt.UTC)
    assert run_checks(ctx.db, "person", now) == 2
    with ctx.db.sessions() as session:
        found = {(c.kind, c.subject): c for c in session.scalars(select(LibraryConflict))}
    assert set(found) == {("mismatch", A), ("deceased_insured", B)}
    mismatch = found[("mismatch", A)]
    assert (mismatch.provider, mismatch.value, mismatch.other_provider, mismatch.other_value) == (
        "gaj",
        "张伟",
        "rsj",
        "张玮",
    )
    assert found[("deceased_insured", B)].other_value == "social_insurance.status=参保缴费"
    # Nothing refreshed since: no re-check; forced, the same conflicts, not doubled.
    assert run_checks(ctx.db, "person", now) == 0
    assert run_checks(ctx.db, "person", now, force=True) == 2
    with ctx.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LibraryConflict)) == 2
    # The source corrected: the mismatch clears at the next check.
    write_page(
        ctx.db,
        rsj,
        _rows(rsj, {A: ["张伟", "参保缴费"]}),
        watermark=10,
        total_rows=10,
        refreshed_at=now + dt.timedelta(seconds=5),
    )
    run_checks(ctx.db, "person", now)
    with ctx.db.sessions() as session:
        row = session.scalar(select(LibraryConflict).where(LibraryConflict.kind == "mismatch"))
        assert row is not None
        assert (row.status, row.resolution) == ("resolved", "cleared")
    assert gaj != rsj


def test_normalise_folds_width_and_space() -> None:
    assert normalise(" ＡＢＣ１ ") == "ABC1"
    assert normalise(None) is None
    assert normalise(12) == "12"


def test_lookup_scopes_elements_by_sharing_type(
    ctx: AppContext, library: tuple[int, int, int]
) -> None:
    svc = LibraryService(ctx)
    try:
        answer = svc.lookup(Principal("gjj"), "person", [A, C, "44010519900101005X", "123"])
        assert [r["key"] for r in answer["records"]] == [A, C]
        first = answer["records"][0]["elements"]
        assert first["person.name"]["value"] == "张伟"
        assert first["person.name"]["provider"] == "gaj"
        assert first["person.name"]["refreshed_at"].startswith("2025-12-01")
        assert "social_insurance.status" not in first
        assert answer["withheld"] == ["social_insurance.status"]
        assert answer["withheld_reasons"] == {"social_insurance.status": "conditional"}
        assert answer["not_found"] == ["44010519900101005X"]
        assert [i["key"] for i in answer["invalid"]] == ["123"]
        own = svc.lookup(Principal("rsj"), "person", [A])
        assert own["records"][0]["elements"]["social_insurance.status"]["value"] == "参保缴费"
        assert own["withheld"] == []
        assert own["withheld_reasons"] == {}
        with pytest.raises(NotPermitted):
            svc.lookup(Principal("operator"), "person", [A])
        with pytest.raises(NotFound):
            svc.lookup(Principal("gjj"), "people", [A])
        with pytest.raises(ValidationFailed):
            svc.lookup(Principal("gjj"), "person", [A] * 101)
    finally:
        svc.close()


def test_unconditional_elements_are_for_government_departments_only(
    ctx: AppContext, library: tuple[int, int, int]
) -> None:
    """无条件共享 is "any government department may use it": a bank holding no grant sees
    none of a person's elements, unconditional ones included, and is told why."""
    svc = LibraryService(ctx)
    try:
        bank = svc.lookup(Principal("icbc"), "person", [A])
        # Nothing to see, and not even whether the library holds the person.
        assert bank["records"] == bank["not_found"] == []
        assert bank["withheld_reasons"] == {
            "person.household_status": "not_government",
            "person.name": "not_government",
            "social_insurance.status": "conditional",
        }
        assert bank["withheld"] == sorted(bank["withheld_reasons"])
        # A department sees the same record's unconditional elements.
        dept = svc.lookup(Principal("gjj"), "person", [A])
        assert set(dept["records"][0]["elements"]) == {"person.name", "person.household_status"}
        # A unit that becomes a government department sees them at its next lookup (the
        # views follow the departments' changes).
        with ctx.db.session() as session:
            unit = session.get(Department, "icbc")
            assert unit is not None
            unit.kind = "institution"
            announce(session, "departments")
        wait_until(
            lambda: (
                "person.name"
                in svc.lookup(Principal("icbc"), "person", [A])["records"][0]["elements"]
            ),
            "the view to follow the unit's kind",
        )
    finally:
        svc.close()


def _name_of(svc: LibraryService, key: str) -> object:
    answer = svc.lookup(Principal("gjj"), "person", [key])
    return answer["records"][0]["elements"]["person.name"]["value"]


def test_lookups_see_records_another_process_gathers(
    settings: Settings, ctx: AppContext, library: tuple[int, int, int]
) -> None:
    """A person's records are kept in memory once read; records gathered by another
    process (its own database connection and announcements) drop them in this one before
    its next call reads them."""
    gaj, _, _ = library
    svc = LibraryService(ctx)
    other = build_context(settings)
    try:
        assert _name_of(svc, A) == "张伟"
        assert _name_of(svc, A) == "张伟"  # now from memory
        now = dt.datetime.now(dt.UTC)
        rows = _rows(gaj, {A: ["张卫", "正常"]})
        write_page(other.db, gaj, rows, watermark=3, total_rows=3, refreshed_at=now)

        def current() -> bool:
            ctx.db.freshness.check()  # what the app's front does at the start of every call
            return _name_of(svc, A) == "张卫"

        wait_until(current, "the lookup to drop the records from before")
    finally:
        svc.close()
        other.db.dispose()


@pytest.mark.parametrize("held", [0, 1])
def test_lookups_with_no_or_a_tiny_memory_answer_alike(
    settings: Settings, ctx: AppContext, library: tuple[int, int, int], held: int
) -> None:
    full = LibraryService(ctx)
    small_ctx = build_context(settings.model_copy(update={"library_cache_subjects": held}))
    small = LibraryService(small_ctx)
    try:
        keys = [A, B, C, A, "44010519900101005X", "123"]
        for principal in ("gjj", "rsj", "icbc"):
            expected = full.lookup(Principal(principal), "person", keys)
            for _ in range(2):  # the second time, what a memory of one subject kept
                assert small.lookup(Principal(principal), "person", keys) == expected
        assert sum(len(v) for v in small._rows.values()) <= held
    finally:
        full.close()
        small.close()
        small_ctx.db.dispose()
