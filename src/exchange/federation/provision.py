"""Bulk provision between the platforms: a topic's records pulled page by page with a
watermark, upward (the province pulls a published city topic) and back down (回流: the city
pulls a provincial topic it mounted). The same code serves both directions.

The watermark has two parts. ``rows`` is a position in the provider department's export
(source rows in a stable order; new records are appended, so rows past the watermark are
the new ones). ``changes`` is a position in the providing platform's change outbox
(``distribution_event``) for the topic: changes to rows already provided. The first page
pins ``changes`` at the outbox's end (the export already holds every earlier change), so
the pair works like a snapshot followed by its change log.

A page travels as one signed answer: a header line, the records (NDJSON, cut to the items
the providing platform granted the receiving one) and the change events. The receiving
platform stores each page as one :class:`~exchange.federation.models.ProvisionBatch` in the
transaction that moves its cursors, so a page is stored exactly once whichever side
restarts: a page whose commit did not happen is asked for again from the old watermark.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.distribution import retention
from exchange.distribution.models import ChangeEventRow
from exchange.federation.models import Cursor, Mount, ProvisionBatch

__all__ = [
    "PAGE_ORDER",
    "ROWS_PREFIX",
    "Page",
    "PageHeader",
    "ProvisionState",
    "changes_after",
    "changes_cursor",
    "enable",
    "materialize",
    "outbox_end",
    "parse_page",
    "rows_cursor",
    "state",
    "states",
    "store_page",
]

#: zlib level of stored pages: level 1 is ~5x smaller for NDJSON at a few ns a byte
_LEVEL = 1


#: the rows cursor of a provision is this prefix and the peer's resource code
ROWS_PREFIX = "provision:"


def rows_cursor(peer_resource_code: str) -> str:
    return ROWS_PREFIX + peer_resource_code


def changes_cursor(peer_resource_code: str) -> str:
    return f"provision-changes:{peer_resource_code}"


# -- the providing side ------------------------------------------------------------------


def outbox_end(session: Session, resource_code: str) -> int:
    """The id of the topic's newest change event (0 if none): where a new watermark pins."""
    return int(
        session.scalar(
            select(func.max(ChangeEventRow.id)).where(ChangeEventRow.resource_code == resource_code)
        )
        or 0
    )


def changes_after(
    session: Session, resource_code: str, after: int, limit: int, items: frozenset[str]
) -> tuple[list[bytes], int]:
    """The topic's change events after ``after`` (at most ``limit``) as NDJSON lines, each
    record cut to ``items``; and the new watermark. A watermark older than what the
    outbox's retention pruned is refused (409 ``cursor_pruned``): those changes are gone,
    and skipping them silently would leave the peer's copy wrong."""
    retention.check_cursor(session, resource_code, after)
    rows = session.execute(
        select(
            ChangeEventRow.id,
            ChangeEventRow.key,
            ChangeEventRow.kind,
            ChangeEventRow.changed_at,
            ChangeEventRow.record,
        )
        .where(ChangeEventRow.resource_code == resource_code, ChangeEventRow.id > after)
        .order_by(ChangeEventRow.id)
        .limit(limit)
    ).all()
    lines = []
    for rid, key, kind, changed_at, record in rows:
        if isinstance(record, str | bytes):  # JSON as text on some drivers
            record = orjson.loads(record)
        kept = None if record is None else {k: v for k, v in record.items() if k in items}
        lines.append(
            orjson.dumps(
                {
                    "id": rid,
                    "key": key,
                    "kind": kind,
                    "changed_at": changed_at.isoformat()
                    if isinstance(changed_at, dt.datetime)
                    else str(changed_at),
                    "record": kept,
                }
            )
            + b"\n"
        )
    return lines, (rows[-1][0] if rows else after)


# -- the page on the wire ----------------------------------------------------------------


class PageHeader(msgspec.Struct, frozen=True):
    """The first line of a page: where it starts and ends, and what it holds."""

    rows_from: int
    rows_to: int
    rows_total: int
    changes_from: int | None
    changes_to: int
    records: int
    events: int


@dataclass(frozen=True, slots=True)
class Page:
    header: PageHeader
    records: memoryview
    events: memoryview


