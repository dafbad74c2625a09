"""One domain's rules reacting to another's events inside the same transaction.

A topic's retirement suspends its grants, and removing an item narrows the grants that
held it: the catalog emits the event, authorization reacts, and both commit together or
not at all. The reaction is registered once on the database (``db.reactions.on``) when
the reacting domain is installed, so no call site (seeding, routers, benchmarks) has to
pass it along; the emitting domain finds it through its session.

Caches do not react here: they learn of committed changes through
:mod:`exchange.db.freshness`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Reactions", "emit"]

INFO_KEY = "reactions"

Reaction = Callable[[Session, Any], None]


class Reactions:
    """Event type → reactions, shared by every session of one database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._by_type: dict[type, list[Reaction]] = {}
        sessions.configure(info={**sessions.kw.get("info", {}), INFO_KEY: self})

    def on(self, kind: type, reaction: Reaction) -> None:
        """Call ``reaction(session, event)`` for every ``kind`` event, in its transaction."""
        found = self._by_type.setdefault(kind, [])
        if reaction not in found:
            found.append(reaction)

    def emit(self, session: Session, event: object) -> None:
        for reaction in tuple(self._by_type.get(type(event), ())):
            reaction(session, event)


def emit(session: Session, event: object) -> None:
    """Run the reactions registered for ``event``'s type on the session's database."""
    reactions: Reactions | None = session.info.get(INFO_KEY)
    if reactions is not None:
        reactions.emit(session, event)
