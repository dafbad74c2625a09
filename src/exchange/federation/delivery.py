"""Delivering what the peer provided in bulk to this platform's own consumers (回流 going
down, and the province's departments going up): a mounted table topic's export is answered
from the pages stored here (:func:`exchange.federation.provision.materialize`), not by
asking the peer again.

The broker's export relay reads a provider's streamed answer; :class:`StoredExport` offers
the same face (``headers``, ``content.iter_any()``), so the relay filters to the consumer's
grant, counts against its quota and audits exactly as for any provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from exchange.broker.errors import client_error
from exchange.db.engine import Database
from exchange.federation import provision
from exchange.federation.models import Cursor
from exchange.federation.service import mount_of

__all__ = ["StoredExport", "stored_export"]


class _Content:
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    def iter_any(self) -> AsyncIterator[bytes]:
        return self._chunks


class StoredExport:
    """The stored records of one mounted topic, as a streamed export answer."""

    def __init__(self, chunks: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        self.content = _Content(chunks)
        self.headers = headers


def _window(chunks: Iterator[bytes], offset: int, limit: int) -> Iterator[bytes]:
    """Records ``offset`` … ``offset + limit`` of an NDJSON stream (whole lines)."""
    skip, left = offset, limit
    for chunk in chunks:
        if left <= 0:
            return
        lines = chunk.count(b"\n")
        if skip >= lines:
            skip -= lines
            continue
        start = 0
        for _ in range(skip):
            start = chunk.index(b"\n", start) + 1
        skip = 0
        end = start
        taken = 0
        while taken < left:
            nxt = chunk.find(b"\n", end)
            if nxt < 0:
                break
            end = nxt + 1
            taken += 1
        left -= taken
        yield chunk[start:end]


def _plan(db: Database, resource_code: str) -> tuple[str, int] | None:
    with db.sessions() as session:
        mount = mount_of(session, resource_code)
        if mount is None:
            return None
        cursor = session.get(Cursor, provision.rows_cursor(mount.peer_resource_code))
        return None if cursor is None else (mount.peer_resource_code, cursor.records)


@asynccontextmanager
async def stored_export(
    db: Database, resource_code: str, key_item: str | None, offset: int, limit: int
) -> AsyncIterator[Any]:
    """The export of a mounted topic from the pages stored here; 409
    ``client.not_provided`` when this platform does not pull its records in bulk."""
    plan = await run_in_threadpool(_plan, db, resource_code)
    if plan is None:
        raise client_error(
            "not_provided",
            f"{resource_code} is the peer platform's topic and its records are not provided "
            "here in bulk (the operator enables it: POST /api/v1/federation/provisions)",
            409,
        )
    peer_code, received = plan
    chunks = iterate_in_threadpool(
        _window(provision.materialize(db.sessions, peer_code, key_item), offset, limit)
    )
    yield StoredExport(chunks, {"X-Records-Received": str(received)})
