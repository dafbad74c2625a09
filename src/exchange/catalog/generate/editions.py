"""The deterministic catalog generator: core topics expanded to the real platform's shape.

Profiles (:data:`PROFILES`):

``core``
    Only the hand-written core topics of ``catalog/topics/*.yaml``.
``guangzhou-2017``
    The shared catalog's 2nd edition: exactly **1,999** topics from **52** municipal-level
    departments, **71** basic, **699** departmental and **1,229** special-project (专项)
    topics, core topics included. The 52 providers are every unit of kind ``municipal`` (51 in
    ``catalog/units.yaml``) plus the tax bureau ``swj``: 国家税务总局广州市税务局 is a vertical
    body by status (kind ``vertical``), but it published its catalog with the municipal
    departments and is a key source, so :data:`CATALOG_2017_VERTICALS` admits it.
``platform-2020``
    The platform in mid-2020: exactly **3,722** topics provided across all **151** units.
    It is the ``guangzhou-2017`` catalog for the same seed, unchanged, plus 1,723 topics
    registered since (:data:`ADDITIONS_2020`): 578 more from the 52 catalog departments (20
    basic, 90 departmental, 468 special-project),
    860 from the district governments and bureaus, 80 from the other vertical bodies, 75
    from courts, procuratorate and public institutions, 36 from utilities, 70 from the
    provincial platform (data returned from national and provincial systems) and 24 from
    banks and insurers (account and policy checks for household economic-status
    verification). Every unit provides at least one topic.

Generated topics are built from per-department vocabularies (:mod:`exchange.catalog.vocabulary`,
data in ``exchange/catalog/data/*.yaml``: the things a department administers and what it does
to them: 许可, 备案, 登记, 处罚, 检查, 补贴, 统计 …)
so a name reads like ``道路运输经营许可信息`` or ``最低生活保障补贴发放信息（社会救助）``.
One datum, one source holds over every profile: a generated item carries no element, an
element of its own topic (``<provider>.<slug part>.<field>``, ``is_source: true``), or
re-shares a core topic's identifier element (``person.id_number``,
``enterprise.credit_code`` …) with ``is_source: false``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence

from exchange.catalog.content import find_claim_clashes
from exchange.catalog.generate.candidates import Candidate, candidates
from exchange.catalog.generate.generator import Generator
from exchange.catalog.schemas import CatalogGroup, TopicCreate
from exchange.members.schemas import DepartmentCreate, DepartmentKind

__all__ = [
    "ADDITIONS_2020",
    "CATALOG_2017_VERTICALS",
    "PROFILES",
    "TARGETS_2017",
    "generate_catalog",
]

PROFILES = frozenset({"core", "guangzhou-2017", "platform-2020"})

TARGETS_2017: dict[CatalogGroup, int] = {
    CatalogGroup.basic: 71,
    CatalogGroup.departmental: 699,
    CatalogGroup.special: 1229,
}
PROVIDERS_2017 = 52
TOTAL_2020 = 3722

# Vertical bodies that were among the 2017 catalog's 52 providing departments.
CATALOG_2017_VERTICALS = frozenset({"swj"})

# Topics registered between the 2017 catalog and mid-2020, by who provides them and group.
# The "catalog" row is the 52 providers of guangzhou-2017; the others are unit kinds.
ADDITIONS_2020: dict[str, dict[CatalogGroup, int]] = {
    "catalog": {CatalogGroup.basic: 20, CatalogGroup.departmental: 90, CatalogGroup.special: 468},
    "district": {CatalogGroup.departmental: 470, CatalogGroup.special: 390},
    "vertical": {CatalogGroup.basic: 5, CatalogGroup.departmental: 45, CatalogGroup.special: 30},
    "institution": {CatalogGroup.departmental: 40, CatalogGroup.special: 35},
    "utility": {CatalogGroup.departmental: 20, CatalogGroup.special: 16},
    "provincial": {
        CatalogGroup.basic: 20,
        CatalogGroup.departmental: 25,
        CatalogGroup.special: 25,
    },
    "financial": {CatalogGroup.departmental: 8, CatalogGroup.special: 16},
}


def _providers_2017(units: Sequence[DepartmentCreate]) -> list[str]:
    return [
        u.code
        for u in units
        if u.kind is DepartmentKind.municipal or u.code in CATALOG_2017_VERTICALS
    ]


def _addition_row(unit: DepartmentCreate, catalog: set[str]) -> str:
    return "catalog" if unit.code in catalog else unit.kind.value


def _generate_2017(
    gen: Generator, units: Sequence[DepartmentCreate], core: Sequence[TopicCreate]
) -> list[TopicCreate]:
    providers = _providers_2017(units)
    if len(providers) != PROVIDERS_2017:
        raise ValueError(
            f"guangzhou-2017 needs {PROVIDERS_2017} providing departments (municipal units "
            f"plus {sorted(CATALOG_2017_VERTICALS)}), the units give {len(providers)}"
        )
    allowed = set(providers)
    stray = sorted({t.provider for t in core} - allowed)
    if stray:
        raise ValueError(f"core topics of {stray} cannot be in the guangzhou-2017 catalog")
    rng = random.Random(f"guangzhou-2017:{gen.seed}")
    cover = allowed - {t.provider for t in core}
    chosen: list[Candidate] = []
    # Departmental first: every department has such topics, so coverage is met there.
    for group in (CatalogGroup.departmental, CatalogGroup.basic, CatalogGroup.special):
        need = TARGETS_2017[group] - sum(1 for t in core if t.group is group)
        if need < 0:
            raise ValueError(
                f"core topics hold {TARGETS_2017[group] - need} {group.value} topics, "
                f"more than the {TARGETS_2017[group]} of guangzhou-2017"
            )
        chosen += gen.draw(rng, candidates(gen.units, providers, group), need, cover)
    if cover:
        raise ValueError(f"no topic could be drawn for {sorted(cover)}")
    # Build in catalog order (group, then provider's position) so output reads naturally.
    chosen.sort(key=lambda c: (c.category_head[0], gen.unit_index[c.provider]))
    return [gen.build(rng, c, "2017") for c in chosen]


def _generate_2020_additions(
    gen: Generator, units: Sequence[DepartmentCreate], core: Sequence[TopicCreate]
) -> list[TopicCreate]:
    catalog = set(_providers_2017(units))
    rng = random.Random(f"platform-2020:{gen.seed}")
    rows: dict[str, list[str]] = {}
    for u in units:
        rows.setdefault(_addition_row(u, catalog), []).append(u.code)
    unknown = sorted(set(rows) - set(ADDITIONS_2020))
    if unknown:
        raise ValueError(f"no platform-2020 quota for units of kind {unknown}")
    # Core topics of units outside the 2017 catalog count toward their row's quota.
    row_of = {u.code: _addition_row(u, catalog) for u in units}
    core_counts = Counter((row_of[t.provider], t.group) for t in core)
    cover = {u.code for u in units} - catalog - {t.provider for t in core}
    chosen: list[Candidate] = []
    for row, quota in ADDITIONS_2020.items():
        providers = rows.get(row, [])
        if not providers:
            raise ValueError(f"platform-2020 expects units of kind {row!r}")
        for group in (CatalogGroup.departmental, CatalogGroup.basic, CatalogGroup.special):
            need = quota.get(group, 0) - core_counts[(row, group)]
            if need < 0:
                raise ValueError(
                    f"core topics hold {core_counts[(row, group)]} {group.value} topics of "
                    f"{row} units, more than the {quota.get(group, 0)} of platform-2020"
                )
            if need:
                pool = candidates(gen.units, providers, group)
                chosen += gen.draw(rng, pool, need, cover)
    if cover:
        raise ValueError(f"no topic could be drawn for {sorted(cover)}")
    chosen.sort(key=lambda c: (gen.unit_index[c.provider], c.category_head[0]))
    return [gen.build(rng, c, "2020") for c in chosen]


def generate_catalog(
    profile: str,
    units: list[DepartmentCreate],
    core: list[TopicCreate],
    seed: int,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[TopicCreate]:
    """The catalog of ``profile``: the core topics first, then generated ones.

    Deterministic: the same profile, units, core topics and seed give the same list; another
    seed draws other topics. ``on_progress(done, total)`` is called after each topic so a
    seeding command can show a progress bar. Raises ``ValueError`` for an unknown profile or
    when the units or core topics cannot fit the profile's shape (e.g. more core basic topics
    than the 71 of guangzhou-2017, or a core topic from a district in guangzhou-2017).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    if profile == "core":
        return list(core)
    total = sum(TARGETS_2017.values()) if profile == "guangzhou-2017" else TOTAL_2020
    gen = Generator(units, core, seed, on_progress, total)
    if profile == "guangzhou-2017":
        topics = [*core, *_generate_2017(gen, units, core)]
    else:
        # The 2017 part counts only core topics of its 52 departments; the rest count
        # toward the 2020 additions of their units.
        in_2017 = set(_providers_2017(units))
        core_2017 = [t for t in core if t.provider in in_2017]
        core_later = [t for t in core if t.provider not in in_2017]
        topics = [*core, *_generate_2017(gen, units, core_2017)]
        topics += _generate_2020_additions(gen, units, core_later)
    if len(topics) != total:
        raise ValueError(f"{profile} needs {total} topics, the quotas gave {len(topics)}")
    clashes = find_claim_clashes(topics)
    if clashes:
        c = clashes[0]
        raise ValueError(
            f"element {c.element!r} is sourced by both {topics[c.first].name!r} and "
            f"{topics[c.second].name!r}"
        )
    return topics
