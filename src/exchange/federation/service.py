"""Publishing topics to the peer platform, and mounting the peer's in this catalog.

The publishing side keeps a feed (:class:`~exchange.federation.models.FeedEntry`): one
entry per publication, change, withdrawal and retirement of a published topic, each with
the topic's whole document. The mounting side pulls the feed from its cursor and applies
each entry in one transaction with the cursor, so a platform that was down resumes where
it stopped, and applying an entry twice changes nothing: mounts are keyed by the peer's
resource code, never duplicated.

A mounted topic is registered in this catalog under a code of this catalog's own scheme
(its category, the next sequence number here) with the peer platform's unit as provider
and ``/topics/{front}/{seq}`` (the peer's code) as API path: the broker routes its lookups
to the peer like to any provider. Its items are never a source here (一数一源: the source
is the peer's department).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.authn import OPERATOR, Principal
from exchange.catalog import service as catalog_service
from exchange.catalog.models import Topic
from exchange.catalog.schemas import TopicChange, TopicCreate
from exchange.db.feeds import Feed, in_cursor_order
from exchange.db.freshness import announce
from exchange.errors import Conflict, NotFound, ValidationFailed
from exchange.federation.models import Cursor, FeedEntry, Mount, Publication
from exchange.members.models import Department

__all__ = [
    "FEED_CURSOR",
    "apply_entries",
    "feed_after",
    "mounted_spec",
    "on_catalog_event",
    "publish",
    "withdraw",
]

#: the cursor of the peer's catalog feed
FEED_CURSOR = "feed"
_OPERATOR = Principal(OPERATOR)
#: fields of a mounted topic that follow the peer's changes (what TopicChange accepts)
_CHANGEABLE = tuple(n for n in TopicChange.model_fields if n != "reason")


def document(topic: Topic, provider_name: str | None) -> dict[str, Any]:
    """What the feed carries of a topic: its code, version, status and metadata."""
    return {
        "resource_code": topic.resource_code,
        "version": topic.version,
        "status": topic.status,
        "provider_name": provider_name,
        "data": topic.data,
    }


def _append(session: Session, kind: str, topic: Topic, now: dt.datetime) -> None:
    in_cursor_order(session, Feed.FEDERATION_FEED)
    provider = session.get(Department, topic.provider)
    session.add(
        FeedEntry(
            at=now,
            kind=kind,
            resource_code=topic.resource_code,
            version=topic.version,
            document=document(topic, provider.name if provider else None),
        )
    )


def publish(
    session: Session, codes: Sequence[str], by: Principal, now: dt.datetime
) -> tuple[list[str], list[str]]:
    """Publish topics to the peer: (newly published, already published). A retired or
    unknown topic refuses the whole call, naming it."""
    by.require_operator()
    topics = {
        t.resource_code: t
        for t in session.scalars(select(Topic).where(Topic.resource_code.in_(set(codes))))
    }
    missing = [c for c in codes if c not in topics]
    if missing:
        raise NotFound(
            f"no topic {missing[0]}", code="topic_not_found", detail={"missing": missing[:20]}
        )
    retired = [c for c in codes if topics[c].status == "retired"]
    if retired:
        raise Conflict(
            f"topic {retired[0]} is retired and cannot be published",
            code="topic_retired",
            detail={"retired": retired[:20]},
        )
    already = set(
        session.scalars(
            select(Publication.resource_code).where(Publication.resource_code.in_(set(codes)))
        )
    )
    mounted = set(
        session.scalars(select(Mount.resource_code).where(Mount.resource_code.in_(set(codes))))
    )
    if mounted:
        raise Conflict(
            f"topic {sorted(mounted)[0]} is the peer's own, mounted here: it cannot be "
            "published back",
            code="topic_mounted",
        )
    new: list[str] = []
    for code in dict.fromkeys(codes):
        if code in already:
            continue
        session.add(Publication(resource_code=code, published_at=now, by=by.code))
        _append(session, "published", topics[code], now)
        new.append(code)
    session.flush()
    announce(session, "catalog")  # every process's view of what is published
    return new, sorted(already)


def withdraw(session: Session, codes: Sequence[str], by: Principal, now: dt.datetime) -> list[str]:
    """Withdraw publications (the peer retires its mounted copies); returns those withdrawn."""
    by.require_operator()
    rows = session.scalars(
        select(Publication).where(Publication.resource_code.in_(set(codes)))
    ).all()
    out: list[str] = []
    for pub in rows:
        topic = catalog_service.get_topic_by_code(session, pub.resource_code)
        _append(session, "withdrawn", topic, now)
        session.delete(pub)
        out.append(pub.resource_code)
    session.flush()
    announce(session, "catalog")
    return sorted(out)


def on_catalog_event(session: Session, event: catalog_service.CatalogEvent) -> None:
    """A published topic changed or retired: the peer hears of it through the feed, in the
    catalog change's own transaction (so no change is published without the feed entry)."""
    if event.kind not in ("changed", "retired"):
        return
    topic = event.topic
    if session.get(Publication, topic.resource_code) is None:
        return
    _append(session, event.kind, topic, topic.updated_at)
    if event.kind == "retired":
        session.delete(session.get(Publication, topic.resource_code))


