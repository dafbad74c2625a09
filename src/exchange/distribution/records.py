"""What a change's record may hold: only its topic's items, each of its catalog type, and
the key item (when the topic has one) equal to the event's key."""

from __future__ import annotations

from exchange.catalog.models import Topic
from exchange.catalog.schemas import DataType
from exchange.distribution.errors import invalid
from exchange.distribution.schemas import ChangeEvent

__all__ = ["check_record", "item_types", "key_item"]

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    DataType.string: (str,),
    DataType.integer: (int,),
    DataType.decimal: (int, float, str),
    DataType.date: (str,),
    DataType.datetime: (str,),
    DataType.boolean: (bool,),
    DataType.binary: (str,),
}


def item_types(topic: Topic) -> dict[str, str]:
    return {
        str(i["field"]): str(i.get("data_type") or DataType.string)
        for i in topic.data.get("items", [])
    }


def key_item(topic: Topic) -> str | None:
    keys = [str(i["field"]) for i in topic.data.get("items", []) if i.get("is_key")]
    return keys[0] if len(keys) == 1 else None


def check_record(index: int, event: ChangeEvent, types: dict[str, str], key: str | None) -> None:
    """The record holds only the topic's items, each of its declared type, and its key
    item (when it has one) equals the event's key."""
    if event.record is None:
        if event.kind != "deleted":
            raise invalid(
                f"events[{index}]: a {event.kind!r} change needs the record after the change",
                code="record_required",
                detail={"index": index},
            )
        return
    unknown = sorted(set(event.record) - set(types))
    if unknown:
        raise invalid(
            f"events[{index}]: not items of the topic: {', '.join(unknown[:10])}",
            code="unknown_item",
            detail={"index": index, "items": unknown[:50]},
        )
    for field, value in event.record.items():
        wanted = _JSON_TYPES.get(types[field], (str,))
        ok = value is None or (
            isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted)
        )
        if not ok:
            raise invalid(
                f"events[{index}].record.{field}: expected {types[field]}, "
                f"got {type(value).__name__}",
                code="bad_item_value",
                detail={"index": index, "item": field, "data_type": types[field]},
            )
    if key is not None and key in event.record and str(event.record[key]) != event.key:
        raise invalid(
            f"events[{index}]: record.{key} differs from the event's key",
            code="key_mismatch",
            detail={"index": index, "item": key},
        )
