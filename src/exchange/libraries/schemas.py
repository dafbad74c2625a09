"""Request and answer bodies of ``/api/v1/libraries`` (pydantic only)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from exchange.fields import Text

Key = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")]


class LibraryCode(StrEnum):
    person = "person"
    enterprise = "enterprise"


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: Annotated[list[Key], Field(min_length=1, max_length=100)] = Field(
        description="ID numbers (person) or unified social credit codes (enterprise)."
    )


class ElementOut(BaseModel):
    value: Any = Field(description="The element's value as its source holds it.")
    provider: str = Field(description="The source department (一数一源).")
    resource_code: str = Field(description="The source topic.")
    topic: str
    refreshed_at: dt.datetime = Field(description="When the source's record was last gathered.")


class RecordOut(BaseModel):
    key: str
    elements: dict[str, ElementOut]


class InvalidKey(BaseModel):
    key: str
    message: str


class LookupAnswer(BaseModel):
    request_id: str
    library: LibraryCode
    records: list[RecordOut]
    not_found: list[str]
    invalid: list[InvalidKey]
    withheld: list[str] = Field(
        description="Elements this unit holds no grant for: apply to their source topic to "
        "receive them."
    )
    withheld_reasons: dict[str, str] = Field(
        default_factory=dict,
        description="Why each withheld element is: conditional (有条件共享: the provider "
        "grants it on application), or not_government (an unconditional element, shared "
        "without application with government departments only: a bank, an insurer or a "
        "utility applies, and the provider reviews).",
    )


class SourceOut(BaseModel):
    id: int
    resource_code: str
    provider: str
    topic: str
    role: str = Field(description="source: serves elements; witness: only checked against")
    state: str = Field(
        description="new, gathering, done, awaiting_grant, error or withdrawn (no longer in "
        "the catalog)"
    )
    elements: list[str]
    checked_elements: list[str]
    watermark: int = Field(description="Next export offset: where the next pass starts.")
    total_rows: int | None
    gathered: int = Field(description="Records gathered from this source, all passes.")
    pass_gathered: int
    removed: int = Field(
        description="Records removed as no longer exported by this source, all full passes "
        "(a full pass that read the source to its end removes what it did not see)."
    )
    pass_removed: int = Field(description="Records removed by the last full pass's sweep.")
    passes: int
    application_id: int | None
    last_error: str | None
    refreshed_at: dt.datetime | None
    subscription_id: int | None = Field(
        description="The library unit's subscription to the source's change events."
    )
    event_cursor: int = Field(description="The last change event applied.")
    events_applied: int


class ConflictCounts(BaseModel):
    open: int
    resolved: int
    by_kind: dict[str, dict[str, int]]


class LibraryOut(BaseModel):
    library: LibraryCode
    name: str
    key: str
    sources: list[SourceOut]
    gathered: int
    removed: int = Field(description="Records removed as gone from their sources, all passes.")
    conflicts: ConflictCounts


class PassOut(BaseModel):
    full: bool
    started_at: dt.datetime
    finished_at: dt.datetime | None
    gathered: dict[str, int]
    total: int
    removed: dict[str, int] = Field(
        description="Records removed as no longer at their source, by source: only sources "
        "whose full pass read the export to its end (a pass cut short removes nothing)."
    )
    total_removed: int
    skipped: dict[str, str]
    errors: dict[str, str]
    events: dict[str, int] = Field(description="Change events applied, by source.")
    conflicts: dict[str, int]
    seconds: float
    check_seconds: float = Field(description="Of seconds, the quality check after gathering.")


class GatherStatus(BaseModel):
    running: bool
    current: PassOut | None
    last: PassOut | None
    libraries: list[LibraryOut]


class GatherRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    library: LibraryCode | None = Field(default=None, description="Omit for both libraries.")
    full: bool = Field(default=False, description="true: read every source again from the start.")


class ConflictOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    library: str
    subject: str
    kind: str = Field(description="mismatch or deceased_insured")
    element: str
    provider: str = Field(description="The element's source department.")
    value: str | None
    other_provider: str
    other_value: str | None
    status: str
    found_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by: str | None
    resolution: str | None = Field(
        description="corrected, source_confirmed or dismissed (a department or the operator); "
        "cleared (the sources agree again) or vanished (a source no longer holds the record) "
        "when the library closed it"
    )
    note: str | None


class ConflictPage(BaseModel):
    items: list[ConflictOut]
    total: int
    offset: int
    limit: int


class Resolution(StrEnum):
    corrected = "corrected"
    source_confirmed = "source_confirmed"
    dismissed = "dismissed"


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: Resolution = Field(
        description="corrected: the wrong record was fixed at its source; source_confirmed: "
        "the source's value stands; dismissed: not an error."
    )
    note: Annotated[Text, StringConstraints(max_length=2000)] | None = None
