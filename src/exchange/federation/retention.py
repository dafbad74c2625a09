"""Pruning stored provision pages: the pages of a provided topic older than the operator's
retention (``EXCHANGE_FEDERATION_RETENTION``), once both sides have acknowledged them, are
folded into one, so what is stored stops growing with every page and every change.

A page is acknowledged by this platform when it is committed with its watermark, and by
the providing platform when this one asks the next page from its end: every stored page
but a topic's newest. Folding keeps what :func:`exchange.federation.provision.materialize`
reads exactly: the pages' change events are applied to the pages' own records (a deleted
record dropped), and the newest event of each key is kept, since it still decides at read
time for a record in another page (an earlier event of the same key, kept by an earlier
fold, must not win over it). The group becomes one new page, read in their place
(:data:`~exchange.federation.provision.PAGE_ORDER`), so a topic converges to a few large
pages of at most ``MAX_RECORDS`` records each. The pages it replaces are marked superseded
(no longer listed) and deleted by a pass ``GRACE`` later: an export that listed them
before the fold reads them to its end.

Work is bounded per pass: at most ``pages`` pages read and folded, and as many deleted,
for a topic, in one transaction; a page already holding ``MAX_RECORDS`` records is left
as it is.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from exchange.catalog.models import Topic
from exchange.federation import provision
from exchange.federation.models import ProvisionBatch

__all__ = ["MAX_RECORDS", "Pruned", "key_item_of", "prune_topic"]

#: records a folded page may grow to (a bigger one is read in one piece by every export)
MAX_RECORDS = 200_000
#: how long a superseded page stays readable: longer than any export reading it takes
GRACE = dt.timedelta(minutes=30)
_LEVEL = 1


@dataclass(frozen=True, slots=True)
class Pruned:
    """One pass over a topic: pages folded away, bytes stored before and after."""

    pages: int = 0
    #: superseded pages deleted (their grace over)
    deleted: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


def key_item_of(session: Session, resource_code: str) -> str | None:
    """The mounted topic's key item (None: its records have no single key)."""
    topic = session.scalar(select(Topic).where(Topic.resource_code == resource_code))
    if topic is None:
        return None
    keys = [i.get("field") for i in topic.data.get("items", []) if i.get("is_key")]
    return keys[0] if len(keys) == 1 and isinstance(keys[0], str) else None


def prune_topic(
    session: Session,
    peer_resource_code: str,
    key_item: str | None,
    *,
    before: dt.datetime,
    now: dt.datetime,
    pages: int,
    grace: dt.timedelta = GRACE,
    max_records: int = MAX_RECORDS,
) -> Pruned:
    """Delete pages superseded more than ``grace`` ago, then fold the oldest run of a
    topic's pages received before ``before`` (never its newest page), at most ``pages``
    of each, in the caller's transaction."""
    gone = session.scalars(
        select(ProvisionBatch.id)
        .where(
            ProvisionBatch.peer_resource_code == peer_resource_code,
            ProvisionBatch.superseded_at < now - grace,
        )
        .limit(pages)
    ).all()
    if gone:
        session.execute(delete(ProvisionBatch).where(ProvisionBatch.id.in_(gone)))
    live = (
        ProvisionBatch.peer_resource_code == peer_resource_code,
        ProvisionBatch.superseded_at.is_(None),
    )
    heads = session.execute(
        select(ProvisionBatch.id, ProvisionBatch.records, ProvisionBatch.received_at)
        .where(*live)
        .order_by(*provision.PAGE_ORDER)
        .limit(pages + 1_000)
    ).all()
    group: list[int] = []
    total = 0
    for batch_id, records, received_at in heads[:-1]:  # never the newest
        if _aware(received_at) >= before or len(group) >= pages:
            break
        if records >= max_records or (group and total + records > max_records):
            if len(group) > 1:
                break
            group, total = [], 0  # a full page: the run starts after it
            if records >= max_records:
                continue
        group.append(batch_id)
        total += records
    if len(heads) <= 1 or len(group) < 2:
        return Pruned(deleted=len(gone))
    rows = session.scalars(
        select(ProvisionBatch).where(ProvisionBatch.id.in_(group)).order_by(*provision.PAGE_ORDER)
    ).all()
    body, count, changes, events = _fold(rows, key_item)
    first, last = rows[0], rows[-1]
    folded = ProvisionBatch(
        peer_resource_code=peer_resource_code,
        resource_code=last.resource_code,
        rows_from=first.rows_from,
        rows_to=last.rows_to,
        changes_from=first.changes_from,
        changes_to=last.changes_to,
        records=count,
        events=events,
        body=zlib.compress(body, _LEVEL),
        changes=zlib.compress(changes, _LEVEL) if events else b"",
        request_id=last.request_id,
        received_at=last.received_at,
    )
    session.add(folded)
    # Superseded, not deleted: a reader that listed them a moment ago still reads them.
    for row in rows:
        row.superseded_at = now
    session.flush()
    return Pruned(
        pages=len(rows) - 1,
        deleted=len(gone),
        bytes_before=sum(len(r.body) + len(r.changes) for r in rows),
        bytes_after=len(folded.body) + len(folded.changes),
    )


def _fold(rows: Any, key_item: str | None) -> tuple[bytes, int, bytes, int]:
    """The group's records with its events applied, and the events still to apply."""
    if key_item is None:
        # No key to apply events by: materialize ignores them, so they are only kept.
        body = b"".join(zlib.decompress(r.body) for r in rows)
        changes = b"".join(zlib.decompress(r.changes) for r in rows if r.events)
        return body, sum(r.records for r in rows), changes, sum(r.events for r in rows)
    latest: dict[str, tuple[bytes, dict[str, Any] | None]] = {}
    for r in rows:
        if r.events:
            for line in zlib.decompress(r.changes).splitlines():
                event = orjson.loads(line)
                latest[str(event["key"])] = (line, event["record"])
    decoder = msgspec.json.Decoder(
        msgspec.defstruct("KeyOnly", [("k", Any, None)], rename={"k": key_item})
    )
    out: list[bytes] = []
    for r in rows:
        data = zlib.decompress(r.body)
        if not latest:
            out.append(data)
            continue
        for line, rec in zip(data.splitlines(), decoder.decode_lines(data), strict=True):
            key = getattr(rec, "k", None)
            found = latest.get(str(key)) if key is not None else None
            if found is None:
                out.append(line + b"\n")
            elif found[1] is not None:
                out.append(orjson.dumps(found[1]) + b"\n")
    body = b"".join(out)
    kept = [line + b"\n" for line, _ in latest.values()]
    return body, body.count(b"\n"), b"".join(kept), len(kept)


def _aware(at: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back without their zone; they are stored in UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
