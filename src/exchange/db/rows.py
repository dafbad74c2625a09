"""Many rows in a few statements on SQLite: ``INSERT … VALUES (?, …), (?, …) …``.

Not ``executemany``: Python's sqlite3 driver lets the GIL go around every step of a
statement, and ``executemany`` steps once per row. In a thread beside a busy event loop
(the audit writer's group commit did so) each row then handed the GIL to the loop and
waited to get it back. Under lookups spread over 14 topics that handing over cost
the exchange more than the writing: the event loop's thread spent 133-137 µs of CPU per
lookup with the audit's group commit stepped row by row and 99-103 µs in multi-row
statements, the writer thread 18-22 and 12-13 µs (bench/README.md, "broker"). A
multi-row statement is stepped, and the GIL let go, once for all its rows. The quota
counters' flush (``exchange.authz.usage``) had its own copy of this; both use this one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy.engine import Connection

#: Rows per statement by default. SQLite takes at most 32,766 parameters in one statement
#: (since 3.32): 256 rows of the audit entry's 18 columns take 4,608.
ROWS_PER_STATEMENT = 256


@functools.lru_cache(maxsize=64)
def values_sql(head: str, width: int, rows: int, tail: str = "") -> str:
    """``head VALUES (?, …), …tail`` for ``rows`` rows of ``width`` qmark parameters."""
    row = "(" + ", ".join(["?"] * width) + ")"
    return f"{head} VALUES {', '.join([row] * rows)}{tail}"


def insert_rows(
    conn: Connection,
    head: str,
    width: int,
    values: Sequence[Any],
    *,
    tail: str = "",
    per_statement: int | None = None,
) -> list[tuple[Any, ...]]:
    """Run ``head VALUES … tail`` over ``values`` (flat, ``width`` to a row, in row order),
    ``per_statement`` rows at a time (:data:`ROWS_PER_STATEMENT` unless given); the rows
    the statements return (``RETURNING``), in order, else none."""
    if width <= 0 or len(values) % width:
        raise ValueError(f"{len(values)} values do not make rows of {width}")
    if per_statement is None:
        per_statement = ROWS_PER_STATEMENT
    rows = len(values) // width
    returned: list[tuple[Any, ...]] = []
    for start in range(0, rows, per_statement):
        count = min(per_statement, rows - start)
        result = conn.exec_driver_sql(
            values_sql(head, width, count, tail),
            tuple(values[start * width : (start + count) * width]),
        )
        if result.returns_rows:
            # Rows are tuples to their readers (SQLAlchemy 2.1 types them by column).
            returned += cast("list[tuple[Any, ...]]", result.all())
    return returned
