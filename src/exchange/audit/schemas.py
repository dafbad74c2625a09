"""Audit API shapes (pydantic only, so the SDK can use them)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, Field


class AuditEntryOut(BaseModel):
    """One recorded exchange or denial."""

    seq: int = Field(description="Position in the hash chain (gapless).")
    request_id: str
    at: dt.datetime
    kind: str = Field(description="query | export")
    consumer: str = Field(description="Calling department ('anonymous' if the key was bad).")
    provider: str | None
    resource_code: str | None
    items: list[str] = Field(description="Items delivered (or asked for, on a denial).")
    case: str | None = Field(description="Business case given in X-Exchange-Case.")
    records: int
    outcome: str = Field(description="'ok' or the error code the caller received.")
    status: int = Field(description="HTTP status the caller received.")
    latency_ms: float
    hash: str


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_after: int | None = Field(description="Pass as after= to read the next page.")


class Problem(StrEnum):
    """Why verification stopped at an entry."""

    edited = "edited"
    deleted = "deleted"
    reordered = "reordered"


class VerifyReport(BaseModel):
    """Result of walking the whole chain."""

    ok: bool
    entries: int = Field(description="Entries checked.")
    last_seq: int
    first_bad_seq: int | None = None
    problem: Problem | None = None
    message: str = ""


class Volume(BaseModel):
    calls: int
    records: int


class VolumeStats(BaseModel):
    records: int
    calls: int
    by_provider: dict[str, Volume]
    by_consumer: dict[str, Volume]
    by_topic: dict[str, Volume]


class StatsOut(BaseModel):
    """The platform's exchanged-records figures (daily and cumulative)."""

    day: dt.date = Field(description="The platform's day (Beijing time).")
    today: VolumeStats
    total: VolumeStats
