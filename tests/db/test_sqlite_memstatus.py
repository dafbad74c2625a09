"""SQLite's memory statistics are turned off in a process that has not used SQLite yet,
and left alone otherwise (exchange.db.sqlite_memstatus).

Each case runs in a fresh interpreter: this test process has used SQLite long before (the
statistics' state is per process and can be set only while SQLite holds nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from exchange.db.sqlite_memstatus import disable_memory_statistics

# sqlite3_memory_used() counts the bytes SQLite holds while the statistics are on, and
# stays 0 once they are off: what a connection holds tells which state the process is in.
_PROBE = """
import ctypes, json, sqlite3, sys, _sqlite3
from pathlib import Path
used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
used.restype = ctypes.c_int64
early = None
if "--early-connection" in sys.argv:
    early = sqlite3.connect(":memory:")
from exchange.db.engine import Database
from exchange.db.sqlite_memstatus import disable_memory_statistics, memory_statistics_off
db = Database("sqlite:///" + str(Path(sys.argv[1]) / "probe.db"))
with db.engine.connect() as conn:
    conn.exec_driver_sql("CREATE TABLE t (x)")
    conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    value = conn.exec_driver_sql("SELECT x FROM t").scalar()
    held = used()
db.dispose()
print(json.dumps({"off": memory_statistics_off(), "again": disable_memory_statistics(),
                  "held": held, "value": value}))
"""


def _probe(tmp_path: Path, *args: str, keep: bool = False) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "EXCHANGE_SQLITE_MEMSTATUS"}
    if keep:
        env["EXCHANGE_SQLITE_MEMSTATUS"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_fresh_process_turns_the_statistics_off_before_its_first_connection(
    tmp_path: Path,
) -> None:
    got = _probe(tmp_path)
    assert got == {"off": True, "again": True, "held": 0, "value": 1}


def test_a_process_already_holding_a_connection_keeps_them(tmp_path: Path) -> None:
    got = _probe(tmp_path, "--early-connection")
    assert got["off"] is False
    assert got["again"] is False
    assert got["held"] > 0
    assert got["value"] == 1


def test_the_switch_keeps_them(tmp_path: Path) -> None:
    got = _probe(tmp_path, keep=True)
    assert got["off"] is False
    assert got["held"] > 0
    assert got["value"] == 1


def test_in_a_process_using_sqlite_it_changes_nothing() -> None:
    """This test process holds SQLite connections (the fixtures' databases): whatever it
    answered the first time, a call answers the same and SQLite goes on working."""
    import sqlite3

    conn = sqlite3.connect(":memory:")
    try:
        first = disable_memory_statistics()
        assert disable_memory_statistics() is first
        assert conn.execute("SELECT 40 + 2").fetchone() == (42,)
    finally:
        conn.close()


def test_threads_share_sqlite_after_it() -> None:
    """Statements in several threads at once still give every thread its own right
    answer with the statistics off (the mutex they no longer take guarded only counts)."""
    script = """
import sqlite3, threading
from exchange.db.sqlite_memstatus import disable_memory_statistics
assert disable_memory_statistics()
out = {}
def run(i):
    c = sqlite3.connect(":memory:", check_same_thread=False)
    q = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < ?) "
    out[i] = c.execute(q + "SELECT sum(n) FROM r", (200_000 + i,)).fetchone()[0]
    c.close()
ts = [threading.Thread(target=run, args=(i,)) for i in range(2)]
[t.start() for t in ts]
[t.join() for t in ts]
assert out == {i: (200_000 + i) * (200_001 + i) // 2 for i in range(2)}, out
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
