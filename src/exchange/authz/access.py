"""Reaching an application, a dispute or a grant as one of its parties.

The three share one sequence: fetch the row (locked when the change to come is decided on
what is read), 404 when there is none, 403 unless the caller is its consumer, its provider
or the operator. It is written once here; each entity names only its own words.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

from exchange.authn import Principal
from exchange.authz.models import Application, Dispute, Grant
from exchange.errors import NotFound, NotPermitted


class ApplicationNotFound(NotFound):
    code = "application_not_found"


class DisputeNotFound(NotFound):
    code = "dispute_not_found"


class GrantNotFound(NotFound):
    code = "grant_not_found"


_Row = TypeVar("_Row", Application, Dispute, Grant)


def load(session: Session, model: type[_Row], key: int, for_update: bool) -> _Row | None:
    """``session.get``, with a row lock (SELECT … FOR UPDATE) when asked.

    Lock order, the same on every path so that two transactions cannot wait for each
    other: dispute, then application, then grant.
    """
    if not for_update:
        return session.get(model, key)
    return session.get(model, key, with_for_update=True, populate_existing=True)


def fetch_as_party(
    session: Session,
    model: type[_Row],
    key: int,
    caller: Principal,
    *,
    for_update: bool,
    not_found: type[NotFound],
    refusal: str,
    refusal_code: str,
) -> _Row:
    """The row ``key`` of ``model`` if the caller is a party to it (or the operator).

    ``not_found`` is raised when there is no such row (its message "no <model> <key>");
    ``refusal`` (formatted with ``key`` and ``caller``) and ``refusal_code`` make the 403.
    """
    row = load(session, model, key, for_update)
    if row is None:
        raise not_found(f"no {model.__name__.lower()} {key}")
    if not caller.is_operator and caller.code not in (row.consumer, row.provider):
        raise NotPermitted(refusal.format(key=key, caller=caller.code), code=refusal_code)
    return row
