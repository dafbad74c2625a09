"""Audit API shapes (pydantic only, so the SDK can use them)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, Field

from exchange.loadruns.schemas import LoadRunOut


class AuditEntryOut(BaseModel):
    """One recorded exchange or denial."""

    seq: int = Field(description="Position in the hash chain (gapless).")
    request_id: str
    at: dt.datetime
    kind: str = Field(description="query | export | verify")
    consumer: str = Field(description="Calling department ('anonymous' if the key was bad).")
    provider: str | None
    resource_code: str | None
    items: list[str] = Field(description="Items delivered (or asked for, on a denial).")
    case: str | None = Field(description="Business case given in X-Exchange-Case.")
    records: int
    outcome: str = Field(description="'ok' or the error code the caller received.")
    status: int = Field(description="HTTP status the caller received.")
    latency_ms: float
    correlation_id: str | None = Field(
        default=None, description="The caller's own X-Request-Id, if it sent one."
    )
    verdicts: dict[str, dict[str, int]] | None = Field(
        default=None,
        description="A verification's outcomes (核验): per claimed item, how many keys "
        "answered match / mismatch / unknown. Never the values.",
    )
    hash: str


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_after: int | None = Field(description="Pass as after= to read the next page.")


class Problem(StrEnum):
    """What verification found wrong."""

    #: an entry's content no longer matches its hash
    edited = "edited"
    #: entries missing from the chain (a seq gap, or cut from the end below the head)
    deleted = "deleted"
    #: entries moved (their links no longer follow)
    reordered = "reordered"
    #: the chain ends before a signed checkpoint says it reached
    truncated = "truncated"
    #: entries before a signed checkpoint were changed and their hashes recomputed
    rewritten = "rewritten"
    #: entries appended while no exchange had the log open (no signature vouches for them)
    forged = "forged"
    #: a checkpoint with no valid signature, missing, or differing from its mirror copy
    checkpoint = "checkpoint"
    #: the daily statistics differ from what the entries add up to
    stats = "stats"
    #: journal lines refused at recovery (forged or damaged)
    journal = "journal"
    #: the audit tables or the mirror could not be read at all
    unreadable = "unreadable"


class Finding(BaseModel):
    """One kind of tampering found."""

    problem: Problem
    first_bad_seq: int | None = Field(
        default=None, description="First entry affected (none for statistics and journal)."
    )
    message: str


class VerifyReport(BaseModel):
    """Result of checking the whole log. The top-level ``first_bad_seq``, ``problem`` and
    ``message`` repeat the earliest finding."""

    ok: bool
    entries: int = Field(description="Entries checked.")
    last_seq: int
    first_bad_seq: int | None = None
    problem: Problem | None = None
    message: str = ""
    checkpoints: int = Field(default=0, description="Signed checkpoints that verified.")
    signed_seq: int = Field(default=0, description="Last entry covered by a valid checkpoint.")
    unsigned_tail: int = Field(
        default=0, description="Entries after the last checkpoint (not yet signed)."
    )
    key_id: str | None = Field(
        default=None, description="Fingerprint of the public key checkpoints were checked with."
    )
    findings: list[Finding] = Field(default_factory=list)


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


class DayVolume(BaseModel):
    day: dt.date
    calls: int
    records: int


class UnitVolume(BaseModel):
    code: str
    calls: int
    records: int


class BrokerNow(BaseModel):
    """This process's broker since it started: what the dashboard turns into rates."""

    started_at: dt.datetime
    calls: int = Field(description="Broker calls answered, every outcome.")
    records: int = Field(description="Records delivered to consumers.")
    in_flight: int
    by_side: dict[str, int] = Field(
        description="Calls by the side an outcome names: ok, client, broker, provider."
    )
    by_outcome: dict[str, int]


class ProviderLatency(BaseModel):
    code: str
    calls: int
    errors: int = Field(description="Calls that failed on the provider's side.")
    mean_ms: float
    slowest_ms: float


class BreakerOut(BaseModel):
    provider: str
    state: str = Field(description="open | half_open")
    retry_after_s: float


class ReviewsDue(BaseModel):
    pending: int
    due_soon: int = Field(description="Pending, deadline within the next two days.")
    overdue: int


class GrantsExpiring(BaseModel):
    active: int
    expiring: int = Field(description="Active, last day within the next 30 days.")
    expired: int


class OperationsOut(BaseModel):
    """The platform's operations at a glance (运行监测), for the operator's dashboard."""

    at: dt.datetime = Field(description="Wall-clock time of this reading (for rates).")
    platform_now: dt.datetime
    day: dt.date = Field(description="The platform's day (Beijing time).")
    today: Volume
    total: Volume
    days: list[DayVolume] = Field(description="Records per platform day, last 14 days.")
    by_provider: list[UnitVolume] = Field(description="Today's top providers by records.")
    by_consumer: list[UnitVolume] = Field(description="Today's top consumers by records.")
    by_group: dict[str, Volume] = Field(
        description="Today by catalog group: basic, departmental, special."
    )
    broker: BrokerNow
    slowest_providers: list[ProviderLatency]
    open_breakers: list[BreakerOut]
    reviews: ReviewsDue
    grants: GrantsExpiring
    load_run: LoadRunOut | None = Field(
        default=None,
        description="The load run `exchange load` reported last, if within the last day.",
    )
