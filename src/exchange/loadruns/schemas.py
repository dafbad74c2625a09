"""What ``exchange load`` reports while it runs, and what the dashboard reads back."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

NonNegative = Annotated[float, Field(ge=0, le=1e15)]


class RunState(StrEnum):
    running = "running"
    finished = "finished"
    failed = "failed"


class LoadProgress(BaseModel):
    """One reading of a run, as the locustfile writes it each second."""

    sim_hour: Annotated[float, Field(ge=0, le=24)] = Field(
        description="Hour of the simulated day reached (0-24)."
    )
    elapsed_s: NonNegative = Field(description="Wall-clock seconds since the day started.")
    day_seconds: Annotated[float, Field(gt=0, le=1e7)] = Field(
        description="Wall-clock seconds the whole simulated day takes."
    )
    records: NonNegative = Field(description="Records exchanged so far.")
    target_so_far: NonNegative = Field(description="Records the day's shape asks for by now.")
    records_per_s: NonNegative = Field(description="Records per second, last interval.")
    target_rate: NonNegative = Field(description="Records per second the shape asks for now.")


class LoadRunReport(BaseModel):
    state: RunState = RunState.running
    progress: LoadProgress


class LoadRunOut(BaseModel):
    id: str
    state: RunState
    started_at: dt.datetime
    updated_at: dt.datetime
    stale: bool = Field(
        description="Running, but no report for a while: the load test was probably stopped "
        "without saying so."
    )
    progress: LoadProgress


class LoadRunList(BaseModel):
    runs: list[LoadRunOut]
