"""Many rows in a few multi-row statements on SQLite (exchange.db.rows)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

from exchange.db import rows


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = create_engine(f"sqlite:///{tmp_path / 'rows.db'}")
    with made.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, n INTEGER)")
    yield made
    made.dispose()


def statements(conn: Connection) -> list[tuple[str, bool]]:
    """The statements ``conn`` runs from now on: (SQL, executemany)."""
    seen: list[tuple[str, bool]] = []

    def before(*args: Any) -> None:
        seen.append((args[2], args[5]))

    event.listen(conn, "before_cursor_execute", before)
    return seen


def test_rows_go_in_statements_of_the_given_size_in_order(engine: Engine) -> None:
    values: list[Any] = []
    for k in range(10):
        values += (k, f"v{k}", None if k % 3 else k * 10)
    with engine.begin() as conn:
        seen = statements(conn)
        returned = rows.insert_rows(conn, "INSERT INTO t (k, v, n)", 3, values, per_statement=4)
    assert returned == []
    # 4 + 4 + 2 rows, each statement stepped once (no executemany).
    assert [(sql.count("(?, ?, ?)"), many) for sql, many in seen] == [
        (4, False),
        (4, False),
        (2, False),
    ]
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT k, v, n FROM t ORDER BY k").all()
    assert [tuple(r) for r in stored] == [
        (k, f"v{k}", None if k % 3 else k * 10) for k in range(10)
    ]


def test_the_module_default_sets_the_statement_size(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rows, "ROWS_PER_STATEMENT", 3)
    values: list[Any] = []
    for k in range(7):
        values += (k, "x", k)
    with engine.begin() as conn:
        seen = statements(conn)
        rows.insert_rows(conn, "INSERT INTO t (k, v, n)", 3, values)
    assert [sql.count("(?, ?, ?)") for sql, _ in seen] == [3, 3, 1]


def test_returning_rows_come_back_across_statements_in_order(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t (k, v, n) VALUES (2, 'old', 5)")
        returned = rows.insert_rows(
            conn,
            "INSERT INTO t (k, v, n)",
            3,
            [1, "a", 1, 2, "b", 1, 3, "c", 1],
            tail=" ON CONFLICT (k) DO UPDATE SET n = t.n + excluded.n RETURNING k, n",
            per_statement=2,
        )
    assert returned == [(1, 1), (2, 6), (3, 1)]


def test_no_values_run_no_statement(engine: Engine) -> None:
    with engine.begin() as conn:
        seen = statements(conn)
        assert rows.insert_rows(conn, "INSERT INTO t (k, v, n)", 3, []) == []
    assert seen == []


@pytest.mark.parametrize(("width", "count"), [(3, 4), (0, 0), (-1, 3)])
def test_values_that_do_not_make_whole_rows_are_refused(
    engine: Engine, width: int, count: int
) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match="do not make rows"):
        rows.insert_rows(conn, "INSERT INTO t (k, v, n)", width, list(range(count)))


def test_the_statement_text_is_made_once_per_shape() -> None:
    one = rows.values_sql("INSERT INTO t (k)", 1, 3, " RETURNING k")
    assert one == "INSERT INTO t (k) VALUES (?), (?), (?) RETURNING k"
    assert rows.values_sql("INSERT INTO t (k)", 1, 3, " RETURNING k") is one
