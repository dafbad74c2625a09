"""Once a change has answered on one exchange process, no process serves a call it forbids.

Two real ``exchange up`` processes on one database (a SQLite file, PostgreSQL), real HTTP
on loopback: consumers hammer process 2 while process 1 acknowledges each kind of change.
Every call that started after the acknowledgement must be refused (for grant narrowing:
must not carry the removed item).
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.crossproc import KINDS, run_trial, two_processes


def test_no_process_serves_a_call_after_the_change_answered(
    database_url: str, tmp_path: Path
) -> None:
    database = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    with two_processes(tmp_path, database_url) as pair:
        for n, kind in enumerate(KINDS):
            trial = run_trial(pair, kind, n, database)
            assert trial.before_ok > 0, f"{kind}: nothing served before the change: {trial}"
            assert trial.after > 0, f"{kind}: no call started after the answer: {trial}"
            assert trial.served_after == 0, (
                f"{kind}: {trial.served_after} of {trial.after} calls that started after the "
                f"change answered were served anyway"
            )
