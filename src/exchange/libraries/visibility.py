"""What a consumer may see of a library's sources (the rules in
:mod:`exchange.libraries.service`): each source's elements, and per consumer the sources it
sees freely and those it sees only under its grant on the source topic."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CONDITIONAL",
    "NOT_GOVERNMENT",
    "ConsumerView",
    "GuardedSource",
    "PlannedSource",
    "SourceElement",
]

#: why an element is withheld (the answer's ``withheld_reasons``)
CONDITIONAL = "conditional"
NOT_GOVERNMENT = "not_government"


@dataclass(frozen=True, slots=True)
class SourceElement:
    position: int
    element: str
    field: str
    unconditional: bool


@dataclass(frozen=True, slots=True)
class PlannedSource:
    id: int
    library: str
    resource_code: str
    provider: str
    topic_name: str
    elements: tuple[SourceElement, ...]


@dataclass(slots=True)
class GuardedSource:
    """A source with elements a consumer sees only under its grant on the source topic:
    which of them it sees for a grant's item set, worked out once per item set."""

    source: PlannedSource
    #: elements shown only under a grant: conditional ones (for a unit that is not a
    #: government department, every element)
    conditional: tuple[SourceElement, ...]
    #: elements shown whatever the grant says (unconditional ones, to a department)
    free: tuple[SourceElement, ...]
    #: granted item set → (elements shown, elements withheld)
    splits: dict[frozenset[str], tuple[tuple[SourceElement, ...], tuple[str, ...]]]

    def split(self, items: frozenset[str]) -> tuple[tuple[SourceElement, ...], tuple[str, ...]]:
        found = self.splits.get(items)
        if found is None:
            shown = self.free + tuple(e for e in self.conditional if e.field in items)
            withheld = tuple(e.element for e in self.conditional if e.field not in items)
            found = self.splits[items] = (shown, withheld)
        return found


@dataclass(frozen=True, slots=True)
class ConsumerView:
    """What one consumer may see of one library's sources, before its grants are checked:
    built once per consumer and plan, so a lookup does no per-element work to know it."""

    #: sources whose elements the consumer sees without a grant (unconditional, or its own)
    free: dict[int, tuple[SourceElement, ...]]
    #: sources with conditional elements: each is checked against the consumer's grant
    guarded: tuple[GuardedSource, ...]
    #: element → why it is withheld without a grant (``conditional``, ``not_government``)
    reasons: dict[str, str]
