"""Shapes of applications, reviews, disputes, grants and checks (pydantic only)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from exchange.catalog.schemas import UsageScope
from exchange.fields import Text

RESOURCE_CODE_PATTERN = r"^[123]\d{8}/\d{6}$"
FIELD_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
UNIT_CODE_PATTERN = r"^[a-z][a-z0-9_-]{1,31}$"

ResourceCode = Annotated[str, StringConstraints(pattern=RESOURCE_CODE_PATTERN)]
ItemField = Annotated[str, StringConstraints(pattern=FIELD_PATTERN)]
UnitCode = Annotated[str, StringConstraints(pattern=UNIT_CODE_PATTERN)]
Reason = Annotated[Text, StringConstraints(strip_whitespace=True, max_length=2000)]


# The declared purpose is one of the catalog's usage scopes (作为行政依据 / 工作参考 /
# 数据校核 / 业务协同): one enum, so the two can be compared.
PurposeScope = UsageScope


class Delivery(StrEnum):
    """接口查询 / 批量交换 / 订阅."""

    interface = "interface"
    bulk = "bulk"
    subscription = "subscription"


class ApplicationStatus(StrEnum):
    """待审核 → 通过 / 部分通过 / 退回; a dispute reopens a refusal until decided."""

    pending_review = "pending_review"
    approved = "approved"
    partially_approved = "partially_approved"
    returned = "returned"
    disputed = "disputed"


class ItemOutcome(StrEnum):
    pending = "pending"
    granted = "granted"
    refused = "refused"  # not shared: refused at once, citing the legal basis
    rejected = "rejected"  # conditional: the provider (or the operator) said no


class ReasonCode(StrEnum):
    """Why an item has its outcome: a stable code the portal and the CLI render in their
    own language; ``reason`` beside it is only the text a person (or the catalog) gave."""

    unconditional = "unconditional"  # granted at once: the catalog shares it unconditionally
    conditional = "conditional"  # waits for the provider; reason = the catalog's conditions
    not_shared = "not_shared"  # refused at once; reason = the legal basis
    approved = "approved"  # granted by the provider's review
    left_out = "left_out"  # the provider approved the others; reason = the reviewer's
    rejected = "rejected"  # the provider rejected; reason = the reviewer's
    dispute_granted = "dispute_granted"  # granted by the operator's decision on a dispute
    topic_retired = "topic_retired"  # the topic was retired while pending
    removed_from_catalog = "removed_from_catalog"  # the catalog dropped the item
    #: an unconditional item applied for by a unit that is not a government department
    #: (a bank, a utility): unconditional sharing is for departments; the provider reviews
    not_government = "not_government"


#: the code an outcome reads as when nothing more precise is known (a peer platform's
#: decision naming a code this platform does not know)
PLAIN_CODE = {
    ItemOutcome.pending: ReasonCode.conditional,
    ItemOutcome.granted: ReasonCode.approved,
    ItemOutcome.refused: ReasonCode.not_shared,
    ItemOutcome.rejected: ReasonCode.rejected,
}


class GrantStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    revoked = "revoked"
    expired = "expired"


class DisputeDecision(StrEnum):
    grant = "grant"
    partial = "partial"
    uphold = "uphold"


class Purpose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: PurposeScope
    text: Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ApplicationCreate(BaseModel):
    """Body of ``POST /api/v1/applications``."""

    model_config = ConfigDict(extra="forbid")

    topic: ResourceCode = Field(description="Resource code of the topic, e.g. 101001001/000001.")
    items: Annotated[list[ItemField], Field(min_length=1, max_length=500)] = Field(
        description="The data items needed (their `field` names)."
    )
    purpose: Purpose
    legal_function: Annotated[
        Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
    ] = Field(description="The statute or duty the consumer relies on (依职能共享).")
    valid_from: dt.date | None = Field(
        default=None, description="First valid day (Beijing); defaults to today."
    )
    valid_until: dt.date = Field(description="Last valid day (Beijing), inclusive.")
    daily_quota: Annotated[int, Field(ge=1, le=1_000_000_000)] | None = Field(
        default=None, description="Records per day; omit for unlimited."
    )
    delivery: Delivery = Delivery.interface
    consumer: UnitCode | None = Field(
        default=None, description="Only the operator may apply on a department's behalf."
    )

    @field_validator("items")
    @classmethod
    def _unique(cls, items: list[str]) -> list[str]:
        seen: set[str] = set()
        for item in items:
            if item in seen:
                raise ValueError(f"item {item!r} is listed twice")
            seen.add(item)
        return items


class ItemDecisionOut(BaseModel):
    field: str
    sharing_type: str
    outcome: ItemOutcome
    reason_code: ReasonCode = Field(description="Why: a stable code, rendered by clients")
    reason: str | None = Field(
        default=None, description="The text given: legal basis, conditions or reviewer's reason"
    )


class EventOut(BaseModel):
    at: dt.datetime
    actor: str
    kind: str
    reason: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class ApplicationOut(BaseModel):
    id: int
    consumer: str
    provider: str
    topic: str
    topic_name: str
    items: list[str]
    decisions: list[ItemDecisionOut]
    purpose: Purpose
    legal_function: str
    valid_from: dt.date
    valid_until: dt.date
    daily_quota: int | None
    delivery: Delivery
    status: ApplicationStatus
    submitted_at: dt.datetime
    review_deadline: dt.datetime | None = Field(
        description="When the provider must have answered (conditional items only)."
    )
    overdue: bool = Field(description="Still pending review after its deadline.")
    reviewed_at: dt.datetime | None
    reviewed_by: str | None
    review_reason: str | None
    grant_id: int | None
    forwarded_to: str | None = Field(
        default=None,
        description="The peer platform (city or province) whose provider department "
        "reviews this application: a topic mounted from there. Its decision is mirrored.",
    )
    on_behalf_of: str | None = Field(
        default=None,
        description="The peer platform's department this application was forwarded for "
        "(the consumer is then the peer platform's unit).",
    )
    dispute_id: int | None = None
    events: list[EventOut] | None = None


class ApplicationPage(BaseModel):
    total: int
    items: list[ApplicationOut]


class Approve(BaseModel):
    """Body of ``/approve``: omit a field to approve it as requested."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[ItemField], Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="Pending items approved; the rest are rejected."
    )
    valid_until: dt.date | None = Field(default=None, description="No later than requested.")
    daily_quota: Annotated[int, Field(ge=1, le=1_000_000_000)] | None = Field(
        default=None, description="No more than requested."
    )
    reason: Reason = Field(default="", description="Required when some items are left out.")


