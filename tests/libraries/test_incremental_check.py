"""The quality check compares only what changed since it last looked, and finds exactly
what a whole comparison finds: the same open conflicts, the same ones closed as cleared or
vanished, through value changes, records deleted by change events and swept by full
passes, on both databases."""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update
from tests.libraries.test_store import _rows, _source
from tests.libraries.test_sweep import _begin_pass

from exchange.context import AppContext
from exchange.libraries import quality
from exchange.libraries.models import LibraryConflict, LibraryRecord, LibrarySource
from exchange.libraries.quality import CLEARED, DECEASED, VANISHED, normalise, run_checks
from exchange.libraries.store import sweep, write_events, write_page
from exchange.members.models import Department

NOW = dt.datetime(2026, 12, 3, 7, 0, tzinfo=dt.UTC)
NAMES = ["张伟", "李娜", "王芳", "刘洋", "陈晨", "ＡＢＣ", "ABC"]
GAJ_FIELDS = [
    ["name", "person.name", True, "unconditional"],
    ["status", "person.household_status", True, "unconditional"],
]
RSJ_FIELDS = [
    ["name", "person.name", False, "unconditional"],
    ["status", "social_insurance.status", True, "unconditional"],
]


def _subject(i: int) -> str:
    return f"S{i:04d}"


@pytest.fixture
def pair(ctx: AppContext) -> tuple[int, int]:
    with ctx.db.session() as session:
        for code in ("gaj", "rsj"):
            session.add(Department(code=code, name=f"部门{code}", kind="municipal"))
    return (
        _source(ctx, "101001001/000001", "gaj", GAJ_FIELDS),
        _source(ctx, "201002001/000001", "rsj", RSJ_FIELDS),
    )


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> list[list[str] | None]:
    """The subjects each pair comparison was given from now on (None: the pair whole)."""
    seen: list[list[str] | None] = []
    pairs = quality._pairs

    def counting(db: Any, checks: Any, subjects: list[str] | None = None) -> Any:
        seen.append(subjects)
        return pairs(db, checks, subjects)

    monkeypatch.setattr(quality, "_pairs", counting)
    return seen


def _stored(ctx: AppContext, source_id: int) -> dict[str, list[Any]]:
    with ctx.db.sessions() as session:
        return {
            r.subject: orjson.loads(r.vals)
            for r in session.scalars(
                select(LibraryRecord).where(LibraryRecord.source_id == source_id)
            )
        }


def _expected(ctx: AppContext, gaj: int, rsj: int) -> set[tuple[str, str]]:
    """What a whole comparison flags, computed here from the stored records."""
    a, b = _stored(ctx, gaj), _stored(ctx, rsj)
    out: set[tuple[str, str]] = set()
    for subject in a.keys() & b.keys():
        x, y = normalise(a[subject][0]), normalise(b[subject][0])
        if x is not None and y is not None and x != y:
            out.add(("mismatch", subject))
        if a[subject][1] == DECEASED and b[subject][1] is not None:
            out.add(("deceased_insured", subject))
    return out


def _conflicts(ctx: AppContext) -> dict[tuple[str, str], tuple[str, str | None]]:
    with ctx.db.sessions() as session:
        return {
            (c.kind, c.subject): (c.status, c.resolution)
            for c in session.scalars(select(LibraryConflict))
        }


def _gaj_values(rng: random.Random) -> list[Any]:
    return [rng.choice(NAMES), DECEASED if rng.random() < 0.1 else "正常"]


def _rsj_values(rng: random.Random) -> list[Any]:
    return [rng.choice([*NAMES, None]), rng.choice(["参保缴费", None])]