_header_decoder = msgspec.json.Decoder(PageHeader)
_header_encoder = msgspec.json.Encoder()


def encode_page(header: PageHeader, records: bytes, events: list[bytes]) -> bytes:
    return b"".join((_header_encoder.encode(header), b"\n", records, *events))


def parse_page(body: bytes) -> Page:
    """A page as received; ``ValueError`` when it is not one (the counts are checked
    against the lines, so a page cut short is refused, not stored)."""
    cut = body.find(b"\n")
    if cut < 0:
        raise ValueError("the page has no header line")
    try:
        header = _header_decoder.decode(body[:cut])
    except msgspec.DecodeError as exc:
        raise ValueError(f"the page's header is not one: {exc}") from None
    # Records and events are newline-terminated lines; the (few) events are the last ones.
    start = len(body)
    for _ in range(header.events):
        if start <= cut + 1:
            raise ValueError(f"the page does not hold {header.events} change events")
        start = body.rfind(b"\n", cut, start - 1) + 1
    if body.count(b"\n", cut + 1, start) != header.records or (
        body and body[-1:] != b"\n" and len(body) > cut + 1
    ):
        raise ValueError(f"the page does not hold {header.records} records")
    view = memoryview(body)
    records, events = view[cut + 1 : start], view[start:]
    return Page(header, records, events)


# -- the receiving side ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProvisionState:
    """Where one provision stands at the receiving platform."""

    resource_code: str
    peer_resource_code: str
    rows: int
    changes: int | None
    records: int
    batches: int


def enable(session: Session, codes: list[str], now: dt.datetime) -> tuple[list[str], list[str]]:
    """Start provisioning mounted topics (local codes): (newly enabled, already enabled).
    A code that is not a live mount is refused by the caller (:func:`mounts_of`)."""
    new, already = [], []
    for code in dict.fromkeys(codes):
        mount = session.scalar(select(Mount).where(Mount.resource_code == code))
        assert mount is not None
        name = rows_cursor(mount.peer_resource_code)
        if session.get(Cursor, name) is not None:
            already.append(code)
            continue
        session.add(Cursor(name=name, value=0, records=0, updated_at=now))
        new.append(code)
    session.flush()
    return new, already


def mounts_of(session: Session, codes: list[str]) -> tuple[dict[str, Mount], list[str]]:
    """The live mounts behind local codes, and the codes that are none."""
    mounts = {
        m.resource_code: m
        for m in session.scalars(select(Mount).where(Mount.resource_code.in_(set(codes))))
        if m.status == "published"
    }
    return mounts, [c for c in codes if c not in mounts]


def state(session: Session, mount: Mount) -> ProvisionState | None:
    rows = session.get(Cursor, rows_cursor(mount.peer_resource_code))
    if rows is None:
        return None
    changes = session.get(Cursor, changes_cursor(mount.peer_resource_code))
    batches = session.scalar(
        select(func.count())
        .select_from(ProvisionBatch)
        .where(
            ProvisionBatch.peer_resource_code == mount.peer_resource_code,
            ProvisionBatch.superseded_at.is_(None),
        )
    )
    return ProvisionState(
        resource_code=mount.resource_code,
        peer_resource_code=mount.peer_resource_code,
        rows=rows.value,
        changes=None if changes is None else changes.value,
        records=rows.records,
        batches=int(batches or 0),
    )


def states(session: Session) -> list[ProvisionState]:
    """Every provision this platform runs (mounted topics whose records it pulls)."""
    names = list(
        session.scalars(
            select(Cursor.name).where(Cursor.name.like("provision:%")).order_by(Cursor.name)
        )
    )
    out = []
    for name in names:
        mount = session.get(Mount, name.removeprefix("provision:"))
        if mount is not None and (found := state(session, mount)) is not None:
            out.append(found)
    return out


