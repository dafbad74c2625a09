"""Quality checks (校核纠错): where two sources disagree about one subject, flag it.

Two rules, both over records the library gathered (never over a list written by hand):

- ``mismatch``: a witness item (an element a topic re-shares, ``is_source: false``)
  differs from the element's source for the same subject: a name spelled differently by
  social insurance than by the household register. Values are compared after Unicode
  NFKC normalisation and trimming, so full-width and half-width forms agree.
- ``deceased_insured``: the household register records the person as deregistered on
  death (``person.household_status`` = 死亡注销) while a social or medical insurance source
  still reports an enrolment (``social_insurance.*``, ``medical_insurance.*``).

A pair of sources is checked again whenever either was written since its last check, and
then only for the subjects whose values changed in either (each record carries the change
number of the write that last changed it, each source how far the check has looked:
``LibraryRecord.changed``, ``LibrarySource.checked_until``): a pass over a city that did
not change finds nothing to compare, and one where a few records changed compares those.
A pair is compared whole when a source was never checked or its items changed (its
``checked_until`` is 0), when a full check is asked for, or when more subjects changed
than :data:`INCREMENTAL_MAX` (a whole join costs less then). A conflict no longer seen
among the subjects compared is closed as ``cleared`` (the source was corrected), and any
open conflict of the pair is closed as ``vanished`` once either source no longer holds the
subject's record at all (a full pass removed it as gone from the source, or a change event
deleted it: a de-registered person, a struck-off enterprise). Each conflict is kept once
per (subject, kind, element, other source): a re-check does not duplicate it, and a
resolved one stays resolved.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Table, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from exchange.db.engine import Database
from exchange.libraries.models import LibraryConflict, LibraryRecord, LibrarySource

__all__ = [
    "CLEARED",
    "DECEASED",
    "INCREMENTAL_MAX",
    "INSURANCE_PREFIXES",
    "VANISHED",
    "Check",
    "checks_of",
    "normalise",
    "run_checks",
]

DECEASED = "死亡注销"
#: how the library closes a conflict no longer seen: the sources agree again, or the record
#: is gone from a source (a full pass removed it)
CLEARED = "cleared"
VANISHED = "vanished"
STATUS_ELEMENT = "person.household_status"
INSURANCE_PREFIXES = ("social_insurance.", "medical_insurance.")
#: rows read per round trip while scanning a pair
_FETCH = 20_000
#: subjects changed in a pair's two sources beyond which the pair is compared whole (a
#: join over both sources costs about a subject's lookup per row, and holds no set)
INCREMENTAL_MAX = 20_000
#: pairs of one library scanned at once (each scan reads through its own connection)
CHECK_THREADS = 2
#: subjects per ``IN (…)`` list when comparing only the changed ones
_CHUNK = 500


def normalise(value: Any) -> str | None:
    if value is None:
        return None
    return unicodedata.normalize("NFKC", str(value)).strip()


@dataclass(frozen=True, slots=True)
class Check:
    """One comparison between an authoritative source and another source."""

    kind: str
    element: str
    source: LibrarySource
    position: int
    other: LibrarySource
    other_position: int
    other_element: str


def checks_of(sources: list[LibrarySource]) -> list[Check]:
    """Every comparison the rules make among one library's sources."""
    live = [s for s in sources if s.state != "withdrawn"]
    source_of: dict[str, tuple[LibrarySource, int]] = {}
    for s in live:
        for i, (_field, element, is_source, _sharing) in enumerate(s.fields):
            if is_source:
                source_of[element] = (s, i)
    checks: list[Check] = []
    for s in live:
        for i, (_field, element, is_source, _sharing) in enumerate(s.fields):
            if not is_source and element in source_of:
                src, pos = source_of[element]
                if src.id != s.id:
                    checks.append(Check("mismatch", element, src, pos, s, i, element))
    status = source_of.get(STATUS_ELEMENT)
    if status is not None:
        for s in live:
            if s.id == status[0].id:
                continue
            for i, (_field, element, is_source, _sharing) in enumerate(s.fields):
                if is_source and element.startswith(INSURANCE_PREFIXES):
                    checks.append(
                        Check(
                            "deceased_insured", STATUS_ELEMENT, status[0], status[1], s, i, element
                        )
                    )
                    break
    return checks