def test_changed_subjects_only_find_what_a_whole_comparison_finds(
    ctx: AppContext, pair: tuple[int, int], compared: list[list[str] | None]
) -> None:
    gaj, rsj = pair
    rng = random.Random(2020)
    held = {
        gaj: {_subject(i): _gaj_values(rng) for i in range(300)},
        rsj: {_subject(i): _rsj_values(rng) for i in range(0, 300, 2)},
    }
    values_of = {gaj: _gaj_values, rsj: _rsj_values}
    for sid, values in held.items():
        write_page(ctx.db, sid, _rows(sid, values), watermark=1, total_rows=1, refreshed_at=NOW)
    was_open: set[tuple[str, str]] = set()
    for round_ in range(8):
        compared.clear()
        later = NOW + dt.timedelta(minutes=round_)
        run_checks(ctx.db, "person", later)
        if round_ == 0:
            # Never checked: whole; the pair's two checks (the name, the insured dead)
            # share one scan.
            assert compared == [None]
        else:
            assert all(s is not None and len(s) <= 40 for s in compared), compared
        got = _conflicts(ctx)
        # A conflict closed once stays closed if it comes back (kept once per subject,
        # kind, element and other source), in a whole comparison as here.
        expected = _expected(ctx, gaj, rsj) - {k for k, (s, _) in got.items() if s != "open"}
        assert {k for k, (status, _) in got.items() if status == "open"} == expected
        for key in was_open - expected:
            status, resolution = got[key]
            gone = key[1] not in held[gaj] or key[1] not in held[rsj]
            assert (status, resolution) == ("resolved", VANISHED if gone else CLEARED), key
        was_open = expected
        # The city moves: values change (or are written again unchanged), records are
        # deleted by change events, and a full pass of one source sweeps what it lacks.
        for sid in (gaj, rsj):
            touched = rng.sample(sorted(held[sid]), 12)
            upserts = {s: values_of[sid](rng) for s in touched[:8]}
            upserts.update({s: held[sid][s] for s in touched[8:10]})  # the same values
            deletes = touched[10:]
            write_events(
                ctx.db, sid, _rows(sid, upserts), deletes, cursor=round_, refreshed_at=later
            )
            held[sid].update(upserts)
            for s in deletes:
                del held[sid][s]
        if round_ % 3 == 2:
            _begin_pass(ctx, rsj)
            kept = dict(sorted(held[rsj].items())[3:])  # the first three no longer exported
            write_page(ctx.db, rsj, _rows(rsj, kept), watermark=1, total_rows=1, refreshed_at=later)
            assert sweep(ctx.db, rsj, refreshed_at=later) == 3
            held[rsj] = kept


def test_a_pass_that_changed_nothing_compares_nothing(
    ctx: AppContext, pair: tuple[int, int], compared: list[list[str] | None]
) -> None:
    gaj, rsj = pair
    values = {
        gaj: {"S0001": ["张伟", "正常"], "S0002": ["李娜", DECEASED]},
        rsj: {"S0001": ["张玮", "参保缴费"], "S0002": ["李娜", "参保缴费"]},
    }
    for sid, v in values.items():
        write_page(ctx.db, sid, _rows(sid, v), watermark=2, total_rows=2, refreshed_at=NOW)
    assert run_checks(ctx.db, "person", NOW) == 2
    # A full pass writes every record again, with the same values.
    for sid, v in values.items():
        _begin_pass(ctx, sid)
        write_page(ctx.db, sid, _rows(sid, v), watermark=2, total_rows=2, refreshed_at=NOW)
        assert sweep(ctx.db, sid, refreshed_at=NOW) == 0
    compared.clear()
    assert run_checks(ctx.db, "person", NOW) == 0
    assert compared == [[]]
    assert {s for s, _ in _conflicts(ctx).values()} == {"open"}  # both still open
    # Asked for, the whole comparison finds the same two.
    assert run_checks(ctx.db, "person", NOW, force=True) == 2


def test_a_source_whose_items_changed_is_compared_whole_again(
    ctx: AppContext, pair: tuple[int, int], compared: list[list[str] | None]
) -> None:
    gaj, rsj = pair
    for sid, v in ((gaj, {"S0001": ["张伟", "正常"]}), (rsj, {"S0001": ["张玮", None]})):
        write_page(ctx.db, sid, _rows(sid, v), watermark=1, total_rows=1, refreshed_at=NOW)
    run_checks(ctx.db, "person", NOW)
    with ctx.db.sessions() as session:
        checked = {s.id: s.checked_until for s in session.scalars(select(LibrarySource))}
    assert checked[gaj] > 0
    assert checked[rsj] > 0
    # What SourceBook.sync_plan does when the catalog changes a source's items.
    with ctx.db.session() as session:
        session.execute(
            update(LibrarySource).where(LibrarySource.id == rsj).values(checked_until=0)
        )
    compared.clear()
    run_checks(ctx.db, "person", NOW)
    assert None in compared


