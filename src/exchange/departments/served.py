"""A served topic: its definition, generator and fault profile, and how it answers one key.

The single-record path is the departments' hottest: :func:`make_lookup` builds each topic's
answer once (and again when its noise changes), so a request costs a dict hit for a key
asked before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from exchange.departments import noise
from exchange.departments.city import City
from exchange.departments.definitions import DepartmentDefinition, TopicDefinition
from exchange.departments.exporter import project
from exchange.departments.faults import FaultPatch, FaultProfile
from exchange.departments.overlay import DELETED, Overlay
from exchange.departments.records import Generator, key_problem

__all__ = ["Lookup", "Topic", "make_lookup"]

#: One key's answer: ("ok", the record serialised), ("missing", None) or ("invalid", why).
Lookup = Callable[[str], tuple[str, bytes | str | None]]


@dataclass(slots=True)
class Topic:
    """A served topic with its caches and current fault profile."""

    dept: DepartmentDefinition
    defn: TopicDefinition
    gen: Generator
    fields: tuple[str, ...]
    override: FaultPatch | None = None
    profile: FaultProfile = field(default_factory=FaultProfile)
    lookup: Lookup = field(init=False)

    @property
    def key_code(self) -> str:
        return f"invalid_{self.gen.key_type}"


def make_lookup(topic: Topic, city: City, overlay: Overlay) -> Lookup:
    """The topic's answer to one key, with its current noise rate."""
    gen, fields = topic.gen, topic.fields
    rate = topic.profile.noise_rate
    salt = noise.salt_of(topic.dept.code, topic.defn.slug)

    # Cached per key: repeated lookups (the common case under load) cost a dict hit.
    @lru_cache(maxsize=65_536)
    def derived(key: str) -> tuple[str, bytes | str | None]:
        problem = key_problem(gen.key_type, key)
        if problem is not None:
            return "invalid", problem
        rec = gen.lookup(city, key)
        if rec is None:
            return "missing", None
        if rate:
            rec = noise.apply(gen.name, rec, key, salt, rate)
        return "ok", orjson.dumps(project(rec, fields))

    # A changed record wins over the derived one (the cache keeps the derived answer);
    # its serialised form is kept while the record stays the same object.
    changed = overlay.layer_keys(gen.name)
    served: dict[str, tuple[dict[str, Any], bytes]] = {}

    def lookup(key: str) -> tuple[str, bytes | str | None]:
        if changed:
            rec = changed.get(key)
            if rec is not None:
                if rec is DELETED:
                    return "missing", None
                hit = served.get(key)
                if hit is None or hit[0] is not rec:
                    hit = served[key] = (rec, orjson.dumps(project(rec, fields)))
                return "ok", hit[1]
        return derived(key)

    return lookup