def store_page(
    session: Session,
    mount: Mount,
    page: Page,
    request_id: str,
    now: dt.datetime,
) -> bool:
    """Store one page and move both cursors, in the caller's transaction. Returns False
    (storing nothing) when the page does not start at the stored watermark: another
    puller stored it first."""
    rows = session.get(Cursor, rows_cursor(mount.peer_resource_code), with_for_update=True)
    if rows is None or rows.value != page.header.rows_from:
        return False
    changes = session.get(Cursor, changes_cursor(mount.peer_resource_code))
    if (None if changes is None else changes.value) != page.header.changes_from:
        return False
    count = page.header.records + page.header.events
    if count or page.header.rows_to != page.header.rows_from:
        session.add(
            ProvisionBatch(
                peer_resource_code=mount.peer_resource_code,
                resource_code=mount.resource_code,
                rows_from=page.header.rows_from,
                rows_to=page.header.rows_to,
                changes_from=page.header.changes_from or 0,
                changes_to=page.header.changes_to,
                records=page.header.records,
                events=page.header.events,
                body=zlib.compress(page.records, _LEVEL),
                changes=zlib.compress(page.events, _LEVEL) if page.header.events else b"",
                request_id=request_id,
                received_at=now,
            )
        )
    rows.value, rows.records, rows.updated_at = page.header.rows_to, rows.records + count, now
    if changes is None:
        session.add(
            Cursor(
                name=changes_cursor(mount.peer_resource_code),
                value=page.header.changes_to,
                records=page.header.events,
                updated_at=now,
            )
        )
    else:
        changes.value, changes.updated_at = page.header.changes_to, now
        changes.records += page.header.events
    return True


#: the order pages are read in: the order they were stored (both watermarks only move
#: forward), which also puts a page folded by pruning in the place of those it replaced
PAGE_ORDER = (ProvisionBatch.rows_to, ProvisionBatch.changes_to, ProvisionBatch.id)


def _key_decoder(key_item: str) -> msgspec.json.Decoder[Any]:
    struct = msgspec.defstruct("KeyOnly", [("k", Any, None)], rename={"k": key_item})
    return msgspec.json.Decoder(struct)


def materialize(
    sessions: Callable[[], AbstractContextManager[Session]],
    peer_resource_code: str,
    key_item: str | None,
) -> Iterator[bytes]:
    """The provided topic as it stands now, NDJSON: the records in export order with each
    changed record replaced by its newest version (a deleted one left out), then records
    that only change events brought. A short session per page (``sessions()``), so a slow
    reader holds no connection between pages."""
    latest: dict[str, dict[str, Any] | None] = {}
    with sessions() as session:
        if key_item is not None:
            for (blob,) in session.execute(
                select(ProvisionBatch.changes)
                .where(
                    ProvisionBatch.peer_resource_code == peer_resource_code,
                    ProvisionBatch.events > 0,
                    ProvisionBatch.superseded_at.is_(None),
                )
                .order_by(*PAGE_ORDER)
            ):
                for line in zlib.decompress(blob).splitlines():
                    event = orjson.loads(line)
                    latest[str(event["key"])] = event["record"]
        ids = list(
            session.scalars(
                select(ProvisionBatch.id)
                .where(
                    ProvisionBatch.peer_resource_code == peer_resource_code,
                    ProvisionBatch.records > 0,
                    ProvisionBatch.superseded_at.is_(None),
                )
                .order_by(*PAGE_ORDER)
            )
        )
    decoder = _key_decoder(key_item) if key_item is not None and latest else None
    seen: set[str] = set()
    for batch_id in ids:
        with sessions() as session:
            stored = session.scalar(
                select(ProvisionBatch.body).where(ProvisionBatch.id == batch_id)
            )
        data = zlib.decompress(stored or b"")
        if decoder is None:
            yield data
            continue
        out = []
        for line, rec in zip(data.splitlines(), decoder.decode_lines(data), strict=True):
            key = getattr(rec, "k", None)
            if key is not None and str(key) in latest:
                seen.add(str(key))
                newest = latest[str(key)]
                if newest is not None:
                    out.append(orjson.dumps(newest) + b"\n")
            else:
                out.append(line + b"\n")
        yield b"".join(out)
    tail = [
        orjson.dumps(rec) + b"\n"
        for key, rec in latest.items()
        if key not in seen and rec is not None
    ]
    if tail:
        yield b"".join(tail)
