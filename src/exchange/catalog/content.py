"""Loading and validating the declarative catalog content under ``catalog/``.

Two kinds of file are read:

- ``catalog/units.yaml``: ``units: [ {DepartmentCreate fields}, ... ]``, the member units;
- ``catalog/topics/*.yaml``: ``topics: [ {TopicCreate fields}, ... ]``, the hand-written core
  topics, read in file-name order so the resulting list is stable.

:func:`load_document` (:mod:`exchange.documents`, the one YAML-model loader, re-exported
here) reads any other YAML file into a pydantic model the same way (the generator's
vocabulary in :mod:`exchange.catalog.vocabulary` is one).

A file that fails validation is refused with a :class:`ContentError` naming the file, the dotted
path of the offending field (``topics.3.items.2.sharing_type``) and the reason. Beyond the
schemas, the loader refuses what only shows across entries: duplicate unit codes, duplicate topic
slugs, a topic whose provider is not a unit, and two topics that both claim to be the source of
the same data element (一数一源), naming both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.catalog.schemas import TopicCreate
from exchange.documents import ContentError, load_document, read_yaml, validate
from exchange.ids import credit_code_problem
from exchange.members.schemas import DepartmentCreate

__all__ = [
    "UNITS_FILE",
    "ClaimClash",
    "ContentError",
    "find_claim_clashes",
    "load_core_topics",
    "load_document",
    "load_units",
]

UNITS_FILE = "units.yaml"
TOPICS_DIR = "topics"


@dataclass(frozen=True, slots=True)
class ClaimClash:
    """Two topics (by index in the checked sequence) both claim to source ``element``: what
    the content check finds, not the API's 409 (``catalog.service.SourceConflict``)."""

    element: str
    first: int
    first_item: int
    second: int
    second_item: int


def find_claim_clashes(topics: Sequence[TopicCreate]) -> list[ClaimClash]:
    """Every violation of one-datum-one-source (一数一源) in ``topics``.

    An element may be sourced (``is_source: true``) by one topic only; any number of topics
    may re-share it with ``is_source: false``. Items of one topic carrying the same element
    twice also conflict, because a topic cannot be two sources of one datum.
    """
    sources: dict[str, tuple[int, int]] = {}
    clashes: list[ClaimClash] = []
    for t_index, topic in enumerate(topics):
        for i_index, item in enumerate(topic.items):
            if item.element is None or not item.is_source:
                continue
            earlier = sources.get(item.element)
            if earlier is None:
                sources[item.element] = (t_index, i_index)
            else:
                clashes.append(ClaimClash(item.element, earlier[0], earlier[1], t_index, i_index))
    return clashes


def _read_list(file: Path, key: str) -> list[Any]:
    """The list under ``key`` in a YAML mapping file, or a ContentError saying why not."""
    data = read_yaml(file)
    if not isinstance(data, dict) or key not in data:
        raise ContentError(file, key, f"the file must be a mapping with a {key!r} list")
    extra = sorted(str(k) for k in data if k != key)
    if extra:
        raise ContentError(file, extra[0], f"unknown top-level key; only {key!r} is allowed")
    entries = data[key]
    if not isinstance(entries, list):
        raise ContentError(file, key, f"must be a list, not {type(entries).__name__}")
    return entries


def load_units(catalog_dir: str | Path) -> list[DepartmentCreate]:
    """The member units of ``catalog_dir/units.yaml``, validated.

    Refuses, with a :class:`ContentError`, an entry that is not a valid ``DepartmentCreate``,
    a credit code whose check characters are wrong, and a unit code used twice.
    """
    file = Path(catalog_dir) / UNITS_FILE
    units: list[DepartmentCreate] = []
    seen: dict[str, int] = {}
    credit_seen: dict[str, int] = {}
    for index, raw in enumerate(_read_list(file, "units")):
        unit = validate(DepartmentCreate, file, f"units.{index}", raw)
        if unit.code in seen:
            raise ContentError(
                file,
                f"units.{index}.code",
                f"duplicate unit code {unit.code!r}, already used by units.{seen[unit.code]}",
            )
        seen[unit.code] = index
        if unit.credit_code is not None:
            problem = credit_code_problem(unit.credit_code)
            if problem is not None:
                raise ContentError(file, f"units.{index}.credit_code", problem)
            if unit.credit_code in credit_seen:
                raise ContentError(
                    file,
                    f"units.{index}.credit_code",
                    f"credit code {unit.credit_code} already belongs to "
                    f"units.{credit_seen[unit.credit_code]}",
                )
            credit_seen[unit.credit_code] = index
        units.append(unit)
    return units


def load_core_topics(
    catalog_dir: str | Path, units: Sequence[DepartmentCreate] | None = None
) -> list[TopicCreate]:
    """The hand-written topics of ``catalog_dir/topics/*.yaml``, in file-name order.

    Providers are checked against ``units`` (read from ``catalog_dir/units.yaml`` when not
    given). Refuses an invalid entry, a provider that is not a unit, a slug used twice and two
    topics sourcing the same element, each with a :class:`ContentError` naming file and field.
    A missing ``topics/`` directory means no core topics.
    """
    base = Path(catalog_dir)
    unit_codes = {u.code for u in (load_units(base) if units is None else units)}
    topics: list[TopicCreate] = []
    origin: list[tuple[Path, int]] = []
    slugs: dict[str, tuple[Path, int]] = {}
    topics_dir = base / TOPICS_DIR
    files = sorted(topics_dir.glob("*.yaml")) if topics_dir.is_dir() else []
    for file in files:
        for index, raw in enumerate(_read_list(file, "topics")):
            topic = validate(TopicCreate, file, f"topics.{index}", raw)
            if topic.provider not in unit_codes:
                raise ContentError(
                    file,
                    f"topics.{index}.provider",
                    f"provider {topic.provider!r} is not a unit of {UNITS_FILE}",
                )
            if topic.slug is not None:
                if topic.slug in slugs:
                    other_file, other_index = slugs[topic.slug]
                    raise ContentError(
                        file,
                        f"topics.{index}.slug",
                        f"duplicate slug {topic.slug!r}, already used by "
                        f"{other_file}: topics.{other_index}",
                    )
                slugs[topic.slug] = (file, index)
            topics.append(topic)
            origin.append((file, index))
    clashes = find_claim_clashes(topics)
    if clashes:
        c = clashes[0]
        first_file, first_index = origin[c.first]
        file, index = origin[c.second]
        raise ContentError(
            file,
            f"topics.{index}.items.{c.second_item}.element",
            f"{c.element!r} already has a source: {first_file}: "
            f"topics.{first_index}.items.{c.first_item} (一数一源: one source per element; "
            "re-share it with is_source: false)",
        )
    return topics
