"""A topic's versions: what a change altered, field by field, and each version kept.

Every change and retirement opens a version with the fields it altered (items compared by
their field) and the whole metadata as it stood (:class:`TopicVersion`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.catalog.models import Topic, TopicVersion
from exchange.catalog.schemas import TopicBase, TopicVersionOut
from exchange.errors import NotFound

__all__ = ["TRACKED", "diff", "history", "version_snapshot"]

# Fields whose change is recorded and that make up the registrant's metadata.
TRACKED = tuple(TopicBase.model_fields)


def _diff_items(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    before = {it["field"]: it for it in old}
    after = {it["field"]: it for it in new}
    out: dict[str, Any] = {}
    added = [f for f in after if f not in before]
    removed = [f for f in before if f not in after]
    changed = {
        f: {
            k: {"from": before[f].get(k), "to": v}
            for k, v in after[f].items()
            if before[f].get(k) != v
        }
        for f in after
        if f in before and before[f] != after[f]
    }
    if added:
        out["added"] = added
    if removed:
        out["removed"] = removed
    if changed:
        out["changed"] = changed
    return out


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Field-level difference of two metadata dumps; items are compared by their field."""
    changes: dict[str, Any] = {}
    for key in TRACKED:
        if old.get(key) == new.get(key):
            continue
        if key == "items":
            changes["items"] = _diff_items(old.get("items", []), new.get("items", []))
        else:
            changes[key] = {"from": old.get(key), "to": new.get(key)}
    return changes


def history(session: Session, topic: Topic) -> list[TopicVersionOut]:
    rows = session.scalars(
        select(TopicVersion).where(TopicVersion.topic_id == topic.id).order_by(TopicVersion.version)
    )
    return [
        TopicVersionOut(
            version=r.version,
            changed_at=r.changed_at,
            changed_by=r.changed_by,
            reason=r.reason,
            changes=r.changes,
        )
        for r in rows
    ]


def version_snapshot(session: Session, topic: Topic, version: int) -> dict[str, Any]:
    row = session.scalar(
        select(TopicVersion).where(
            TopicVersion.topic_id == topic.id, TopicVersion.version == version
        )
    )
    if row is None:
        raise NotFound(
            f"topic {topic.resource_code} has no version {version} (latest {topic.version})",
            code="version_not_found",
        )
    return row.snapshot
