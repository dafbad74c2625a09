"""The entry's hashed form is versioned: entries hashed before a field was added still
verify beside entries that carry it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import orjson
from sqlalchemy import select
from tests.audit.entries import sample_entry

from exchange.audit.chain import append, ensure_head
from exchange.audit.entry import GENESIS, HASHED_FIELDS, STORED, VERSION, Entry, chain_hash
from exchange.audit.models import AuditEntry
from exchange.audit.verify import verify
from exchange.context import AppContext


def entry(i: int, version: int = VERSION) -> Entry:
    return sample_entry(
        i,
        items=["id_number"],
        case=None,
        latency_us=900,
        correlation_id="mine-1" if version > 1 else None,
        version=version,
    )


def test_version_1_is_the_form_entries_were_hashed_in_before_versions() -> None:
    old = entry(1, version=1)
    # What the hashed form was before versions existed: twelve keys, no "v".
    before = {
        "request_id": "req-1",
        "at": "2024-03-01T02:00:01.000000+00:00",
        "kind": "query",
        "consumer": "mzj",
        "provider": "gaj",
        "resource_code": "101001001/000001",
        "items": ["id_number"],
        "case": None,
        "records": 1,
        "outcome": "ok",
        "status": 200,
        "latency_us": 900,
    }
    expected = orjson.dumps(before, option=orjson.OPT_SORT_KEYS)
    assert old.canonical() == expected
    assert chain_hash(GENESIS, old) == hashlib.sha256(GENESIS.encode() + expected).hexdigest()


def test_the_current_version_names_itself_and_covers_the_new_field() -> None:
    new = entry(1)
    body = orjson.loads(new.canonical())
    assert body["v"] == VERSION
    assert set(body) == {*HASHED_FIELDS[VERSION], "v"}
    assert body["correlation_id"] == "mine-1"
    # Changing the new field changes the hash: it is covered.
    other = dataclasses.replace(new, correlation_id="mine-2", cached=None)
    assert chain_hash(GENESIS, other) != chain_hash(GENESIS, new)


def test_both_versions_round_trip_through_the_journal_form() -> None:
    for version in HASHED_FIELDS:
        e = entry(3, version=version)
        back = Entry.from_canonical(e.canonical())
        assert back.canonical() == e.canonical()
        assert back.version == version


def test_old_and_new_entries_verify_in_one_chain(ctx: AppContext) -> None:
    ensure_head(ctx.db)
    append(ctx.db, [entry(1, version=1), entry(2), entry(3, version=1), entry(4)])
    with ctx.db.sessions() as s:
        rows = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    assert [r.version for r in rows] == [1, VERSION, 1, VERSION]
    assert Entry.of(rows[0]).canonical() == entry(1, version=1).canonical()
    assert verify(ctx.db).ok
    assert "cached" not in STORED


def test_the_time_is_written_as_isoformat_for_whole_seconds_and_fractions_in_any_zone() -> None:
    """The hashed form's time is ``isoformat(timespec="microseconds")`` in UTC, byte for
    byte (entries already chained were hashed so), whichever way it is written: whole
    seconds, one microsecond, the last one; UTC, another zone, the year's first second."""
    beijing = dt.timezone(dt.timedelta(hours=8))
    instants = [
        dt.datetime(2024, 3, 1, 2, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 1, 2, 0, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 1, 2, 0, 1, 999_999, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 1, 2, 0, 1, 100_000, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 1, 10, 0, 1, 123_456, tzinfo=beijing),
        dt.datetime(2024, 3, 1, 10, 0, 1, tzinfo=beijing),
        dt.datetime(2025, 1, 1, tzinfo=dt.timezone(dt.timedelta(0))),
        dt.datetime(2025, 1, 1, 0, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ]
    for at in instants:
        written = orjson.loads(dataclasses.replace(entry(1), at=at, cached=None).canonical())
        assert written["at"] == at.astimezone(dt.UTC).isoformat(timespec="microseconds")
