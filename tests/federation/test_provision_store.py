"""The provision page and its store, without the network: a page is parsed only when its
counts hold, stored once at its watermark (a second puller's copy is refused), and the
stored copy reads back with each change applied over the provided rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import orjson
import pytest

from exchange.db.engine import Database
from exchange.federation import provision, retention
from exchange.federation.models import Mount, ProvisionBatch

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
PEER, LOCAL = "102001001/000001", "102001001/000007"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    with database.session() as session:
        session.add(
            Mount(
                peer_resource_code=PEER,
                resource_code=LOCAL,
                peer_version=1,
                status="published",
                updated_at=NOW,
            )
        )
        provision.enable(session, [LOCAL], NOW)
    yield database
    database.dispose()


def _records(*codes: str, name: str = "企业") -> bytes:
    return b"".join(orjson.dumps({"credit_code": c, "name": name}) + b"\n" for c in codes)


def _event(eid: int, key: str, record: dict[str, str] | None) -> bytes:
    return (
        orjson.dumps({"id": eid, "key": key, "kind": "x", "changed_at": "t", "record": record})
        + b"\n"
    )


def _page(
    rows: tuple[int, int], changes: tuple[int | None, int], records: bytes, events: list[bytes]
) -> provision.Page:
    header = provision.PageHeader(
        rows_from=rows[0],
        rows_to=rows[1],
        rows_total=rows[1],
        changes_from=changes[0],
        changes_to=changes[1],
        records=records.count(b"\n"),
        events=len(events),
    )
    return provision.parse_page(provision.encode_page(header, records, events))


def _store(db: Database, page: provision.Page) -> bool:
    with db.session() as session:
        mount = session.get(Mount, PEER)
        assert mount is not None
        return provision.store_page(session, mount, page, "rid", NOW)


def _copy(db: Database) -> list[dict[str, str]]:
    data = b"".join(provision.materialize(db.sessions, PEER, "credit_code"))
    return [orjson.loads(line) for line in data.splitlines()]


def test_a_page_round_trips_and_a_cut_page_is_refused() -> None:
    page = _page((0, 2), (None, 5), _records("A", "B"), [_event(6, "A", None)])
    assert page.header.records == 2
    assert page.header.events == 1
    assert bytes(page.records) == _records("A", "B")
    assert bytes(page.events) == _event(6, "A", None)
    whole = provision.encode_page(page.header, _records("A", "B"), [])
    with pytest.raises(ValueError, match="does not hold"):
        provision.parse_page(whole)  # the header promises an event the body lacks
    header = provision.PageHeader(0, 3, 3, None, 0, records=3, events=0)
    with pytest.raises(ValueError, match="3 records"):
        provision.parse_page(provision.encode_page(header, _records("A", "B"), []))
    with pytest.raises(ValueError, match="header"):
        provision.parse_page(b"not a page\n")


def test_pages_are_stored_once_at_their_watermark(db: Database) -> None:
    first = _page((0, 2), (None, 5), _records("A", "B"), [])
    assert _store(db, first)
    assert not _store(db, first)  # the same page again (a second puller, a retry)
    second = _page((2, 3), (5, 5), _records("C"), [])
    assert _store(db, second)
    stale = _page((0, 2), (5, 5), _records("A", "B"), [])
    assert not _store(db, stale)
    with db.sessions() as session:
        mount = session.get(Mount, PEER)
        assert mount is not None
        state = provision.state(session, mount)
        batches = session.query(ProvisionBatch).count()
    assert state is not None
    assert (state.rows, state.changes, state.records, state.batches) == (3, 5, 3, 2)
    assert batches == 2
    assert [r["credit_code"] for r in _copy(db)] == ["A", "B", "C"]


def test_changes_apply_over_the_provided_rows(db: Database) -> None:
    assert _store(db, _page((0, 3), (None, 0), _records("A", "B", "C"), []))
    events = [
        _event(1, "B", {"credit_code": "B", "name": "改名"}),
        _event(2, "C", None),  # deregistered and removed
        _event(3, "D", {"credit_code": "D", "name": "新设"}),  # its row not provided yet
    ]
    assert _store(db, _page((3, 3), (0, 3), b"", events))
    assert _copy(db) == [
        {"credit_code": "A", "name": "企业"},
        {"credit_code": "B", "name": "改名"},
        {"credit_code": "D", "name": "新设"},
    ]
    # D's row arrives later: the copy holds it once, at its row, as its newest version.
    assert _store(db, _page((3, 4), (3, 3), _records("D", name="旧"), []))
    assert [r["credit_code"] for r in _copy(db)] == ["A", "B", "D"]
    assert _copy(db)[2]["name"] == "新设"


def _prune(
    db: Database,
    *,
    before: dt.datetime,
    pages: int = 50,
    max_records: int = 1000,
    now: dt.datetime = NOW,
) -> retention.Pruned:
    with db.session() as session:
        return retention.prune_topic(
            session,
            PEER,
            "credit_code",
            before=before,
            now=now,
            pages=pages,
            max_records=max_records,
        )


def _batches(db: Database) -> int:
    """Pages listed (superseded ones are not)."""
    with db.sessions() as session:
        mount = session.get(Mount, PEER)
        assert mount is not None
        state = provision.state(session, mount)
        assert state is not None
        return state.batches


def _stored(db: Database) -> int:
    with db.sessions() as session:
        return session.query(ProvisionBatch).count()


def test_old_pages_fold_into_one_and_the_copy_reads_the_same(db: Database) -> None:
    assert _store(db, _page((0, 3), (None, 0), _records("A", "B", "C"), []))
    events = [
        _event(1, "B", {"credit_code": "B", "name": "改名"}),
        _event(2, "C", None),
        _event(3, "D", {"credit_code": "D", "name": "新设"}),
    ]
    assert _store(db, _page((3, 3), (0, 3), b"", events))
    assert _store(db, _page((3, 4), (3, 3), _records("D", name="旧"), []))
    assert _store(db, _page((4, 5), (3, 4), _records("E"), [_event(4, "A", None)]))
    assert _store(db, _page((5, 6), (4, 4), _records("F"), []))
    copy = _copy(db)
    # Pages received after the retention's edge are kept as they came.
    assert _prune(db, before=NOW).pages == 0
    assert _batches(db) == 5
    # Bounded: two pages read, folded into one; the copy reads the same.
    later = NOW + dt.timedelta(seconds=1)
    reader = provision.materialize(db.sessions, PEER, "credit_code")
    first_page = next(reader)  # an export that listed the pages before the fold
    assert _prune(db, before=later, pages=2).pages == 1
    assert _batches(db) == 4
    assert _copy(db) == copy
    # ... reads the pages it listed to the end: the same copy, nothing twice or missing.
    rest = b"".join(reader)
    assert [orjson.loads(line) for line in (first_page + rest).splitlines()] == copy
    # Then every page but the newest (the provider has not yet been asked past it).
    folded = _prune(db, before=later)
    assert folded.pages == 2
    assert folded.bytes_after < folded.bytes_before
    assert _batches(db) == 2
    assert _copy(db) == copy
    assert _prune(db, before=later).pages == 0
    # The superseded pages are deleted once no export can still be reading them.
    assert _stored(db) > 2
    gone = _prune(db, before=later, now=NOW + retention.GRACE + dt.timedelta(seconds=1))
    assert gone.deleted == _stored(db) + gone.deleted - 2
    assert _stored(db) == 2
    assert _copy(db) == copy
    # The watermark and the count received are untouched: pulling goes on from there.
    with db.sessions() as session:
        mount = session.get(Mount, PEER)
        assert mount is not None
        state = provision.state(session, mount)
    assert state is not None
    assert (state.rows, state.changes, state.records, state.batches) == (6, 4, 10, 2)
    assert _store(db, _page((6, 7), (4, 4), _records("G"), []))
    assert [r["credit_code"] for r in _copy(db)] == [r["credit_code"] for r in copy] + ["G"]


def test_a_fold_keeps_each_keys_newest_event_over_an_older_one_elsewhere(db: Database) -> None:
    # An event for D in a full (never folded) page, D's row later, and a newer event.
    old = _event(1, "D", {"credit_code": "D", "name": "v1"})
    assert _store(db, _page((0, 2), (None, 1), _records("A", "B"), [old]))
    assert _store(db, _page((2, 3), (1, 1), _records("D", name="旧"), []))
    new = _event(2, "D", {"credit_code": "D", "name": "v2"})
    assert _store(db, _page((3, 3), (1, 2), b"", [new]))
    assert _store(db, _page((3, 4), (2, 2), _records("E"), []))
    copy = _copy(db)
    assert {r["credit_code"]: r["name"] for r in copy}["D"] == "v2"
    assert _prune(db, before=NOW + dt.timedelta(seconds=1), max_records=2).pages == 1
    assert _copy(db) == copy