def _condition(check: Check, sqlite: bool) -> tuple[str, str, str, tuple[Any, ...]]:
    """One check's two value expressions over the joined rows ``s`` (the authoritative
    source) and ``o`` (the other), the condition under which it may flag the pair's
    subject, and that condition's parameters."""
    sp, op = check.position, check.other_position
    if sqlite:
        a, b = f"s.vals -> '$[{sp}]'", f"o.vals -> '$[{op}]'"
        if check.kind == "mismatch":
            return a, b, f"{a} <> {b}", ()
        return a, b, f"(s.vals ->> '$[{sp}]' = ? AND {b} <> 'null')", (DECEASED,)
    a, b = f"(s.vals::jsonb -> {sp})", f"(o.vals::jsonb -> {op})"
    if check.kind == "mismatch":
        return f"{a}::text", f"{b}::text", f"{a} <> {b}", ()
    cond = f"((s.vals::jsonb ->> {sp}) = %s AND {b} <> 'null'::jsonb)"
    return f"{a}::text", f"{b}::text", cond, (DECEASED,)


def _pairs(
    db: Database, checks: list[Check], subjects: list[str] | None = None
) -> Iterator[tuple[str, list[tuple[Any, Any]]]]:
    """(subject, [(authoritative value, other value) for each check]) of the subjects
    both sources hold that one of ``checks`` may flag; of ``subjects`` only, when given.
    Every check of the list compares the same two sources: one join serves them all.

    The database compares the two values first, in SQL over the whole pair, and sends
    back only candidates: for ``mismatch`` the subjects whose two values differ as JSON
    (values equal as JSON normalise equal, so nothing the rule flags is left out), for
    ``deceased_insured`` those the register records as 死亡注销 with an enrolment value.
    A clean pair costs one join in the database, not a decode of every row in Python."""
    sqlite = db.is_sqlite
    parts = [_condition(check, sqlite) for check in checks]
    columns = ", ".join(f"{a}, {b}" for a, b, _, _ in parts)
    p = "?" if sqlite else "%s"
    mismatches = [check for check in checks if check.kind == "mismatch"]
    if sqlite and len(mismatches) > 1:
        # SQLite parses a record's JSON text again for every ``->``: the pair's mismatch
        # checks are one comparison of two arrays extracted with one parse a side (an
        # element's rendering is the same as ``->``'s, so the arrays differ exactly when
        # one check's two values do). Three checks of 30,000 rows: 86 -> 51 ms.
        ours = ", ".join(f"'$[{check.position}]'" for check in mismatches)
        theirs = ", ".join(f"'$[{check.other_position}]'" for check in mismatches)
        conds = [f"json_extract(s.vals, {ours}) <> json_extract(o.vals, {theirs})"]
        conds += [
            c for check, (_, _, c, _) in zip(checks, parts, strict=True) if check.kind != "mismatch"
        ]
        cond = " OR ".join(conds)
    else:
        cond = " OR ".join(c for _, _, c, _ in parts)
    sql = (
        f"SELECT o.subject, {columns} FROM library_record o JOIN library_record s "
        f"ON s.source_id = {p} AND s.subject = o.subject WHERE o.source_id = {p} AND ({cond})"
    )
    params: tuple[Any, ...] = (checks[0].source.id, checks[0].other.id)
    for _, _, _, more in parts:
        params += more
    if subjects is None:
        statements = [(sql, params)]
    else:
        statements = [
            (f"{sql} AND o.subject IN ({', '.join([p] * len(chunk))})", (*params, *chunk))
            for start in range(0, len(subjects), _CHUNK)
            if (chunk := subjects[start : start + _CHUNK])
        ]
    n = len(checks)
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        for statement, values in statements:
            cur.execute(statement, values)
            while True:
                batch = cur.fetchmany(_FETCH)
                if not batch:
                    break
                for row in batch:
                    yield (
                        row[0],
                        # An element past a record's end (a source whose items grew
                        # since it was written) is SQL NULL: a missing value.
                        [(_load(row[1 + 2 * i]), _load(row[2 + 2 * i])) for i in range(n)],
                    )
        cur.close()
    finally:
        raw.close()


