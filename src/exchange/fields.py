"""Field types every domain's schemas share (imports only pydantic, like the schemas).

Text bound for the database is checked where it enters, so a bad value is a 422 naming the
field, never a database error later: PostgreSQL refuses NUL characters in text (and
``\\u0000`` in JSON), and a string longer than its ``VARCHAR`` column. Use ``Text`` for free
text, adding the column's size::

    name: Annotated[Text, StringConstraints(min_length=2, max_length=100)]

A field with a pattern of its own must exclude NUL in that pattern (a second ``pattern``
replaces the first). The integer bounds are for ids and cursors that reach SQL.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

__all__ = ["INT32_MAX", "INT64_MAX", "NUL_FREE", "Text"]

#: Largest value of an SQL ``INTEGER`` (ids, versions) and ``BIGINT`` (sequence numbers).
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

#: Any text without a NUL character. A pattern rather than a validator: constraints added
#: on top (strip, min/max length) still apply in order, and the OpenAPI schema says it.
NUL_FREE = r"^[^\x00]*$"

#: A string without NUL characters; add the column's length with ``StringConstraints``.
Text = Annotated[str, StringConstraints(pattern=NUL_FREE)]
