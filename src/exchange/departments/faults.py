"""Fault profiles: latency, errors, hangs, outages, malformed bodies and over-sharing.

A profile is layered: the department definition's defaults, the operator's runtime override
for the department, the topic definition's own settings, then the operator's runtime override
for the topic. Later layers replace only the fields they set. The effective profile of each
topic is recomputed when a layer changes, so the request path reads one object.
"""

from __future__ import annotations

import random
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FaultOutcome", "FaultPatch", "FaultProfile", "draw_fault", "merge"]

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Millis = Annotated[float, Field(ge=0.0, le=60_000.0)]
ErrorStatus = Literal[500, 502, 504]

#: Longest a hang lasts: far past any sane caller timeout, yet a test run still ends.
MAX_HANG_SECONDS = 60.0


class FaultProfile(BaseModel):
    """The complete behaviour of a topic's endpoints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: Millis = Field(default=0.0, description="Fixed delay before answering.")
    jitter_ms: Millis = Field(default=0.0, description="Extra uniform random delay, 0..jitter.")
    error_rate: Rate = Field(default=0.0, description="Share of requests failing with 5xx.")
    error_status: ErrorStatus = Field(default=500, description="Status of injected errors.")
    hang_rate: Rate = Field(default=0.0, description="Share of requests that hang.")
    hang_seconds: Annotated[float, Field(gt=0.0, le=MAX_HANG_SECONDS)] = Field(
        default=MAX_HANG_SECONDS, description="How long a hang lasts (cut short on disconnect)."
    )
    outage: bool = Field(default=False, description="Answer every request with 503.")
    malformed_rate: Rate = Field(
        default=0.0, description="Share of successful answers sent as truncated JSON."
    )
    overshare: bool = Field(
        default=False, description="Add an undeclared field to every record (tests filtering)."
    )
    noise_rate: Rate = Field(
        default=0.0,
        description=(
            "Share of records served with a data-quality defect (a name spelled "
            "differently, a death recorded in error): exchange.departments.noise."
        ),
    )

    @property
    def active(self) -> bool:
        """Whether anything but a plain, instant answer can happen."""
        return self != _CLEAN


_CLEAN = FaultProfile()


class FaultPatch(BaseModel):
    """A partial profile: only the fields given replace the layer below."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: Millis | None = None
    jitter_ms: Millis | None = None
    error_rate: Rate | None = None
    error_status: ErrorStatus | None = None
    hang_rate: Rate | None = None
    hang_seconds: Annotated[float, Field(gt=0.0, le=MAX_HANG_SECONDS)] | None = None
    outage: bool | None = None
    malformed_rate: Rate | None = None
    overshare: bool | None = None
    noise_rate: Rate | None = None

    def given(self) -> dict[str, Any]:
        """The fields this patch sets."""
        return self.model_dump(exclude_none=True)

    def combined(self, other: FaultPatch) -> FaultPatch:
        """This patch with ``other``'s fields laid on top."""
        return FaultPatch.model_validate({**self.given(), **other.given()})


def merge(base: FaultProfile, *patches: FaultPatch | None) -> FaultProfile:
    """``base`` with each patch applied in order."""
    values = base.model_dump()
    for patch in patches:
        if patch is not None:
            values.update(patch.given())
    return FaultProfile.model_validate(values)


FaultOutcome = Literal["ok", "outage", "error", "hang", "malformed"]


def draw_fault(
    profile: FaultProfile, rng: random.Random | None = None
) -> tuple[FaultOutcome, float]:
    """Draw what happens to one request under ``profile``, and the delay (seconds) before it
    happens (the platform's access decision is :func:`exchange.authz.policy.decide`)."""
    rand = (rng or random).random
    delay = profile.latency_ms / 1000.0
    if profile.jitter_ms:
        delay += rand() * profile.jitter_ms / 1000.0
    if profile.outage:
        return "outage", delay
    if profile.hang_rate and rand() < profile.hang_rate:
        return "hang", profile.hang_seconds
    if profile.error_rate and rand() < profile.error_rate:
        return "error", delay
    if profile.malformed_rate and rand() < profile.malformed_rate:
        return "malformed", delay
    return "ok", delay
