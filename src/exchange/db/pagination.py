"""One way to read a page of a list: how many rows match, and the page in key order.

The total and the page are two statements under the same conditions, so that a list
endpoint answers ``{"total", "items"}`` the same way whatever it lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

_Row = TypeVar("_Row")


def page(
    session: Session,
    model: type[_Row],
    key: InstrumentedAttribute[Any],
    conditions: Sequence[ColumnElement[bool]],
    *,
    offset: int,
    limit: int,
    order: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]] = (),
) -> tuple[int, Sequence[_Row]]:
    """The count of ``model`` rows meeting every condition, and ``limit`` of them from
    ``offset`` in ``key`` order (``key``: a unique column, so that pages do not overlap),
    or in ``order`` when given (a list that ends with a unique column, newest first …)."""
    total = session.scalar(select(func.count(key)).where(*conditions)) or 0
    rows = session.scalars(
        select(model).where(*conditions).order_by(*(order or (key,))).offset(offset).limit(limit)
    ).all()
    return total, rows
