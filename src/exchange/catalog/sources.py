"""One datum, one source (一数一源): which topic is the source of each data element.

A topic claims the elements its items mark as source when it is registered or changed; an
element another topic already owns refuses the claim, naming the owner. Retiring a topic
frees its elements.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.catalog.errors import SourceConflict
from exchange.catalog.models import ElementSource, Topic
from exchange.catalog.schemas import DataItem

__all__ = ["claim_sources", "element_sources", "source_items"]


def source_items(items: Iterable[DataItem]) -> dict[str, DataItem]:
    return {it.element: it for it in items if it.element and it.is_source}


def claim_sources(session: Session, topic: Topic, items: Sequence[DataItem]) -> None:
    """Record this topic as the source of its elements, refusing any already owned."""
    wanted = source_items(items)
    current = {
        row.element: row
        for row in session.scalars(select(ElementSource).where(ElementSource.topic_id == topic.id))
    }
    for element in set(current) - set(wanted):
        session.delete(current[element])
    new = sorted(set(wanted) - set(current))
    if not new:
        return
    owners = session.execute(
        select(ElementSource.element, ElementSource.provider, Topic.resource_code, Topic.name)
        .join(Topic, Topic.id == ElementSource.topic_id)
        .where(ElementSource.element.in_(new))
    ).all()
    if owners:
        first = owners[0]
        raise SourceConflict(
            f"data element {first.element!r} already has a source: department "
            f"{first.provider!r}, topic {first.resource_code} {first.name} (一数一源). "
            "Mark the item is_source: false to re-share it, or ask the owner to change.",
            detail={
                "conflicts": [
                    {
                        "element": o.element,
                        "owner": o.provider,
                        "resource_code": o.resource_code,
                        "topic": o.name,
                    }
                    for o in owners
                ]
            },
        )
    for element in new:
        session.add(ElementSource(element=element, topic_id=topic.id, provider=topic.provider))


def element_sources(session: Session) -> dict[str, tuple[str, str]]:
    """element → (provider, resource code): who is the one source of each datum."""
    rows = session.execute(
        select(ElementSource.element, ElementSource.provider, Topic.resource_code).join(
            Topic, Topic.id == ElementSource.topic_id
        )
    )
    return {r.element: (r.provider, r.resource_code) for r in rows}
