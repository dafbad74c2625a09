"""Keep each run's latest report; read the newest runs back."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.loadruns.models import LoadRun
from exchange.loadruns.schemas import LoadProgress, LoadRunOut, LoadRunReport, RunState

#: A running run not heard of for this long is shown as stale (the CLI reports each second).
STALE_AFTER = dt.timedelta(seconds=15)


def report(session: Session, run_id: str, body: LoadRunReport, now: dt.datetime) -> LoadRunOut:
    """Record ``body`` as run ``run_id``'s latest state; a run that ended stays ended."""
    run = session.get(LoadRun, run_id)
    if run is None:
        run = LoadRun(id=run_id, state=body.state.value, started_at=now)
        session.add(run)
    elif run.state != RunState.running.value:
        # A late "running" report (reordered, or a retry) must not reopen a finished run.
        return _out(run, now)
    run.state = body.state.value
    run.updated_at = now
    run.progress = body.progress.model_dump()
    session.flush()
    return _out(run, now)


def latest(session: Session, now: dt.datetime, limit: int = 5) -> list[LoadRunOut]:
    rows = session.scalars(select(LoadRun).order_by(LoadRun.updated_at.desc()).limit(limit))
    return [_out(r, now) for r in rows]


def _out(run: LoadRun, now: dt.datetime) -> LoadRunOut:
    return LoadRunOut(
        id=run.id,
        state=RunState(run.state),
        started_at=run.started_at,
        updated_at=run.updated_at,
        stale=run.state == RunState.running.value and now - run.updated_at > STALE_AFTER,
        progress=LoadProgress.model_validate(run.progress),
    )