def feed_after(session: Session, cursor: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Feed entries after ``cursor`` (at most ``limit``), and the cursor to ask from next."""
    rows = session.scalars(
        select(FeedEntry).where(FeedEntry.cursor > cursor).order_by(FeedEntry.cursor).limit(limit)
    ).all()
    out = [
        {
            "cursor": r.cursor,
            "at": r.at.isoformat(),
            "kind": r.kind,
            "resource_code": r.resource_code,
            "version": r.version,
            "document": r.document,
        }
        for r in rows
    ]
    return out, (rows[-1].cursor if rows else cursor)


def cursor_value(session: Session, name: str) -> int:
    row = session.get(Cursor, name)
    return row.value if row is not None else 0


def _set_cursor(session: Session, name: str, value: int, now: dt.datetime) -> None:
    row = session.get(Cursor, name)
    if row is None:
        session.add(Cursor(name=name, value=value, records=0, updated_at=now))
    else:
        row.value = value
        row.updated_at = now


def mounted_spec(doc: dict[str, Any], peer_code: str) -> dict[str, Any]:
    """The peer topic's metadata as a topic of this catalog, provided by the peer unit."""
    data = dict(doc["data"])
    code = str(doc["resource_code"])
    data["provider"] = peer_code
    data["slug"] = None
    data["api_path"] = f"/topics/{code}"
    data["related"] = []
    # The source of each element is the peer's department, not this catalog's topic.
    data["items"] = [{**item, "is_source": False} for item in data["items"]]
    origin = f"源目录 {code}"
    tags = [t for t in data.get("tags", []) if t != origin][:49]
    data["tags"] = [*tags, origin]
    return data


def _apply_one(session: Session, entry: dict[str, Any], peer_code: str, now: dt.datetime) -> str:
    """Apply one feed entry; returns what it did (mounted, changed, retired, unchanged)."""
    doc = entry["document"]
    peer_code_rc = str(entry["resource_code"])
    mount = session.get(Mount, peer_code_rc)
    version = int(entry["version"])
    if entry["kind"] in ("withdrawn", "retired"):
        if mount is None or mount.status == "retired":
            return "unchanged"
        topic = catalog_service.get_topic_by_code(session, mount.resource_code)
        if topic.status != "retired":
            reason = "上级/下级平台已撤回该目录" if entry["kind"] == "withdrawn" else "源目录已废置"
            catalog_service.retire(session, topic, reason, _OPERATOR, now)
        mount.status, mount.peer_version, mount.updated_at = "retired", version, now
        return "retired"
    spec = mounted_spec(doc, peer_code)
    if mount is None or mount.status == "retired":
        # First publication, or published again after a withdrawal: a retired topic
        # cannot come back (废置 is final), so the peer's topic gets a new code here.
        topic = catalog_service.register(
            session, TopicCreate.model_validate(spec), _OPERATOR, now, check_related=False
        )
        if mount is None:
            session.add(
                Mount(
                    peer_resource_code=peer_code_rc,
                    resource_code=topic.resource_code,
                    peer_version=version,
                    status="published",
                    updated_at=now,
                )
            )
        else:
            mount.resource_code, mount.peer_version = topic.resource_code, version
            mount.status, mount.updated_at = "published", now
        session.flush()
        return "mounted"
    if version <= mount.peer_version:
        return "unchanged"
    topic = catalog_service.get_topic_by_code(session, mount.resource_code)
    patch = TopicChange.model_validate(
        {**{k: spec[k] for k in _CHANGEABLE if k in spec}, "reason": f"源目录变更 v{version}"}
    )
    try:
        catalog_service.change(session, topic, patch, _OPERATOR, now)
    except ValidationFailed as exc:
        if exc.code != "empty_change":
            raise
    mount.peer_version, mount.updated_at = version, now
    return "changed"


def apply_entries(
    session: Session,
    entries: Iterable[dict[str, Any]],
    peer_code: str,
    now: dt.datetime,
    *,
    cursor: int,
) -> dict[str, int]:
    """Apply the peer's feed entries and move the feed cursor to ``cursor``, in the
    caller's transaction: both commit, or neither does."""
    done: dict[str, int] = {}
    for entry in entries:
        what = _apply_one(session, entry, peer_code, now)
        done[what] = done.get(what, 0) + 1
    _set_cursor(session, FEED_CURSOR, cursor, now)
    return done


def mount_of(session: Session, resource_code: str) -> Mount | None:
    """The mount behind a local topic, if it is the peer's."""
    return session.scalar(select(Mount).where(Mount.resource_code == resource_code))