def _load(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def _found(check: Check, value: Any, other: Any) -> bool:
    if check.kind == "mismatch":
        a, b = normalise(value), normalise(other)
        return a is not None and b is not None and a != b
    return value == DECEASED and other is not None


def _scan(
    db: Database,
    checks: list[Check],
    now: dt.datetime,
    library: str,
    subjects: set[str] | None = None,
) -> tuple[int, int]:
    """Check one pair of sources (every check between them, in one join), whole or for
    ``subjects`` only (those whose values changed in either source); returns (conflicts
    found now, conflicts closed)."""
    table = LibraryConflict.__table__
    assert isinstance(table, Table)
    insert = sqlite.insert if db.is_sqlite else postgresql.insert
    stmt = insert(table).on_conflict_do_nothing(
        index_elements=["library", "subject", "kind", "element", "other_source_id"]
    )
    seen: list[set[str]] = [set() for _ in checks]
    rows: list[dict[str, Any]] = []

    def flush() -> None:
        if rows:
            with db.writing(), db.session() as session:
                session.execute(stmt, rows)
            rows.clear()

    for subject, values in _pairs(db, checks, None if subjects is None else sorted(subjects)):
        for i, (check, (value, other)) in enumerate(zip(checks, values, strict=True)):
            if not _found(check, value, other):
                continue
            seen[i].add(subject)
            shown = other if check.kind == "mismatch" else f"{check.other_element}={other}"
            rows.append(
                {
                    "library": library,
                    "subject": subject,
                    "kind": check.kind,
                    "element": check.element,
                    "source_id": check.source.id,
                    "provider": check.source.provider,
                    "value": None if value is None else str(value),
                    "other_source_id": check.other.id,
                    "other_provider": check.other.provider,
                    "other_value": None if shown is None else str(shown),
                    "status": "open",
                    "found_at": now,
                }
            )
        if len(rows) >= 5_000:
            flush()
    flush()
    closed = sum(
        _close(db, check, found, now, library, subjects)
        for check, found in zip(checks, seen, strict=True)
    )
    return sum(len(found) for found in seen), closed


def _close(
    db: Database,
    check: Check,
    seen: set[str],
    now: dt.datetime,
    library: str,
    subjects: set[str] | None,
) -> int:
    """Close the open conflicts of ``check`` not seen now; how many."""
    with db.writing(), db.session() as session:
        open_ = session.execute(
            select(LibraryConflict.id, LibraryConflict.subject).where(
                and_(
                    LibraryConflict.library == library,
                    LibraryConflict.kind == check.kind,
                    LibraryConflict.element == check.element,
                    LibraryConflict.other_source_id == check.other.id,
                    LibraryConflict.status == "open",
                )
            )
        ).all()
        # Not seen now: among the subjects compared, the sources agree again or one no
        # longer holds the record; outside them (nothing changed) only the latter can be.
        unseen = [(cid, subject) for cid, subject in open_ if subject not in seen]
        both = _held_by_both(session, check, [subject for _, subject in unseen])
        agreed = [c for c, s in unseen if s in both and (subjects is None or s in subjects)]
        vanished = [c for c, s in unseen if s not in both]
        for resolution, note, ids in (
            (CLEARED, "the sources agree again", agreed),
            (VANISHED, "a source no longer holds the record", vanished),
        ):
            for start in range(0, len(ids), 1000):
                session.execute(
                    update(LibraryConflict)
                    .where(LibraryConflict.id.in_(ids[start : start + 1000]))
                    .values(
                        status="resolved",
                        resolution=resolution,
                        resolved_by="library",
                        resolved_at=now,
                        note=note,
                    )
                )
    return len(agreed) + len(vanished)


def _held_by_both(session: Session, check: Check, subjects: list[str]) -> set[str]:
    """Of ``subjects``, those both sources of ``check`` still hold (a conflict about one
    that is gone from either, a full pass's sweep removed: it closes as ``vanished``)."""
    held: set[str] = set()
    for start in range(0, len(subjects), 500):
        chunk = subjects[start : start + 500]
        counts: dict[str, int] = {}
        for source_id in {check.source.id, check.other.id}:
            for subject in session.scalars(
                select(LibraryRecord.subject).where(
                    LibraryRecord.source_id == source_id, LibraryRecord.subject.in_(chunk)
                )
            ):
                counts[subject] = counts.get(subject, 0) + 1
        wanted = len({check.source.id, check.other.id})
        held.update(s for s, n in counts.items() if n == wanted)
    return held


def run_checks(db: Database, library: str, now: dt.datetime, *, force: bool = False) -> int:
    """Check every pair of ``library`` written since its last check, for the subjects
    that changed (every pair whole with ``force``); conflicts seen among them."""
    with db.sessions() as session:
        sources = list(
            session.scalars(select(LibrarySource).where(LibrarySource.library == library))
        )
    # Read before any scan: a write landing during the check is looked at by the next.
    stamp = {s.id: s.changes for s in sources}
    changed: dict[int, set[str] | None] = {}
    # The checks between one pair of sources share one scan (a witness topic re-sharing
    # three elements of the register is one join over its rows, not three).
    pairs: dict[tuple[int, int], list[Check]] = {}
    for check in checks_of(sources):
        pairs.setdefault((check.source.id, check.other.id), []).append(check)
    scans: list[tuple[list[Check], set[str] | None]] = []
    for checks in pairs.values():
        a, b = checks[0].source, checks[0].other
        if not force and stamp[a.id] <= a.checked_until and stamp[b.id] <= b.checked_until:
            continue
        subjects: set[str] | None = None
        if not force:
            for s in (a, b):
                if s.id not in changed:
                    changed[s.id] = _changed_since(db, s, stamp[s.id])
            of_a, of_b = changed[a.id], changed[b.id]
            if of_a is not None and of_b is not None and len(of_a) + len(of_b) <= INCREMENTAL_MAX:
                subjects = of_a | of_b
        scans.append((checks, subjects))
    # The pairs are independent (each conflict is keyed by its pair's kind, element and
    # other source), and a scan's join runs in the database's C code with the GIL let
    # go: CHECK_THREADS scans side by side use both cores of a first load's whole check.
    # Their conflict writes still take the writer's turn one at a time.
    with ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="library-check") as pool:
        found = sum(
            n for n, _ in pool.map(lambda job: _scan(db, job[0], now, library, job[1]), scans)
        )
    with db.session() as session:
        for s in session.scalars(select(LibrarySource).where(LibrarySource.library == library)):
            s.checked_until = stamp.get(s.id, 0)
    return found


def _changed_since(db: Database, source: LibrarySource, upto: int) -> set[str] | None:
    """The subjects of ``source`` whose values a write after its last check changed (up
    to change number ``upto``), or None when the check must look at all of them (never
    checked, its items changed, or more than :data:`INCREMENTAL_MAX` changed)."""
    if source.checked_until <= 0:
        return None
    if upto <= source.checked_until:
        return set()
    with db.sessions() as session:
        rows = session.execute(
            select(LibraryRecord.subject)
            .where(
                LibraryRecord.source_id == source.id,
                LibraryRecord.changed > source.checked_until,
                LibraryRecord.changed <= upto,
            )
            .limit(INCREMENTAL_MAX + 1)
        ).scalars()
        subjects = set(rows)
    return None if len(subjects) > INCREMENTAL_MAX else subjects
