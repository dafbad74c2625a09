"""``/api/v1/load-runs``: ``exchange load`` reports a run's progress; the dashboard reads it.

Operator only both ways: a load run is the operator's own traffic (its grants are made with
the operator key), and a department must neither fake one nor see another's.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query

from exchange.context import DbSession, Operator
from exchange.loadruns import service
from exchange.loadruns.schemas import LoadRunList, LoadRunOut, LoadRunReport

router = APIRouter(prefix="/api/v1/load-runs", tags=["platform"])

RunId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="The run's own id.")]


@router.put("/{run_id}", response_model=LoadRunOut)
def report_run(run_id: RunId, body: LoadRunReport, session: DbSession, _op: Operator) -> LoadRunOut:
    """Report a load run's progress (operator only; ``exchange load`` does it each second).
    The latest report replaces the previous one; a finished or failed run stays so."""
    return service.report(session, run_id, body, dt.datetime.now(dt.UTC))


@router.get("", response_model=LoadRunList)
def list_runs(
    session: DbSession,
    _op: Operator,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> LoadRunList:
    """The most recently reported load runs, newest first (operator only)."""
    return LoadRunList(runs=service.latest(session, dt.datetime.now(dt.UTC), limit))
