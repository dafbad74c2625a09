"""The catalog generator's vocabulary: what departments administer and what they do to it.

Data, loaded from two YAML files shipped with the package (``exchange/catalog/data/``) and
validated like the rest of the catalog content (:func:`exchange.catalog.content.load_document`,
:class:`~exchange.catalog.content.ContentError` naming file, field and reason):

``actions.yaml``
    The actions a topic can be about (许可, 备案, 登记, 处罚 …: its name suffix, the data items
    it carries), the items that describe its subject (a person, an entity, a thing) and the
    items every generated topic ends with.
``vocabulary.yaml``
    Per department, the objects it administers with the actions done to them, and the
    special projects (专项应用) whose topics combine several departments.

They ship inside the package, not under ``catalog/``, because they define the generated
profiles (1,999 and 3,722 topics drawn from them) rather than one exchange's content:
whatever ``catalog_dir`` an exchange reads its units from, ``guangzhou-2017`` stays the same.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from exchange.catalog.content import ContentError, load_document
from exchange.catalog.schemas import DataType

__all__ = [
    "DATA_DIR",
    "Action",
    "Entry",
    "ItemSpec",
    "Project",
    "Subject",
    "Vocabulary",
    "load_vocabulary",
]

DATA_DIR = Path(__file__).resolve().parent / "data"

Subject = Literal["person", "entity", "thing"]

# 项 of a basic-information category (1xxxxxxxx) by the domain an object belongs to.
_BASIC_DOMAINS = {"population": "01", "legal_entity": "02", "geography": "03"}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ItemSpec(_Spec):
    """A data item a generated topic may carry."""

    field: str
    name: str
    data_type: DataType = DataType.string
    key: bool = False  # the record's identifier: gets an element of its own and is_key
    sensitive: bool = False  # personal or commercial detail: shared more narrowly
    optional: bool = False


class Action(_Spec):
    """What a department does to an object, and the topic that arises from it."""

    letter: str = Field(pattern=r"^[A-Z]$")  # the generator's short name for the action
    slug: str = Field(pattern=r"^[a-z][a-z-]*$")  # part of generated topic slugs
    label: str  # the topic's tag
    doing: str  # how the abstract says the data arises
    suffix: str  # appended to the object for the topic name
    whole: tuple[str, ...] = ()  # object endings that already say it: only 信息 is appended
    index: int = Field(ge=1, le=99)  # 项 of a departmental (3xxxxxxxx) category
    items: tuple[ItemSpec, ...]


class _ItemsFile(_Spec):
    actions: tuple[Action, ...]
    subjects: dict[Subject, tuple[ItemSpec, ...]]
    tail: tuple[ItemSpec, ...]


class Entry(_Spec):
    """One object a department administers, the actions on it, its subject and domain."""

    object: str
    actions: tuple[str, ...] = Field(min_length=1)  # action slugs, in the order drawn
    about: Subject = "thing"
    basic: Literal["population", "legal_entity", "geography"] | None = None

    @property
    def domain(self) -> str:
        """The basic-information 项 ("01" …), or "" when the object is not basic data."""
        return _BASIC_DOMAINS[self.basic] if self.basic else ""


class Project(_Spec):
    """A special project (专项应用); no members means every department takes part."""

    name: str
    members: tuple[str, ...] = ()


class _VocabularyFile(_Spec):
    vocabulary: dict[str, tuple[Entry, ...]]
    projects: tuple[Project, ...]


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Both files, checked against each other."""

    actions: dict[str, Action]  # by letter
    subjects: dict[Subject, tuple[ItemSpec, ...]]
    tail: tuple[ItemSpec, ...]
    entries: dict[str, tuple[Entry, ...]]  # by vocabulary key: a unit code or "district"
    projects: tuple[Project, ...]

    def letters(self, entry: Entry) -> str:
        """The entry's actions as the generator's letters, e.g. "PIX"."""
        by_slug = {a.slug: a.letter for a in self.actions.values()}
        return "".join(by_slug[slug] for slug in entry.actions)


@functools.cache
def load_vocabulary(data_dir: Path = DATA_DIR) -> Vocabulary:
    """The generator's vocabulary from ``data_dir``, or a ContentError saying what is wrong.

    Beyond each file's schema: action letters and slugs are unique, every subject has its
    items, every action an entry names exists, and every project member has a vocabulary.
    """
    items_file = data_dir / "actions.yaml"
    items = load_document(items_file, _ItemsFile)
    actions: dict[str, Action] = {}
    slugs: set[str] = set()
    for index, action in enumerate(items.actions):
        if action.letter in actions or action.slug in slugs:
            raise ContentError(
                items_file, f"actions.{index}", f"action {action.letter}/{action.slug} twice"
            )
        actions[action.letter] = action
        slugs.add(action.slug)
    missing = sorted({"person", "entity", "thing"} - set(items.subjects))
    if missing:
        raise ContentError(items_file, "subjects", f"no items for {', '.join(missing)}")

    vocabulary_file = data_dir / "vocabulary.yaml"
    vocabulary = load_document(vocabulary_file, _VocabularyFile)
    for key, entries in vocabulary.vocabulary.items():
        for index, entry in enumerate(entries):
            unknown = [slug for slug in entry.actions if slug not in slugs]
            if unknown:
                raise ContentError(
                    vocabulary_file,
                    f"vocabulary.{key}.{index}.actions",
                    f"no action {unknown[0]!r} in {items_file.name}",
                )
    for index, project in enumerate(vocabulary.projects):
        strays = [m for m in project.members if m not in vocabulary.vocabulary]
        if strays:
            raise ContentError(
                vocabulary_file,
                f"projects.{index}.members",
                f"{strays[0]!r} has no vocabulary",
            )
    return Vocabulary(
        actions=actions,
        subjects=items.subjects,
        tail=items.tail,
        entries=vocabulary.vocabulary,
        projects=vocabulary.projects,
    )
