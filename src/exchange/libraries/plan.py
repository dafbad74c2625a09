"""Which topics each library gathers, and which elements each brings: read from the catalog.

A library is keyed by one element (``person.id_number``, ``enterprise.credit_code``). A
published table topic whose key item carries that element describes the library's subjects:

- it is a **source** when it is the catalog's source (一数一源, ``is_source``) of at least one
  element other than the key: the library takes those elements from it and from no other;
- it is a **witness** when it only re-shares elements another topic is the source of
  (``is_source: false``): the library gathers those items to check them against the
  source (quality, :mod:`exchange.libraries.quality`), never to serve them.

A topic may carry one element in several items (a marriage record names the person, the
husband and the wife): the first such item in catalog order describes the record's key
subject, and only it is used. The library unit cannot apply for its own topics (nobody may),
so those are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["LIBRARIES", "Field", "Library", "SourcePlan", "plan_sources"]

Role = Literal["source", "witness"]


@dataclass(frozen=True, slots=True)
class Library:
    code: str
    name: str
    key_element: str
    #: the key's label in the API and the portal
    key_name: str


LIBRARIES: dict[str, Library] = {
    "person": Library("person", "人口基础信息库", "person.id_number", "id_number"),
    "enterprise": Library("enterprise", "法人基础信息库", "enterprise.credit_code", "credit_code"),
}


@dataclass(frozen=True, slots=True)
class Field:
    """One item the library gathers from a topic."""

    field: str
    element: str
    #: True: the library serves this element from here; False: kept to check the source
    is_source: bool
    sharing_type: str


@dataclass(frozen=True, slots=True)
class SourcePlan:
    library: str
    resource_code: str
    provider: str
    topic_name: str
    key_field: str
    role: Role
    fields: tuple[Field, ...]

    @property
    def items(self) -> list[str]:
        """What the library asks the broker for: the key, then every gathered item."""
        return [self.key_field, *(f.field for f in self.fields)]


def plan_sources(
    topics: Iterable[Any], *, library_unit: str, retired: Iterable[str] = ()
) -> list[SourcePlan]:
    """The sources and witnesses of every library, from catalog topics (``catalog_topic``
    rows: ``resource_code``, ``provider``, ``name``, ``status``, ``resource_type``, ``data``).

    Sources first, then witnesses, each in resource-code order, so the plan is stable.
    """
    rows = sorted(topics, key=lambda t: t.resource_code)
    out: list[SourcePlan] = []
    elements_sourced: dict[str, set[str]] = {code: set() for code in LIBRARIES}
    candidates: list[tuple[Library, Any, str, list[dict[str, Any]]]] = []
    skip = set(retired)
    for topic in rows:
        if topic.status != "published" or topic.resource_type != "table":
            continue
        if topic.provider == library_unit or topic.resource_code in skip:
            continue
        items: list[dict[str, Any]] = topic.data.get("items", [])
        key = next((i for i in items if i.get("is_key")), None)
        if key is None:
            continue
        for lib in LIBRARIES.values():
            if key.get("element") == lib.key_element:
                candidates.append((lib, topic, key["field"], items))
    for lib, _topic, _key, items in candidates:
        for item in items:
            element = item.get("element")
            if element and item.get("is_source", True) and element != lib.key_element:
                elements_sourced[lib.code].add(element)
    sources: list[SourcePlan] = []
    witnesses: list[SourcePlan] = []
    for lib, topic, key_field, items in candidates:
        seen: set[str] = set()
        fields: list[Field] = []
        for item in items:
            element = item.get("element")
            if not element or element == lib.key_element or element in seen:
                continue
            if item.get("sharing_type") == "not_shared":
                continue
            seen.add(element)
            is_source = bool(item.get("is_source", True))
            if not is_source and element not in elements_sourced[lib.code]:
                continue  # re-shares an element no library source carries: nothing to check
            fields.append(Field(item["field"], element, is_source, item["sharing_type"]))
        if not fields:
            continue
        role: Role = "source" if any(f.is_source for f in fields) else "witness"
        plan = SourcePlan(
            lib.code,
            topic.resource_code,
            topic.provider,
            topic.name,
            key_field,
            role,
            tuple(fields),
        )
        (sources if role == "source" else witnesses).append(plan)
    out.extend(sources)
    out.extend(witnesses)
    return out