def test_more_changes_than_the_bound_compare_the_pair_whole(
    ctx: AppContext,
    pair: tuple[int, int],
    compared: list[list[str] | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gaj, rsj = pair
    monkeypatch.setattr(quality, "INCREMENTAL_MAX", 3)
    v = {_subject(i): ["张伟", "正常"] for i in range(5)}
    for sid in (gaj, rsj):
        write_page(ctx.db, sid, _rows(sid, v), watermark=1, total_rows=1, refreshed_at=NOW)
    run_checks(ctx.db, "person", NOW)
    changed = {_subject(i): ["李娜", "正常"] for i in range(5)}
    write_page(ctx.db, rsj, _rows(rsj, changed), watermark=1, total_rows=1, refreshed_at=NOW)
    compared.clear()
    assert run_checks(ctx.db, "person", NOW) == 5
    assert compared[0] is None


def test_the_pairs_of_a_library_are_scanned_side_by_side(
    ctx: AppContext, pair: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole check (a first load) scans a library's pairs of sources on
    quality.CHECK_THREADS threads at once: both pairs of this library (the register
    against social insurance, and against provident fund) must be under way together (one
    after the other, the first waits at the barrier alone until it breaks), and they find
    what a whole comparison finds."""
    gaj, rsj = pair
    gjj = _source(ctx, "301003001/000001", "gjj", [["name", "person.name", False, "unconditional"]])
    rng = random.Random(7)
    for sid, values_of in ((gaj, _gaj_values), (rsj, _rsj_values)):
        rows = _rows(sid, {_subject(i): values_of(rng) for i in range(60)})
        write_page(ctx.db, sid, rows, watermark=1, total_rows=1, refreshed_at=NOW)
    names = {_subject(i): [rng.choice(NAMES)] for i in range(60)}
    write_page(ctx.db, gjj, _rows(gjj, names), watermark=1, total_rows=1, refreshed_at=NOW)
    together = threading.Barrier(2, timeout=10)
    pairs = quality._pairs
    scanned: list[tuple[str, ...]] = []

    def meeting(db: Any, checks: Any, subjects: list[str] | None = None) -> Any:
        scanned.append(tuple(sorted(c.kind for c in checks)))
        together.wait()
        return pairs(db, checks, subjects)

    monkeypatch.setattr(quality, "_pairs", meeting)
    run_checks(ctx.db, "person", NOW)
    assert sorted(scanned) == [("deceased_insured", "mismatch"), ("mismatch",)]
    expected = _expected(ctx, gaj, rsj)
    gaj_names, gjj_names = _stored(ctx, gaj), _stored(ctx, gjj)
    expected |= {
        ("mismatch", s)
        for s in gaj_names.keys() & gjj_names.keys()
        if normalise(gaj_names[s][0]) != normalise(gjj_names[s][0])
    }
    with ctx.db.sessions() as session:
        got = {
            (c.kind, c.subject, c.other_source_id) for c in session.scalars(select(LibraryConflict))
        }
    assert {(k, s) for k, s, _ in got} == expected
    assert {o for _, _, o in got} == {rsj, gjj}  # the pairs disagree somewhere: both found


GAJ3_FIELDS = [
    ["name", "person.name", True, "unconditional"],
    ["birth", "person.birth_date", True, "unconditional"],
    ["status", "person.household_status", True, "unconditional"],
]
#: a witness re-sharing two of the register's elements, in another order, beside an
#: insurance element: the pair's two mismatch checks and its deceased check share a scan
RSJ3_FIELDS = [
    ["birth", "person.birth_date", False, "unconditional"],
    ["status", "social_insurance.status", True, "unconditional"],
    ["name", "person.name", False, "unconditional"],
]
BIRTHS = ["1990-01-01", "１９９０-01-01", "1991-02-03", 19900101, None]


def test_a_pair_of_several_mismatch_checks_flags_exactly_each_one(ctx: AppContext) -> None:
    """The pair's mismatch checks compared in SQL as one array a side: every element that
    differs after normalising is flagged under its own element, no more (equal values in
    other forms, nulls, a record shorter than its source's items), whole and
    incrementally."""
    with ctx.db.session() as session:
        for code in ("gaj", "rsj"):
            session.add(Department(code=code, name=f"部门{code}", kind="municipal"))
    gaj = _source(ctx, "101001001/000001", "gaj", GAJ3_FIELDS)
    rsj = _source(ctx, "201002001/000001", "rsj", RSJ3_FIELDS)
    rng = random.Random(13)
    a = {
        _subject(i): [
            rng.choice(NAMES),
            rng.choice(BIRTHS),
            DECEASED if rng.random() < 0.2 else "正常",
        ]
        for i in range(400)
    }
    b: dict[str, list[Any]] = {
        _subject(i): [
            rng.choice(BIRTHS),
            rng.choice(["参保缴费", None]),
            rng.choice([*NAMES, None]),
        ]
        for i in range(0, 400, 2)
    }
    # Written before the witness's name was an item: its records end before the name
    # (SQL NULL in the comparison, a missing value), and one differs in its birth date.
    b[_subject(0)] = ["1990-01-01", "参保缴费"]
    a[_subject(0)] = ["张伟", "1991-02-03", DECEASED]
    b[_subject(2)] = ["1990-01-01"]
    a[_subject(2)] = ["张伟", "1990-01-01", "正常"]

    def expected() -> set[tuple[str, str, str]]:
        out: set[tuple[str, str, str]] = set()
        for subject in a.keys() & b.keys():
            x, y = a[subject], b[subject] + [None] * (3 - len(b[subject]))
            for element, mine, theirs in (
                ("person.name", x[0], y[2]),
                ("person.birth_date", x[1], y[0]),
            ):
                m, t = normalise(mine), normalise(theirs)
                if m is not None and t is not None and m != t:
                    out.add(("mismatch", element, subject))
            if x[2] == DECEASED and y[1] is not None:
                out.add(("deceased_insured", "person.household_status", subject))
        return out

    def open_(status: str = "open") -> set[tuple[str, str, str]]:
        with ctx.db.sessions() as session:
            return {
                (c.kind, c.element, c.subject)
                for c in session.scalars(
                    select(LibraryConflict).where(LibraryConflict.status == status)
                )
            }

    write_page(ctx.db, gaj, _rows(gaj, a), watermark=1, total_rows=1, refreshed_at=NOW)
    write_page(ctx.db, rsj, _rows(rsj, b), watermark=1, total_rows=1, refreshed_at=NOW)
    want = expected()
    assert ("mismatch", "person.birth_date", _subject(0)) in want
    assert ("deceased_insured", "person.household_status", _subject(0)) in want
    assert {kind for kind, _, _ in want} == {"mismatch", "deceased_insured"}
    assert {element for _, element, _ in want} >= {"person.name", "person.birth_date"}
    run_checks(ctx.db, "person", NOW)
    assert open_() == want
    # Incrementally: some names and births change in either source, then agree again.
    for round_ in range(3):
        for subject in rng.sample(sorted(b), 30):
            b[subject] = [
                rng.choice(BIRTHS),
                b[subject][1] if len(b[subject]) > 1 else None,
                rng.choice(NAMES),
            ]
        for subject in rng.sample(sorted(a), 30):
            a[subject] = [rng.choice(NAMES), rng.choice(BIRTHS), a[subject][2]]
        later = NOW + dt.timedelta(minutes=round_ + 1)
        write_page(ctx.db, gaj, _rows(gaj, a), watermark=1, total_rows=1, refreshed_at=later)
        write_page(ctx.db, rsj, _rows(rsj, b), watermark=1, total_rows=1, refreshed_at=later)
        run_checks(ctx.db, "person", later)
        # A conflict closed once stays closed when its sources disagree again.
        assert open_() == expected() - open_("resolved")
    assert open_("resolved")
