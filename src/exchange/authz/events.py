"""What authz tells the rest of the exchange: the domain events other packages react to in
the same transaction (:func:`exchange.db.reactions.emit`), and the announcement that grants
changed, by which every process's grant cache learns of it once the transaction commits."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from exchange.authz.models import Application, Grant
from exchange.db.freshness import announce


def grants_changed(session: Session, *, narrowed: bool = False) -> None:
    """Grants change in this transaction: every process's grant cache reloads once it
    commits (and the change is acknowledged only then, see :mod:`exchange.db.freshness`).

    ``narrowed``: the change takes something away (revoked, suspended, items removed,
    validity shortened, delivery or purpose changed). Only then do deliveries checked
    against the old grant have to finish before the change is acknowledged; a widening
    (a new grant, more items) does not wait for them.
    """
    announce(session, "authz")
    if narrowed:
        announce(session, "narrowed")


@dataclass(frozen=True)
class ApplicationSubmitted:
    """An application was submitted (other domains react in its transaction)."""

    application: Application


@dataclass(frozen=True)
class ApplicationDecided:
    """A provider (or the platform) decided items of an application."""

    application: Application


@dataclass(frozen=True)
class GrantRevoked:
    """A grant was revoked (other domains react in the revocation's transaction)."""

    grant: Grant
