"""Wire shapes of distribution: change events in, subscriptions, delivered events out.

Imports only pydantic (the SDK and load generators use these).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, StringConstraints, field_validator

#: Most change events one call may publish.
MAX_EVENTS = 1_000
#: A change's kind: the generic created/updated/deleted or a domain kind such as ``birth``.
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
RESOURCE_CODE_PATTERN = r"^[123]\d{8}/\d{6}$"
FIELD_NAME = Annotated[str, StringConstraints(min_length=1, max_length=64)]

Key = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: The source's own event id: printable ASCII without spaces (a UUID, ``gaj-2026-000123`` …).
SourceEventId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
]
Kind = Annotated[str, StringConstraints(pattern=KIND_PATTERN)]


class ChangeKind(StrEnum):
    """The generic kinds; a provider may use a domain kind instead (``birth``, ``death``…)."""

    created = "created"
    updated = "updated"
    deleted = "deleted"


class ChangeEvent(BaseModel):
    """One record-level change at the source."""

    model_config = ConfigDict(extra="forbid")

    key: Key = Field(description="The record's key (the topic's key item), e.g. an ID number.")
    kind: Kind = Field(
        description="created / updated / deleted, or a domain kind such as birth, death, "
        "marriage, deregistration (lower-case, digits and _, at most 32 characters)."
    )
    changed_at: dt.datetime = Field(
        description="When the change happened at the source (ISO 8601 with a UTC offset)."
    )
    record: dict[str, Any] | None = Field(
        default=None,
        description="The record after the change, items of the topic only (may be omitted "
        "for a deletion).",
    )
    event_id: SourceEventId | None = Field(
        default=None,
        description="Your own id of this change, the idempotency key of a publish: an "
        "event whose id the topic already holds is not written again, its exchange id is "
        "answered (a call retried after a timeout creates no duplicate). Ids are "
        "remembered while the event is held (see the distribution retention).",
    )

    @field_validator("changed_at")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("changed_at needs a UTC offset (e.g. 2026-12-01T08:00:00+08:00)")
        return value


class ChangesIn(BaseModel):
    """``POST /api/v1/exchange/{front}/{seq}/changes``."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[ChangeEvent], Field(min_length=1, max_length=MAX_EVENTS)]


class ChangesAccepted(BaseModel):
    resource_code: str
    #: events acknowledged (new and already held alike)
    accepted: int
    #: ids of the accepted events, in the order sent (the consumer's idempotency keys)
    event_ids: list[int]
    #: events whose ``event_id`` the topic already held: answered with their earlier ids,
    #: not written again
    duplicates: int = 0


# --- subscriptions -------------------------------------------------------------------------


class Source(StrEnum):
    topic = "topic"
    catalog = "catalog"


class DeliveryMode(StrEnum):
    push = "push"
    pull = "pull"


class SubscriptionStatus(StrEnum):
    active = "active"
    suspended = "suspended"


class Filter(BaseModel):
    """Which changes a subscription wants; every condition given must hold."""

    model_config = ConfigDict(extra="forbid")

    keys: Annotated[list[Key], Field(max_length=10_000)] | None = Field(
        default=None, description="Only these record keys."
    )
    key_prefixes: Annotated[list[Key], Field(max_length=100)] | None = Field(
        default=None,
        description="Only keys starting with one of these, e.g. a district's area code "
        "(440104) for ID numbers.",
    )
    where: dict[FIELD_NAME, Annotated[list[Any], Field(min_length=1, max_length=1000)]] | None = (
        Field(
            default=None,
            description='item → accepted values (e.g. {"district_code": ["440104"]}); '
            "items must be granted to the subscriber.",
        )
    )
    kinds: Annotated[list[Kind], Field(max_length=50)] | None = Field(
        default=None, description="Only these kinds of change."
    )
    topics: Annotated[list[str], Field(max_length=1000)] | None = Field(
        default=None, description="Catalog subscriptions: only these resource codes."
    )
    providers: Annotated[list[str], Field(max_length=200)] | None = Field(
        default=None, description="Catalog subscriptions: only these providers' topics."
    )


