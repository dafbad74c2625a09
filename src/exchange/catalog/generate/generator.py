"""The topic generator: draws named candidates and builds complete, valid topics from them.

:class:`Generator` holds what must stay unique across the whole catalog (names per provider,
slugs, 细目 numbers) while the editions draw from it; every random choice comes from the rng
the edition passes in, in a fixed order, so a seed always yields the same catalog.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from typing import Any

from exchange.catalog.generate.candidates import Candidate, action_of
from exchange.catalog.generate.shape import (
    CONDITIONS,
    CYCLE_LABEL,
    CYCLE_WEIGHTS,
    DATES,
    DUTIES,
    FORMATS,
    LEGAL_BASIS,
    LEGAL_BASIS_BY_KIND,
    LEGAL_BASIS_DEFAULT,
    METHODS,
    RESOURCE_WEIGHTS,
    SCOPES,
    SHARING_WEIGHTS,
    STATS_CYCLES,
    VARIANTS,
    pick,
)
from exchange.catalog.schemas import TopicCreate
from exchange.catalog.vocabulary import Action, ItemSpec, load_vocabulary
from exchange.members.schemas import DepartmentCreate

__all__ = ["Generator"]

# Generated identifiers re-share the core element of the same name when a core topic sources
# one, so person and enterprise keys keep a single source (一数一源).
RESHARED_FIELDS = ("id_number", "credit_code")
_RESHARE_PREFERENCE = ("person", "enterprise", "legal_entity", "entity")


def core_identifiers(core: Sequence[TopicCreate]) -> dict[str, str]:
    """Core elements generated identifier items re-share, by item field."""
    sourced = sorted(
        {it.element for t in core for it in t.items if it.element is not None and it.is_source}
    )
    out: dict[str, str] = {}
    for fld in RESHARED_FIELDS:
        matches = [e for e in sourced if e.rsplit(".", 1)[-1] == fld]

        def rank(element: str) -> tuple[int, str]:
            head = element.split(".", 1)[0]
            order = _RESHARE_PREFERENCE.index(head) if head in _RESHARE_PREFERENCE else 99
            return order, element

        if matches:
            out[fld] = min(matches, key=rank)
    return out


class Generator:
    """Draws and builds topics; holds what must stay unique across the whole catalog."""

    def __init__(
        self,
        units: Sequence[DepartmentCreate],
        core: Sequence[TopicCreate],
        seed: int,
        on_progress: Callable[[int, int], None] | None,
        total: int,
    ) -> None:
        self.units = {u.code: u for u in units}
        self.unit_index = {u.code: i + 1 for i, u in enumerate(units)}
        self.seed = seed
        self.on_progress = on_progress
        self.total = total
        self.built = len(core)
        self.used_names = {(t.provider, t.name) for t in core}
        self.used_slugs = {t.slug for t in core if t.slug is not None}
        self.slug_counter: dict[str, int] = {}
        self.category_counter: dict[str, int] = {}
        self.core_elements = core_identifiers(core)

    # --- drawing ----------------------------------------------------------------------

    def draw(
        self,
        rng: random.Random,
        pool: list[Candidate],
        count: int,
        cover: set[str],
    ) -> list[Candidate]:
        """``count`` candidates with unused names, first one for each provider in ``cover``.

        Covered providers are removed from ``cover``. When the vocabulary runs out, names
        get a variant suffix (增量/全量/历史/汇总), as real catalogs split big resources.
        """
        rng.shuffle(pool)
        chosen: list[Candidate] = []

        def take(c: Candidate) -> None:
            self.used_names.add((c.provider, c.name))
            cover.discard(c.provider)
            chosen.append(c)

        for c in pool:
            if len(chosen) >= count:
                break
            if c.provider in cover and (c.provider, c.name) not in self.used_names:
                take(c)
        for variant in ("", *VARIANTS):
            for c in pool:
                if len(chosen) >= count:
                    return chosen
                v = (
                    c
                    if not variant
                    else Candidate(
                        c.provider,
                        c.group,
                        c.name + variant,
                        c.obj,
                        c.action,
                        c.subject,
                        c.category_head,
                        c.project,
                    )
                )
                if (v.provider, v.name) not in self.used_names:
                    take(v)
        if len(chosen) < count:
            raise ValueError(
                f"the vocabulary offers only {len(chosen)} of {count} topics for this draw"
            )
        return chosen

    # --- building ---------------------------------------------------------------------

    def build(self, rng: random.Random, c: Candidate, era: str) -> TopicCreate:
        """A complete, valid topic for candidate ``c`` published in ``era`` (2017 or 2020)."""
        unit = self.units[c.provider]
        action = action_of(c.action)
        short = unit.short_name or unit.name
        slug = self._slug(c.provider, action.slug)
        element_stem = f"{c.provider.replace('-', '_')}.{slug.removeprefix(c.provider + '-')}"
        element_stem = element_stem.replace("-", "_")

        sharing_type = pick(rng, SHARING_WEIGHTS[c.group])
        if c.action == "T":
            # Aggregates carry no personal data; they are rarely withheld.
            sharing_type = "unconditional" if rng.random() < 0.6 else "conditional"
        resource_type = pick(rng, RESOURCE_WEIGHTS[c.group])
        if c.action == "T" and resource_type == "interface":
            resource_type = "table"
        cycle = pick(rng, STATS_CYCLES if c.action == "T" else CYCLE_WEIGHTS[c.group])

        items = self._items(rng, c, action, sharing_type, element_stem)
        sharing: dict[str, Any] = {
            "type": sharing_type,
            "methods": list(rng.choice(METHODS[resource_type])),
            "usage_scopes": sorted(rng.sample(SCOPES, rng.randint(1, 3)), key=SCOPES.index),
        }
        if sharing_type == "conditional":
            sharing["conditions"] = rng.choice(CONDITIONS).format(
                duty=rng.choice(DUTIES), short=short
            )
        elif sharing_type == "not_shared":
            sharing["legal_basis"] = LEGAL_BASIS.get(
                c.provider.rsplit("-", 1)[-1],
                LEGAL_BASIS_BY_KIND.get(unit.kind, LEGAL_BASIS_DEFAULT),
            )
            sharing["usage_scopes"] = []
        open_type = "closed"
        if sharing_type != "not_shared" and c.action in "TDPX" and rng.random() < 0.35:
            open_type = "open"

        names = "、".join(str(it["name"]) for it in items[:4])
        lead = f"为支撑{c.project}专项应用，" if c.project else ""
        abstract = (
            f"{lead}{unit.name}{action.doing}的{c.name.split('（')[0]}，"
            f"包括{names}等{len(items)}项，{CYCLE_LABEL[cycle]}更新。"
        )
        start, span = DATES[era]
        tags = [action.label] + ([c.project] if c.project else [])
        raw: dict[str, Any] = {
            "category": self._category(c),
            "group": c.group.value,
            "name": c.name,
            "slug": slug,
            "provider": c.provider,
            "abstract": abstract,
            "format": rng.choice(FORMATS[resource_type]),
            "resource_type": resource_type,
            "items": items,
            "sharing": sharing,
            "open": {"type": open_type},
            "update_cycle": cycle,
            "published_on": start + dt.timedelta(days=rng.randrange(span)),
            "tags": tags,
        }
        topic = TopicCreate.model_validate(raw)
        self.built += 1
        if self.on_progress is not None:
            self.on_progress(self.built, self.total)
        return topic

    def _slug(self, provider: str, action_slug: str) -> str:
        while True:
            n = self.slug_counter.get(provider, 0) + 1
            self.slug_counter[provider] = n
            slug = f"{provider}-{action_slug}-{n:04d}"
            if slug not in self.used_slugs:
                self.used_slugs.add(slug)
                return slug

    def _category(self, c: Candidate) -> str:
        """类 + 项 from the candidate, 目 = provider's position, 细目 = running number."""
        front = f"{c.category_head}{self.unit_index[c.provider]:03d}"
        n = self.category_counter.get(front, 0) + 1
        if n > 999:
            raise ValueError(f"more than 999 topics under category {front}")
        self.category_counter[front] = n
        return f"{front}{n:03d}"

    def _items(
        self,
        rng: random.Random,
        c: Candidate,
        action: Action,
        sharing_type: str,
        element_stem: str,
    ) -> list[dict[str, Any]]:
        vocabulary = load_vocabulary()
        subject = () if c.action == "T" else vocabulary.subjects[c.subject]
        specs = [*subject, *action.items, *vocabulary.tail]
        required = [s for s in specs if not s.optional]
        optional = [s for s in specs if s.optional]
        wanted = rng.randint(max(3, len(required)), min(25, len(specs)))
        picked = set(rng.sample(range(len(optional)), wanted - len(required)))
        keep = {id(s) for s in required} | {id(optional[i]) for i in picked}
        # Details of the action (and of things the department keeps) can be its own data
        # elements; a person's or entity's attributes belong to the population and legal-entity
        # sources, so they are never claimed here.
        own = {id(s) for s in action.items} | (
            {id(s) for s in subject} if c.subject == "thing" else set()
        )
        items: list[dict[str, Any]] = []
        for spec in specs:
            own_detail = id(spec) in own
            if id(spec) not in keep:
                continue
            name = c.obj + spec.name if spec.field == "object_code" else spec.name
            item: dict[str, Any] = {
                "field": spec.field,
                "name": name[:100],
                "data_type": spec.data_type,
                "sharing_type": self._item_sharing(rng, sharing_type, spec),
            }
            if spec.field in RESHARED_FIELDS:
                # A person's or entity's identifier is never this topic's own datum: it
                # re-shares the core source, or carries no element when there is none.
                if spec.field in self.core_elements:
                    item["element"] = self.core_elements[spec.field]
                    item["is_source"] = False
            elif spec.key or (own_detail and rng.random() < 0.2):
                item["element"] = f"{element_stem}.{spec.field}"
                item["is_source"] = True
            if spec.key and (spec.field in RESHARED_FIELDS or spec in action.items):
                item["is_key"] = True
            elif item["sharing_type"] == "not_shared":
                # A detail withheld by law can still be confirmed (核验): the provider lets
                # members verify a declared value without disclosing it. Decided without
                # the generator's random stream, so the rest of the catalog stays as it was.
                item["verifiable"] = True
            items.append(item)
        return items

    @staticmethod
    def _item_sharing(rng: random.Random, topic: str, spec: ItemSpec) -> str:
        """An item is as open as its topic, or narrower when it is a sensitive detail."""
        if topic == "unconditional":
            return "conditional" if spec.sensitive and rng.random() < 0.6 else topic
        if topic == "conditional" and spec.sensitive and not spec.key and rng.random() < 0.3:
            return "not_shared"
        return topic
