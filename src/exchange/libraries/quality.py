"""Quality checks (校核纠错): where two sources disagree about one subject, flag it.

Two rules, both over records the library gathered (never over a list written by hand):

- ``mismatch``: a witness item (an element a topic re-shares, ``is_source: false``)
  differs from the element's source for the same subject: a name spelled differently by
  social insurance than by the household register. Values are compared after Unicode
  NFKC normalisation and trimming, so full-width and half-width forms agree.
- ``deceased_insured``: the household register records the person as deregistered on
  death (``person.household_status`` = 死亡注销) while a social or medical insurance source
  still reports an enrolment (``social_insurance.*``, ``medical_insurance.*``).

A pair of sources is checked again whenever either was refreshed since its last check;
a conflict no longer seen then is closed as ``cleared`` (the source was corrected), or as
``vanished`` when either source no longer holds the subject's record at all (a full pass
removed it as gone from the source: a de-registered person, a struck-off enterprise). Each
conflict is kept once per (subject, kind, element, other source): a re-check does not
duplicate it, and a resolved one stays resolved.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterator
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


def _pairs(db: Database, check: Check) -> Iterator[tuple[str, Any, Any]]:
    """(subject, authoritative value, other value) of the subjects both sources hold that
    the check may flag.

    The database compares the two values first, in SQL over the whole pair, and sends
    back only candidates: for ``mismatch`` the subjects whose two values differ as JSON
    (values equal as JSON normalise equal, so nothing the rule flags is left out), for
    ``deceased_insured`` those the register records as 死亡注销 with an enrolment value.
    A clean pair costs one join in the database, not a decode of every row in Python."""
    sqlite = db.is_sqlite
    sp, op = check.position, check.other_position
    if sqlite:
        a, b = f"s.vals -> '$[{sp}]'", f"o.vals -> '$[{op}]'"
        if check.kind == "mismatch":
            cond = f"{a} <> {b}"
        else:
            cond = f"s.vals ->> '$[{sp}]' = ? AND {b} <> 'null'"
    else:
        a, b = f"(s.vals::jsonb -> {sp})", f"(o.vals::jsonb -> {op})"
        if check.kind == "mismatch":
            cond = f"{a} <> {b}"
        else:
            cond = f"(s.vals::jsonb ->> {sp}) = %s AND {b} <> 'null'::jsonb"
        a, b = f"{a}::text", f"{b}::text"
    p = "?" if sqlite else "%s"
    sql = (
        f"SELECT o.subject, {a}, {b} FROM library_record o JOIN library_record s "
        f"ON s.source_id = {p} AND s.subject = o.subject WHERE o.source_id = {p} AND {cond}"
    )
    params: tuple[Any, ...] = (check.source.id, check.other.id)
    if check.kind != "mismatch":
        params += (DECEASED,)
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(sql, params)
        loads = orjson.loads
        while True:
            batch = cur.fetchmany(_FETCH)
            if not batch:
                break
            for subject, value, other in batch:
                yield subject, loads(value), loads(other)
        cur.close()
    finally:
        raw.close()


def _found(check: Check, value: Any, other: Any) -> bool:
    if check.kind == "mismatch":
        a, b = normalise(value), normalise(other)
        return a is not None and b is not None and a != b
    return value == DECEASED and other is not None


def _scan(db: Database, check: Check, now: dt.datetime, library: str) -> tuple[int, int]:
    """Check one pair; returns (conflicts found now, conflicts cleared)."""
    table = LibraryConflict.__table__
    assert isinstance(table, Table)
    insert = sqlite.insert if db.is_sqlite else postgresql.insert
    stmt = insert(table).on_conflict_do_nothing(
        index_elements=["library", "subject", "kind", "element", "other_source_id"]
    )
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []

    def flush() -> None:
        if rows:
            with db.writing(), db.session() as session:
                session.execute(stmt, rows)
            rows.clear()

    for subject, value, other in _pairs(db, check):
        if not _found(check, value, other):
            continue
        seen.add(subject)
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
    cleared = 0
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
        gone = [(cid, subject) for cid, subject in open_ if subject not in seen]
        both = _held_by_both(session, check, [subject for _, subject in gone])
        agreed = [c for c, s in gone if s in both]
        vanished = [c for c, s in gone if s not in both]
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
        cleared = len(gone)
    return len(seen), cleared


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
    """Check every pair of ``library`` refreshed since its last check; conflicts seen."""
    with db.sessions() as session:
        sources = list(
            session.scalars(select(LibrarySource).where(LibrarySource.library == library))
        )
    stamp = {s.id: _epoch(s.refreshed_at) for s in sources}
    found = 0
    for check in checks_of(sources):
        a, b = check.source, check.other
        if not force and stamp[a.id] <= a.checked_until and stamp[b.id] <= b.checked_until:
            continue
        n, _ = _scan(db, check, now, library)
        found += n
    with db.session() as session:
        for s in session.scalars(select(LibrarySource).where(LibrarySource.library == library)):
            s.checked_until = stamp.get(s.id, 0)
    return found


def _epoch(at: dt.datetime | None) -> int:
    return 0 if at is None else int(at.timestamp() * 1000)