class SubscriptionCreate(BaseModel):
    """A new subscription: a topic's record changes, or the catalog's changes."""

    model_config = ConfigDict(extra="forbid")

    source: Source = Source.topic
    topic: Annotated[str, StringConstraints(pattern=RESOURCE_CODE_PATTERN)] | None = Field(
        default=None, description="Resource code of the topic (source=topic)."
    )
    items: Annotated[list[FIELD_NAME], Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="Items to receive (default: every granted item)."
    )
    filter: Filter = Field(default_factory=Filter)
    delivery: DeliveryMode
    endpoint: AnyUrl | None = Field(
        default=None, description="push: the http(s) URL the exchange POSTs batches to."
    )
    from_cursor: Annotated[int, Field(ge=0, le=2**62)] | None = Field(
        default=None,
        description="Start after this event id (0: every event still held); default: only "
        "changes accepted from now on.",
    )


class SubscriptionOut(BaseModel):
    id: int
    consumer: str
    source: Source
    topic: str | None
    provider: str | None
    items: list[str]
    filter: Filter
    delivery: DeliveryMode
    endpoint: str | None
    status: SubscriptionStatus
    cursor: int
    created_at: dt.datetime
    updated_at: dt.datetime
    stats: SubscriptionStats


class SubscriptionStats(BaseModel):
    """How the subscription is doing (events)."""

    backlog: int = Field(description="Events after the cursor, before the filter.")
    delivered: int
    retried: int
    dead_lettered: int
    dead_letters: int = Field(description="Dead letters now held (not yet retried/discarded).")
    attempts: int = Field(description="Failed attempts of the batch being retried now.")
    next_attempt_at: dt.datetime | None
    last_error: str | None
    last_delivered_at: dt.datetime | None
    last_lag_ms: int | None = Field(
        description="Source change → delivery of the newest event last delivered (ms)."
    )
    blocked: str | None = Field(
        default=None, description="Why nothing is delivered now (a grant denial reason)."
    )
    replay_from: int = Field(
        default=0,
        description="The replay window: the oldest cursor a replay can start from (events "
        "at or below it were pruned after the retention; 0: none were).",
    )


SubscriptionOut.model_rebuild()


class SubscriptionPage(BaseModel):
    total: int
    items: list[SubscriptionOut]


class Replay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: Annotated[int, Field(ge=0, le=2**62)] = Field(
        description="Deliver again every event after this id that is still held."
    )


# --- delivered events ---------------------------------------------------------------------


class DeliveredEvent(BaseModel):
    """One event as a subscriber receives it (push body or pull page)."""

    id: int = Field(description="Event id: the idempotency key (and the feed cursor).")
    topic: str
    key: str
    kind: str
    changed_at: dt.datetime
    record: dict[str, Any] | None = Field(description="Only the subscription's granted items.")


class Delivery(BaseModel):
    """The body of a push (signed; see the README's "Subscriptions")."""

    subscription: int
    consumer: str
    events: list[DeliveredEvent]


class FeedPage(BaseModel):
    """A pull page: events after ``cursor``; ask again from ``next_cursor``."""

    subscription: int
    cursor: int
    next_cursor: int
    events: list[DeliveredEvent]
    more: bool = Field(description="True when more events wait after next_cursor.")


class DeadLetterOut(BaseModel):
    id: int
    event_id: int
    attempts: int
    error: str
    dead_at: dt.datetime
    status: str


class DeadLetterPage(BaseModel):
    total: int
    items: list[DeadLetterOut]


class DeadLetterSelection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: Annotated[list[Annotated[int, Field(ge=1, le=2**62)]], Field(max_length=10_000)] | None = (
        Field(default=None, description="Dead-letter ids (default: every one).")
    )


class DeadLetterCount(BaseModel):
    subscription: int
    count: int
