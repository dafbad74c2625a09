"""Loading and validating the declarative department definitions in ``services/``.

Each ``services/<code>.yaml`` describes one mock department: its code and name, a default
fault profile, and the catalog topics it serves (which record generator, which key, which
fields). Anything wrong is refused with a :class:`exchange.documents.ContentError` naming the
file, the field (as a dotted path) and the reason, as every content file is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from exchange.departments.faults import FaultPatch, FaultProfile
from exchange.departments.lifeevents import KINDS
from exchange.departments.records import GENERATORS, KeyType
from exchange.documents import ContentError, read_yaml, validate

__all__ = [
    "DepartmentDefinition",
    "TopicDefinition",
    "load_definition",
    "load_definitions",
]

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{1,31}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,79}$")]


class TopicDefinition(BaseModel):
    """One catalog topic the department serves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: Slug = Field(description="The catalog topic's slug; also its URL segment.")
    name: Annotated[str, StringConstraints(min_length=2, max_length=200)]
    generator: str = Field(description="Which record generator derives the records.")
    key: str = Field(description="The field records are looked up by.")
    fields: tuple[str, ...] = Field(min_length=1, description="Fields every record returns.")
    export: bool = Field(default=False, description="Whether bulk export is offered.")
    faults: FaultPatch | None = None

    @property
    def key_type(self) -> KeyType:
        return GENERATORS[self.generator].key_type


class DepartmentDefinition(BaseModel):
    """One mock department."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    name: Annotated[str, StringConstraints(min_length=2, max_length=100)]
    short_name: str | None = None
    description: str = ""
    faults: FaultProfile = Field(default_factory=FaultProfile)
    topics: tuple[TopicDefinition, ...] = Field(min_length=1)
    changes: dict[str, Annotated[float, Field(ge=0, le=1_000_000)]] = Field(
        default_factory=dict,
        description="Rates of the events this department registers, per 1,000 residents "
        "or enterprises a year (exchange.departments.lifeevents.KINDS has the defaults).",
    )

    def topic(self, slug: str) -> TopicDefinition | None:
        """The topic with this slug, if served."""
        return next((t for t in self.topics if t.slug == slug), None)


def _check(defn: DepartmentDefinition, file: str) -> None:
    for name in defn.changes:
        kind = KINDS.get(name)
        if kind is None:
            known = ", ".join(k for k, v in KINDS.items() if v.owner == defn.code) or "none"
            raise ContentError(
                file, f"changes.{name}", f"unknown kind of change; {defn.code} registers {known}"
            )
        if kind.owner != defn.code:
            raise ContentError(
                file, f"changes.{name}", f"{name} is registered by {kind.owner}, not {defn.code}"
            )
    seen: set[str] = set()
    for i, topic in enumerate(defn.topics):
        where = f"topics.{i}"
        if topic.slug in seen:
            raise ContentError(file, f"{where}.slug", f"duplicate topic slug {topic.slug!r}")
        seen.add(topic.slug)
        gen = GENERATORS.get(topic.generator)
        if gen is None:
            known = ", ".join(sorted(GENERATORS))
            raise ContentError(
                file, f"{where}.generator", f"unknown generator {topic.generator!r}; one of {known}"
            )
        if topic.key != gen.key_field:
            raise ContentError(
                file,
                f"{where}.key",
                f"generator {gen.name} looks records up by {gen.key_field!r}, not {topic.key!r}",
            )
        if topic.key not in topic.fields:
            raise ContentError(file, f"{where}.fields", f"the key {topic.key!r} must be returned")
        dupes = {f for f in topic.fields if topic.fields.count(f) > 1}
        if dupes:
            raise ContentError(file, f"{where}.fields", f"duplicate fields {sorted(dupes)}")
        for j, f in enumerate(topic.fields):
            if f not in gen.fields:
                raise ContentError(
                    file,
                    f"{where}.fields.{j}",
                    f"{f!r} is not a field generator {gen.name} produces ({', '.join(gen.fields)})",
                )


def parse_definition(data: Any, file: str) -> DepartmentDefinition:
    """Validate already-parsed YAML ``data``; ``file`` names it in errors."""
    if not isinstance(data, dict):
        raise ContentError(file, "", "a definition is a mapping with code, name, topics")
    defn = validate(DepartmentDefinition, file, "", data)
    _check(defn, file)
    return defn


def load_definition(path: Path) -> DepartmentDefinition:
    """Load and validate one ``services/<code>.yaml`` file."""
    file = str(path)
    defn = parse_definition(read_yaml(path), file)
    if defn.code != path.stem:
        raise ContentError(file, "code", f"code {defn.code!r} must match the file name")
    return defn


def load_definitions(directory: Path) -> dict[str, DepartmentDefinition]:
    """Every ``*.yaml`` definition in ``directory``, by department code."""
    if not directory.is_dir():
        raise ContentError(directory, "", "services directory does not exist")
    out: dict[str, DepartmentDefinition] = {}
    for path in sorted(directory.glob("*.yaml")):
        defn = load_definition(path)
        out[defn.code] = defn
    if not out:
        raise ContentError(directory, "", "no *.yaml definitions found")
    return out
