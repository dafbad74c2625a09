"""The provision page and its store, without the network: a page is parsed only when its
counts hold, stored once at its watermark (a second puller's copy is refused), and the
stored copy reads back with each change applied over the provided rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import orjson
import pytest

from exchange.db.engine import Database
from exchange.federation import provision
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
