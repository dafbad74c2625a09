"""A provider's lookup answer: its parsed form, and the share of it that belongs to one call
when several broker calls were answered by one provider call (:mod:`exchange.broker.batching`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from exchange.broker.errors import ProviderBadResponse


@dataclass(slots=True)
class LookupAnswer:
    """A provider's lookup answer, or the share of it that belongs to one call."""

    records: list[Any]
    not_found: list[Any]
    invalid: list[Any] | None = None


def parse_lookup(provider: str, raw: bytes) -> LookupAnswer:
    """``{"records": [...], "not_found": [...], "invalid": [...]}`` or ``provider.bad_response``."""
    try:
        answer = orjson.loads(raw)
        records = answer["records"]
        not_found = answer.get("not_found", [])
        invalid = answer.get("invalid")
        if not isinstance(records, list) or not isinstance(not_found, list):
            raise TypeError("records and not_found must be lists")
        if invalid is not None and not isinstance(invalid, list):
            raise TypeError("invalid must be a list")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ProviderBadResponse(
            provider, f"provider {provider!r} sent a malformed answer: {exc}"
        ) from None
    return LookupAnswer(records, not_found, invalid)


def split_lookup(
    answer: LookupAnswer, key_item: str, calls: list[list[str]]
) -> list[LookupAnswer] | None:
    """Each call's share of one provider answer to the union of their keys, or None when
    the answer cannot be attributed with certainty.

    A record belongs to the calls that asked for the value of its key item. Certainty
    means: every record is an object whose key item is one of the keys asked for, every
    ``invalid`` entry names a key, and every key asked for is accounted for (records,
    ``not_found`` or ``invalid``). A provider that normalises keys (``x`` → ``X``), leaves
    the key item out, or answers with keys nobody asked for fails one of these, and then
    nothing is split: a record must never reach a call that did not ask for it.
    """
    asked = {key for keys in calls for key in keys}
    by_key: dict[str, list[Any]] = {}
    for record in answer.records:
        if not isinstance(record, dict):
            return None
        key = record.get(key_item)
        if not isinstance(key, str) or key not in asked:
            return None
        by_key.setdefault(key, []).append(record)
    missing = {key for key in answer.not_found if isinstance(key, str)}
    invalid: dict[str, list[Any]] = {}
    for entry in answer.invalid or ():
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            return None
        invalid.setdefault(entry["key"], []).append(entry)
    if any(key not in by_key and key not in missing and key not in invalid for key in asked):
        return None
    shares = []
    for keys in calls:
        share = LookupAnswer([], [], [] if answer.invalid is not None else None)
        for key in keys:
            share.records.extend(by_key.get(key, ()))
            if key in missing:
                share.not_found.append(key)
            if share.invalid is not None:
                share.invalid.extend(invalid.get(key, ()))
        shares.append(share)
    return shares
