"""Platform housekeeping endpoints: health and the simulated clock."""

from __future__ import annotations

import datetime as dt
import os
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field, StringConstraints

from exchange import __version__
from exchange.clock import MAX_OFFSET, parse_duration
from exchange.context import AppContext, Caller, Ctx, Operator
from exchange.errors import ValidationFailed
from exchange.fields import Text
from exchange.openapi import PUBLIC

router = APIRouter(tags=["platform"])


class Health(BaseModel):
    status: str
    version: str
    database: str
    parts: list[str] = Field(
        description="The parts of the exchange this process serves (exchange serve PART)."
    )
    process: int = Field(description="The answering process's id (one of --workers N).")


class ClockOut(BaseModel):
    now: dt.datetime
    offset_seconds: float
    today: dt.date = Field(description="The platform's day (Beijing time).")


class ClockAdvance(BaseModel):
    by: Annotated[Text, StringConstraints(max_length=32)] = Field(
        description="Duration to move forward, e.g. 10d, 36h, 90m, 2w "
        f"(the clock runs at most {MAX_OFFSET.days} days ahead)",
        examples=["10d"],
    )


@router.get("/healthz", response_model=Health, openapi_extra=PUBLIC)
def health(ctx: Ctx) -> Health:
    """Liveness and which database backs this process (no key needed)."""
    return Health(
        status="ok",
        version=__version__,
        database=ctx.db.engine.dialect.name,
        parts=list(ctx.serving),
        process=os.getpid(),
    )


@router.get("/api/v1/clock", response_model=ClockOut)
def get_clock(ctx: Ctx, _caller: Caller) -> ClockOut:
    """The platform's simulated time."""
    ctx.clock.refresh()
    return _clock_out(ctx)


@router.post("/api/v1/clock/advance", response_model=ClockOut)
def advance_clock(body: ClockAdvance, ctx: Ctx, _op: Operator) -> ClockOut:
    """Move simulated time forward (operator only): deadlines and expiries follow it."""
    try:
        delta = parse_duration(body.by)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="by", code="invalid_duration") from exc
    try:
        ctx.clock.advance(delta)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="by", code="clock_out_of_range") from exc
    return _clock_out(ctx)


@router.post("/api/v1/clock/reset", response_model=ClockOut)
def reset_clock(ctx: Ctx, _op: Operator) -> ClockOut:
    """Put simulated time back to wall time (operator only)."""
    ctx.clock.reset()
    return _clock_out(ctx)


def _clock_out(ctx: AppContext) -> ClockOut:
    return ClockOut(
        now=ctx.clock.now(),
        offset_seconds=ctx.clock.offset.total_seconds(),
        today=ctx.clock.today(),
    )