class Reject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(default="", description="Why (mandatory: a refusal must give it).")


class DisputeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(default="", description="Why the consumer needs the refused data.")
    items: Annotated[list[ItemField], Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="Refused items disputed; defaults to all refused ones."
    )


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class DisputeDecide(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: DisputeDecision
    reason: Reason = Field(default="", description="Mandatory.")
    items: Annotated[list[ItemField], Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="For `partial`: the disputed items granted."
    )


class MessageOut(BaseModel):
    at: dt.datetime
    author: str
    body: str


class DisputeRecord(BaseModel):
    """A dispute's own columns, named as on its row: read with ``from_attributes``."""

    id: int
    application_id: int
    consumer: str
    provider: str
    items: list[str]
    status: str
    opened_at: dt.datetime
    reason: str
    decision: DisputeDecision | None
    decided_items: list[str] | None
    decided_at: dt.datetime | None
    decided_by: str | None
    decision_reason: str | None


class DisputeOut(DisputeRecord):
    messages: list[MessageOut]


class GrantOut(BaseModel):
    id: int
    consumer: str
    provider: str
    topic: str
    items: list[str]
    purpose: Purpose
    legal_function: str
    delivery: Delivery
    valid_from: dt.date
    valid_until: dt.date
    daily_quota: int | None
    status: GrantStatus
    status_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class GrantPage(BaseModel):
    total: int
    items: list[GrantOut]


class Revoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(default="", description="Mandatory.")


class CheckRequest(BaseModel):
    """Body of ``POST /api/v1/authz/check``."""

    model_config = ConfigDict(extra="forbid")

    consumer: UnitCode
    topic: ResourceCode
    items: Annotated[list[ItemField], Field(max_length=500)] | None = Field(
        default=None, description="Items wanted; omit (or send []) for every granted item."
    )
    records: Annotated[int, Field(ge=0, le=1_000_000_000)] = Field(
        default=1, description="Records this exchange would return (counts against quota)."
    )


class CheckResult(BaseModel):
    allowed: bool
    reason: str
    grant_id: int | None
    items: list[str]
    remaining_quota: int | None
