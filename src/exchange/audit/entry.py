"""One audit entry, defined once, and its hashed (canonical) form, versioned.

Each entry's ``hash`` is ``sha256(prev_hash + canonical JSON of the entry)``; the genesis
``prev_hash`` is 64 zeros. ``seq`` is not part of the hashed content, so moving an entry
shows up as a broken link ("reordered") rather than as an edit.

The hashed form carries a version. Version 1 (entries written before versions existed)
has no ``v`` key and the twelve fields of :data:`HASHED_FIELDS` ``[1]``; every later
version names itself (``"v": 2``) and lists its own fields, so adding a field later
means adding a version, and old entries keep verifying under the form they were hashed in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import orjson

GENESIS = "0" * 64

#: The fields each version of the hashed form covers, in no particular order (the JSON
#: keys are sorted).
HASHED_FIELDS: dict[int, tuple[str, ...]] = {
    1: (
        "request_id",
        "at",
        "kind",
        "consumer",
        "provider",
        "resource_code",
        "items",
        "case",
        "records",
        "outcome",
        "status",
        "latency_us",
    ),
}
# Version 2: the caller's own X-Request-Id, kept as a correlation id (the exchange assigns
# the request id itself).
HASHED_FIELDS[2] = (*HASHED_FIELDS[1], "correlation_id")
# Version 3: a verification's outcomes (核验), item → {outcome: count}; never the values.
HASHED_FIELDS[3] = (*HASHED_FIELDS[2], "verdicts")
VERSION = max(HASHED_FIELDS)

#: Longest value each string column stores (the models' ``String(n)``): PostgreSQL refuses
#: a longer one, which would fail the whole group commit it is in.
MAX_LENGTH = {
    "request_id": 64,
    "kind": 16,
    "consumer": 32,
    "provider": 32,
    "resource_code": 16,
    "case": 200,
    "outcome": 48,
    "correlation_id": 64,
}


#: Largest value of the 32-bit integer columns (records, status, latency_us).
INT_MAX = 2**31 - 1


@dataclass(slots=True)
class Entry:
    """What the broker records about one call, before it has a place in the chain."""

    request_id: str
    at: dt.datetime
    kind: str
    consumer: str
    provider: str | None
    resource_code: str | None
    items: list[str]
    case: str | None
    records: int
    outcome: str
    status: int
    latency_us: int
    correlation_id: str | None = None
    #: a verification's outcomes by item, e.g. ``{"name": {"match": 2, "unknown": 1}}``
    #: (None for every other kind of call)
    verdicts: dict[str, dict[str, int]] | None = None
    #: version of the hashed form (see the module docstring)
    version: int = VERSION
    #: :meth:`canonical`, once computed (the journal line and the hash share it)
    cached: bytes | None = field(default=None, repr=False, compare=False)

    def canonical(self) -> bytes:
        """The hashed content: sorted keys, UTC time to the microsecond, UTF-8."""
        if self.cached is None:
            self.cached = self._canonical()
        return self.cached

    def _canonical(self) -> bytes:
        # Written out rather than derived from HASHED_FIELDS: this runs for every answered
        # call on the broker's hot path, and a literal costs half of a generic build
        # (tests/audit/test_entry.py holds it to HASHED_FIELDS).
        at = self.at.astimezone(dt.UTC)
        body: dict[str, Any] = {
            "request_id": self.request_id,
            # orjson writes a UTC time as isoformat(timespec="microseconds") does (in C,
            # at a tenth of isoformat's ~1 µs), but for a whole second, whose fraction it
            # leaves out: those take isoformat (tests/audit/test_entry.py compares).
            "at": at if at.microsecond else at.isoformat(timespec="microseconds"),
            "kind": self.kind,
            "consumer": self.consumer,
            "provider": self.provider,
            "resource_code": self.resource_code,
            "items": list(self.items),
            "case": self.case,
            "records": self.records,
            "outcome": self.outcome,
            "status": self.status,
            "latency_us": self.latency_us,
        }
        if self.version > 1:
            body["correlation_id"] = self.correlation_id
            body["v"] = self.version
            if self.version > 2:
                body["verdicts"] = self.verdicts
        return canonical_json(body)

    @classmethod
    def from_canonical(cls, line: bytes) -> Entry:
        """The entry a journal line (its :meth:`canonical` form) describes."""
        data = orjson.loads(line)
        version = int(data.pop("v", 1))
        if version not in HASHED_FIELDS or set(data) != set(HASHED_FIELDS[version]):
            raise ValueError(f"not an audit entry of version {version}")
        data["at"] = dt.datetime.fromisoformat(data["at"])
        data["items"] = list(data["items"])
        return cls(**data, version=version)

    @classmethod
    def of(cls, row: Any) -> Entry:
        """The entry a stored row (``AuditEntry``) holds."""
        values = dict(zip(STORED, getter(STORED)(row), strict=True))
        values["items"] = list(values["items"])
        return cls(**values)

    def storable(self) -> Entry:
        """This entry with every value the databases can store: NUL bytes escaped (as the
        text ``\\x00``, which PostgreSQL accepts), strings cut to their column's length and
        numbers clamped to their 32-bit columns.

        The writer's last resort for an entry its database refused; the broker already
        escapes what callers send, so a refused entry means a bug, not a caller.
        """
        changes: dict[str, Any] = {}
        for name, limit in MAX_LENGTH.items():
            value = getattr(self, name)
            if isinstance(value, str):
                fixed = escape_text(value)[:limit]
                if fixed != value:
                    changes[name] = fixed
        for name in ("records", "status", "latency_us"):
            value = getattr(self, name)
            fixed = min(max(value, 0), INT_MAX)
            if fixed != value:
                changes[name] = fixed
        items = [escape_text(i) for i in self.items]
        if items != self.items:
            changes["items"] = items
        if not changes:
            return self
        return dataclasses.replace(self, **changes, cached=None)


#: Every stored field of an entry (the columns ``Entry.of`` reads), derived from the class.
STORED: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Entry) if f.name != "cached")

_GETTERS: dict[tuple[str, ...], attrgetter[Any]] = {}


def getter(names: tuple[str, ...]) -> attrgetter[Any]:
    found = _GETTERS.get(names)
    if found is None:
        found = _GETTERS[names] = attrgetter(*names)
    return found


def escape_text(value: str) -> str:
    """``value`` with NUL bytes written as ``\\x00`` (PostgreSQL text cannot hold NUL)."""
    return value.replace("\x00", "\\x00") if "\x00" in value else value


def canonical_json(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, entry: Entry) -> str:
    return hashlib.sha256(prev_hash.encode() + entry.canonical()).hexdigest()
