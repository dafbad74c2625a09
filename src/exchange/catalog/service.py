"""Catalog rules: register, change (versioned), retire, read; the face other packages import.

One datum, one source lives in :mod:`exchange.catalog.sources`, the change feed in
:mod:`exchange.catalog.feed`, versions and their differences in
:mod:`exchange.catalog.versions`, the refusals in :mod:`exchange.catalog.errors`; this
module re-exports what other packages use of them.

Every write appends to the change feed in the same transaction, so a subscriber that
follows ``/api/v1/catalog/changes`` never sees a change the catalog does not have.
Other domains' reactions (the authorization service's) run inside that transaction too
(:mod:`exchange.db.reactions`): a retirement that suspends grants happens whole or not at
all. Caches learn of the change once it commits (:mod:`exchange.db.freshness`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from exchange.authn import Principal
from exchange.catalog.errors import SourceConflict, TopicNotFound, TopicRetired
from exchange.catalog.feed import changes_after, last_cursor, record
from exchange.catalog.models import ElementSource, SequenceCounter, Topic, TopicVersion
from exchange.catalog.schemas import (
    TopicBase,
    TopicChange,
    TopicCreate,
    TopicOut,
    TopicStatus,
    TopicVersionOut,
    classification_of,
)
from exchange.catalog.sources import claim_sources, element_sources
from exchange.catalog.versions import diff, history, version_snapshot
from exchange.db.freshness import announce
from exchange.db.reactions import emit
from exchange.errors import Conflict, ValidationFailed
from exchange.members.models import Department

__all__ = [
    "CatalogEvent",
    "SourceConflict",
    "TopicNotFound",
    "TopicRetired",
    "change",
    "changes_after",
    "diff",
    "element_sources",
    "get_topic",
    "get_topic_by_code",
    "history",
    "last_cursor",
    "register",
    "retire",
    "stats",
    "to_out",
    "topic_document",
    "version_snapshot",
]


@dataclass(frozen=True)
class CatalogEvent:
    """What other domains react to: a topic was registered, changed or retired."""

    kind: str  # registered | changed | retired
    topic: Topic
    removed_items: frozenset[str] = frozenset()
    changes: dict[str, Any] = field(default_factory=dict)


def _publish(session: Session, event: CatalogEvent) -> None:
    """Let other domains react in this transaction; announce the change for after commit."""
    emit(session, event)
    announce(session, "catalog")


def _search_text(spec: TopicBase) -> str:
    """What keyword search looks in: name, abstract, item names and fields, tags."""
    parts: list[str] = [spec.name, spec.abstract, *spec.tags]
    for item in spec.items:
        parts.extend((item.name, item.field, item.description))
    return "\n".join(p for p in parts if p).lower()


def _spec_of(topic: Topic) -> TopicBase:
    return TopicBase.model_validate(topic.data)


def _apply_spec(topic: Topic, spec: TopicBase) -> None:
    topic.data = spec.model_dump(mode="json")
    topic.name = spec.name
    topic.slug = spec.slug
    topic.group = spec.group.value
    topic.resource_type = spec.resource_type.value
    topic.sharing_type = spec.sharing.type.value
    topic.search_text = _search_text(spec)


def _next_sequence(session: Session, category: str) -> str:
    counter = session.get(SequenceCounter, category, with_for_update=True)
    if counter is None:
        counter = SequenceCounter(category=category, last=0)
        session.add(counter)
    counter.last += 1
    if counter.last > 999_999:
        raise Conflict(
            f"category {category} has no free sequence number", code="sequence_exhausted"
        )
    return f"{counter.last:06d}"


def _check_provider(session: Session, spec: TopicBase, by: Principal) -> Department:
    dept = session.get(Department, spec.provider)
    if dept is None:
        raise ValidationFailed(
            f"provider: no department with code {spec.provider!r}",
            field="provider",
            code="unknown_provider",
        )
    by.require(spec.provider)
    return dept


def _check_related(session: Session, codes: Sequence[str]) -> None:
    if not codes:
        return
    found = set(session.scalars(select(Topic.resource_code).where(Topic.resource_code.in_(codes))))
    missing = [c for c in codes if c not in found]
    if missing:
        raise ValidationFailed(
            f"related: unknown resource code(s) {', '.join(missing)}",
            field="related",
            code="unknown_related",
        )


def register(
    session: Session,
    spec: TopicCreate,
    by: Principal,
    now: dt.datetime,
    *,
    check_related: bool = True,
) -> Topic:
    """注册: assign the resource code, claim element sources, open version 1."""
    _check_provider(session, spec, by)
    if check_related:
        _check_related(session, spec.related)
    if spec.slug and session.scalar(select(Topic.id).where(Topic.slug == spec.slug)):
        raise Conflict(f"slug {spec.slug!r} is taken by another topic", code="slug_taken")
    if spec.published_on is None:
        spec = spec.model_copy(update={"published_on": now.date()})
    seq = _next_sequence(session, spec.category)
    topic = Topic(
        category=spec.category,
        sequence=seq,
        resource_code=f"{spec.category}/{seq}",
        provider=spec.provider,
        classification=classification_of(spec.category).value,
        status=TopicStatus.published.value,
        version=1,
        published_on=spec.published_on,
        created_at=now,
        updated_at=now,
    )
    _apply_spec(topic, spec)
    session.add(topic)
    session.flush()
    claim_sources(session, topic, spec.items)
    snapshot = dict(topic.data)
    session.add(
        TopicVersion(
            topic_id=topic.id,
            version=1,
            changed_at=now,
            changed_by=by.code,
            reason="registered",
            changes={},
            snapshot=snapshot,
        )
    )
    record(session, "registered", topic, by.code, {}, now)
    session.flush()
    _publish(session, CatalogEvent("registered", topic))
    return topic


def get_topic(session: Session, front: str, seq: str) -> Topic:
    topic = session.scalar(select(Topic).where(Topic.category == front, Topic.sequence == seq))
    if topic is None:
        raise TopicNotFound(f"no topic with resource code {front}/{seq}")
    return topic


def get_topic_by_code(session: Session, resource_code: str) -> Topic:
    front, _, seq = resource_code.partition("/")
    return get_topic(session, front, seq)


def change(
    session: Session,
    topic: Topic,
    patch: TopicChange,
    by: Principal,
    now: dt.datetime,
) -> Topic:
    """变更: apply a partial change as a new version and record what changed."""
    by.require(topic.provider)
    if topic.status == TopicStatus.retired.value:
        raise TopicRetired(f"topic {topic.resource_code} is retired and can no longer change")
    updates = patch.model_dump(exclude_unset=True, exclude={"reason"})
    if not updates:
        raise ValidationFailed("the change is empty: send at least one field", code="empty_change")
    merged = {**topic.data, **patch.model_dump(mode="json", exclude_unset=True, exclude={"reason"})}
    try:
        spec = TopicBase.model_validate(merged)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise ValidationFailed(
            f"the change breaks a catalog rule: {exc}", code="invalid_change"
        ) from exc
    if "related" in updates:
        _check_related(session, spec.related)
    changes = diff(topic.data, spec.model_dump(mode="json"))
    if not changes:
        raise ValidationFailed("the change does not alter the topic", code="empty_change")
    removed = frozenset(changes.get("items", {}).get("removed", []))
    claim_sources(session, topic, spec.items)
    _apply_spec(topic, spec)
    topic.version += 1
    topic.updated_at = now
    session.add(
        TopicVersion(
            topic_id=topic.id,
            version=topic.version,
            changed_at=now,
            changed_by=by.code,
            reason=patch.reason,
            changes=changes,
            snapshot=dict(topic.data),
        )
    )
    record(session, "changed", topic, by.code, changes, now)
    session.flush()
    _publish(session, CatalogEvent("changed", topic, removed, changes))
    return topic


def retire(
    session: Session,
    topic: Topic,
    reason: str,
    by: Principal,
    now: dt.datetime,
) -> Topic:
    """废置: the topic stays readable but is closed to new grants; its sources are freed."""
    by.require(topic.provider)
    if topic.status == TopicStatus.retired.value:
        raise TopicRetired(f"topic {topic.resource_code} is already retired")
    topic.status = TopicStatus.retired.value
    topic.retired_at = now
    topic.retire_reason = reason
    topic.version += 1
    topic.updated_at = now
    session.execute(delete(ElementSource).where(ElementSource.topic_id == topic.id))
    changes = {"status": {"from": "published", "to": "retired"}, "reason": reason}
    session.add(
        TopicVersion(
            topic_id=topic.id,
            version=topic.version,
            changed_at=now,
            changed_by=by.code,
            reason=reason,
            changes=changes,
            snapshot=dict(topic.data),
        )
    )
    record(session, "retired", topic, by.code, changes, now)
    session.flush()
    _publish(session, CatalogEvent("retired", topic, changes=changes))
    return topic


def to_out(
    topic: Topic, provider: Department | None, *, versions: list[TopicVersionOut] | None = None
) -> TopicOut:
    return TopicOut.model_validate({**topic_document(topic, provider), "history": versions})


def topic_document(topic: Topic, provider: Department | None) -> dict[str, Any]:
    """The same document as :class:`TopicOut`, built without validation for the hot path.

    The stored metadata was validated on the way in; re-validating 20 topics per search page
    cost more than the search itself.
    """
    return {
        **topic.data,
        "resource_code": topic.resource_code,
        "sequence": topic.sequence,
        "classification": topic.classification,
        "provider_name": provider.name if provider else topic.provider,
        "provider_code": (provider.credit_code or "") if provider else "",
        "status": topic.status,
        "version": topic.version,
        "created_at": topic.created_at,
        "updated_at": topic.updated_at,
        "retired_at": topic.retired_at,
        "retire_reason": topic.retire_reason,
        "history": None,
    }


def stats(session: Session) -> dict[str, Any]:
    out: dict[str, Any] = {"total": session.scalar(select(func.count(Topic.id))) or 0}
    for column in ("status", "group", "classification", "sharing_type", "resource_type"):
        col = getattr(Topic, column)
        rows = session.execute(select(col, func.count(Topic.id)).group_by(col))
        out[f"by_{column}"] = {row[0]: row[1] for row in rows}
    out["providers"] = session.scalar(select(func.count(func.distinct(Topic.provider)))) or 0
    return out
