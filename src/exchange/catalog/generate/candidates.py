"""What could be generated: vocabulary entries turned into named candidate topics.

A candidate carries just enough to name a topic and place it in the catalog (provider, group,
name, 类 + 项); :mod:`exchange.catalog.generate.generator` draws among them and builds only the
drawn ones. Candidates are listed in a stable order, so a seeded draw is repeatable.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from exchange.catalog.schemas import CatalogGroup
from exchange.catalog.vocabulary import Action, Subject, load_vocabulary
from exchange.members.schemas import DepartmentCreate, DepartmentKind

__all__ = ["Candidate", "action_of", "candidates", "topic_name"]

# District bureaus reuse the vocabulary of their municipal counterpart ("yuexiu-wjj" → wjw).
BUREAU_VOCABULARY = {"wjj": "wjw", "zsj": "zsj", "mzj": "mzj", "rsj": "rsj", "scjgj": "scjgj"}

# Basic-information domains (项 of a 1xxxxxxxx category).
DOMAIN_POPULATION = "01"
DOMAIN_ENTITY = "02"
DOMAIN_GEOGRAPHY = "03"
DOMAIN_CREDIT = "04"
DOMAIN_LICENCE = "05"


@dataclass(frozen=True, slots=True)
class Entry:
    """A vocabulary entry as the generator draws from it."""

    obj: str
    actions: str  # letters of the actions, e.g. "PIX"
    subject: Subject
    domain: str  # "" or a basic-information domain 01..03


@functools.cache
def vocabulary_entries() -> dict[str, tuple[Entry, ...]]:
    vocabulary = load_vocabulary()
    return {
        key: tuple(Entry(e.object, vocabulary.letters(e), e.about, e.domain) for e in listed)
        for key, listed in vocabulary.entries.items()
    }


def action_of(letter: str) -> Action:
    return load_vocabulary().actions[letter]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A topic that could be generated: enough to name it; built only when drawn."""

    provider: str
    group: CatalogGroup
    name: str
    obj: str
    action: str  # an action letter
    subject: Subject
    category_head: str  # 类 + 项, e.g. "105" or "212"
    project: str  # "" unless special-project


@functools.cache
def topic_name(letter: str, obj: str) -> str:
    """道路运输经营 + 许可 → 道路运输经营许可信息; 出租汽车驾驶员从业资格 + 证照 → …资格信息."""
    action = action_of(letter)
    if obj.endswith(action.whole):
        return obj + "信息"
    return obj + action.suffix


def _vocabulary_key(unit: DepartmentCreate) -> str:
    if unit.code in vocabulary_entries():
        return unit.code
    suffix = unit.code.rsplit("-", 1)[-1]
    if "-" in unit.code and suffix in BUREAU_VOCABULARY:
        return BUREAU_VOCABULARY[suffix]
    if unit.kind is DepartmentKind.district:
        return "district"
    raise ValueError(f"unit {unit.code!r} has no vocabulary to generate topics from")


def _prefix(unit: DepartmentCreate) -> str:
    """District units name their topics after the district: 越秀区最低生活保障信息."""
    if unit.kind is not DepartmentKind.district:
        return ""
    short = unit.short_name or unit.name
    return short[: short.index("区") + 1] if "区" in short else ""


def candidates(
    units: Mapping[str, DepartmentCreate], providers: Iterable[str], group: CatalogGroup
) -> list[Candidate]:
    """Every topic ``providers`` could offer in ``group``, in a stable order."""
    out: list[Candidate] = []
    for code in providers:
        unit = units[code]
        key = _vocabulary_key(unit)
        prefix = _prefix(unit)
        entries = vocabulary_entries()[key]
        if group is CatalogGroup.basic:
            out.extend(_basic(unit, prefix, entries))
        elif group is CatalogGroup.departmental:
            for e in entries:
                for letter in e.actions:
                    if e.domain and letter in "IRC":
                        continue  # basic information, drawn into the basic group
                    name = prefix + topic_name(letter, e.obj)
                    head = f"3{action_of(letter).index:02d}"
                    out.append(Candidate(code, group, name, e.obj, letter, e.subject, head, ""))
        else:
            for p_index, project in enumerate(load_vocabulary().projects, start=1):
                if project.members and key not in project.members:
                    continue
                for e in entries:
                    for letter in e.actions:
                        name = f"{prefix}{topic_name(letter, e.obj)}（{project.name}）"
                        out.append(
                            Candidate(
                                code,
                                group,
                                name,
                                e.obj,
                                letter,
                                e.subject,
                                f"2{p_index:02d}",
                                project.name,
                            )
                        )
    return out


def _basic(unit: DepartmentCreate, prefix: str, entries: Sequence[Entry]) -> list[Candidate]:
    """Basic information: flagged objects, e-licences (电子证照) and 双公示 records."""
    basic = CatalogGroup.basic
    out: list[Candidate] = []
    has_permit = has_penalty = False
    for e in entries:
        has_permit |= "P" in e.actions
        has_penalty |= "X" in e.actions
        for letter in e.actions:
            name = prefix + topic_name(letter, e.obj)
            if e.domain and letter in "IRC":
                out.append(
                    Candidate(unit.code, basic, name, e.obj, letter, e.subject, f"1{e.domain}", "")
                )
            if letter == "C" and "电子证照" not in e.obj:
                licence = name.removesuffix("信息") + "电子证照信息"
                out.append(
                    Candidate(
                        unit.code,
                        basic,
                        licence,
                        e.obj,
                        "C",
                        e.subject,
                        f"1{DOMAIN_LICENCE}",
                        "",
                    )
                )
    short = unit.short_name or unit.name
    if has_permit:
        out.append(
            Candidate(
                unit.code,
                basic,
                f"{short}行政许可信息（双公示）",
                "行政许可",
                "P",
                "entity",
                f"1{DOMAIN_CREDIT}",
                "",
            )
        )
    if has_penalty:
        out.append(
            Candidate(
                unit.code,
                basic,
                f"{short}行政处罚信息（双公示）",
                "行政处罚",
                "X",
                "entity",
                f"1{DOMAIN_CREDIT}",
                "",
            )
        )
    return out
