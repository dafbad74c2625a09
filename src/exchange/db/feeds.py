"""Feeds read by cursor become visible in cursor order, on PostgreSQL too.

Three tables are read as feeds: a reader keeps the highest id it has seen and next asks for
the rows above it (the catalog's change feed, ``catalog_change``; the feed the peer
platform follows, ``federation_feed``; a topic's change events, ``distribution_event``).
PostgreSQL hands out ids at INSERT and shows rows at COMMIT, so two transactions writing
one feed can become visible out of order: 102 committed, read, and the reader's cursor
moved past it while 101 was still uncommitted; 101 then appears behind the cursor and is
never read. SQLite has one writer, so its transactions commit one after the other.

:func:`in_cursor_order` takes a transaction-level advisory lock naming the feed (and, for a
feed read per key, the key) before the row is inserted; it is held until the transaction
ends, so the next writer of the same feed gets its ids only once this one is visible.
Writers of a feed serialise, which is what SQLite does for every write anyway.
"""

from __future__ import annotations

import enum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

__all__ = ["Feed", "in_cursor_order"]


class Feed(enum.IntEnum):
    """The first key of each feed's advisory lock: arbitrary constants naming the feed."""

    CATALOG_CHANGES = 0x0CA7_A106
    FEDERATION_FEED = 0x0FED_FEED
    CHANGE_EVENTS = 0x0D15_7B1E


#: ``session.info`` key: the locks this session's current transaction already holds.
_HELD = "exchange.feeds.held"


def in_cursor_order(session: Session, feed: Feed, key: str = "") -> None:
    """Hold ``feed``'s write lock (for ``key``, if the feed is read per key) until the
    session's transaction ends; a no-op on SQLite.

    Call it before adding the feed's row. Within one transaction the lock is taken once
    (a bulk registration writes thousands of changes): later calls cost nothing.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    held = session.info.get(_HELD)
    transaction = session.get_transaction()
    if (
        held is not None
        and transaction is not None
        and held[0] is transaction
        and (feed, key) in held[1]
    ):
        return
    # Two keys whose hashes collide merely wait for each other.
    session.execute(select(func.pg_advisory_xact_lock(int(feed), func.hashtext(key))))
    transaction = session.get_transaction()
    if held is None or held[0] is not transaction:
        held = (transaction, set[tuple[Feed, str]]())
        session.info[_HELD] = held
    held[1].add((feed, key))
