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

import datetime as dt
import functools
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from exchange.catalog.content import find_source_conflicts
from exchange.catalog.schemas import CatalogGroup, TopicCreate
from exchange.catalog.vocabulary import Action, ItemSpec, Subject, load_vocabulary
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

# District bureaus reuse the vocabulary of their municipal counterpart ("yuexiu-wjj" → wjw).
_BUREAU_VOCABULARY = {"wjj": "wjw", "zsj": "zsj", "mzj": "mzj", "rsj": "rsj", "scjgj": "scjgj"}

# Basic-information domains (项 of a 1xxxxxxxx category).
_DOMAIN_POPULATION = "01"
_DOMAIN_ENTITY = "02"
_DOMAIN_GEOGRAPHY = "03"
_DOMAIN_CREDIT = "04"
_DOMAIN_LICENCE = "05"


# Generated identifiers re-share the core element of the same name when a core topic sources
# one, so person and enterprise keys keep a single source (一数一源).
_RESHARED_FIELDS = ("id_number", "credit_code")
_RESHARE_PREFERENCE = ("person", "enterprise", "legal_entity", "entity")

# Why a not-shared topic may not be shared: the laws a provider would cite.
_STATISTICS_SECRECY = (
    "《中华人民共和国统计法》第二十五条：能够识别或者推断单个统计调查对象身份的资料不得对外提供"
)
_LEGAL_BASIS: dict[str, str] = {
    "tjj": _STATISTICS_SECRECY,
    "dcd": _STATISTICS_SECRECY,
    "swj": "《中华人民共和国税收征收管理法》第八条：税务机关应当依法为纳税人的情况保密",
    "wjw": "《中华人民共和国执业医师法》第二十二条、《医疗机构病历管理规定》第六条",
    "cdc": "《中华人民共和国传染病防治法》第十二条：不得泄露涉及个人隐私的有关信息、资料",
    "gaj": "《中华人民共和国居民身份证法》第六条、第十九条：公民个人信息应当予以保密",
    "rmyh": "《中华人民共和国中国人民银行法》第三十四条、《征信业管理条例》第十四条",
    "jcy": "《中华人民共和国刑事诉讼法》第一百五十二条、《人民检察院刑事诉讼规则》",
    "zy": "《中华人民共和国民事诉讼法》第六十八条：涉及个人隐私的证据应当保密",
}
_LEGAL_BASIS_BY_KIND: dict[DepartmentKind, str] = {
    DepartmentKind.financial: "《中华人民共和国商业银行法》第二十九条：为存款人保密",
}
_LEGAL_BASIS_DEFAULT = (
    "《中华人民共和国保守国家秘密法》第九条、《政务信息资源共享管理暂行办法》"
    "（国发〔2016〕51号）第九条"
)

_CONDITIONS = (
    "仅向依法履行{duty}职责的部门共享，使用前须经{short}审核同意",
    "需说明使用事由和法律依据，经{short}审核后按需共享，不得向第三方提供",
    "仅提供核验比对结果；明细数据须经{short}同意并限于{duty}用途",
    "涉及个人隐私的信息项须取得当事人书面授权，仅用于{duty}",
    "按“谁使用、谁负责”原则使用，仅限{duty}，使用情况接受{short}监督",
)
_DUTIES = (
    "行政审批",
    "行政执法",
    "社会救助审核",
    "信用监管",
    "公共服务",
    "统计分析",
    "资格审查",
    "业务协同",
)

_CYCLE_LABEL = {
    "irregular": "不定时",
    "realtime": "实时",
    "daily": "每日",
    "weekly": "每周",
    "monthly": "每月",
    "quarterly": "每季度",
    "semiannual": "每半年",
    "annual": "每年",
}

# (value, weight) tables: what a real catalog of each group looks like.
_SHARING_WEIGHTS: dict[CatalogGroup, tuple[tuple[str, int], ...]] = {
    CatalogGroup.basic: (("unconditional", 86), ("conditional", 14)),
    CatalogGroup.departmental: (("unconditional", 22), ("conditional", 73), ("not_shared", 5)),
    CatalogGroup.special: (("unconditional", 40), ("conditional", 57), ("not_shared", 3)),
}
_RESOURCE_WEIGHTS: dict[CatalogGroup, tuple[tuple[str, int], ...]] = {
    CatalogGroup.basic: (("interface", 60), ("table", 36), ("file", 4)),
    CatalogGroup.departmental: (("interface", 35), ("table", 45), ("file", 20)),
    CatalogGroup.special: (("interface", 45), ("table", 45), ("file", 10)),
}
_CYCLE_WEIGHTS: dict[CatalogGroup, tuple[tuple[str, int], ...]] = {
    CatalogGroup.basic: (("realtime", 30), ("daily", 55), ("weekly", 5), ("monthly", 10)),
    CatalogGroup.departmental: (
        ("realtime", 10),
        ("daily", 30),
        ("weekly", 10),
        ("monthly", 20),
        ("quarterly", 8),
        ("annual", 7),
        ("irregular", 15),
    ),
    CatalogGroup.special: (
        ("realtime", 15),
        ("daily", 40),
        ("weekly", 10),
        ("monthly", 20),
        ("irregular", 15),
    ),
}
_STATS_CYCLES = (("monthly", 40), ("quarterly", 30), ("semiannual", 5), ("annual", 25))
_FORMATS = {
    "interface": ("JSON", "JSON", "XML"),
    "table": ("CSV", "XLSX", "DBF"),
    "file": ("PDF", "OFD", "ZIP"),
}
_METHODS = {
    "interface": (("interface",), ("interface", "online_query")),
    "table": (("front_end_processor",), ("front_end_processor", "bulk_download")),
    "file": (("bulk_download",), ("online_query", "bulk_download")),
}
_SCOPES = ("administrative_basis", "work_reference", "data_verification", "business_collaboration")
_VARIANTS = ("（增量）", "（全量）", "（历史）", "（汇总）")

_DATES = {"2017": (dt.date(2016, 1, 4), 660), "2020": (dt.date(2018, 1, 2), 900)}


@functools.cache
def _topic_name(letter: str, obj: str) -> str:
    """道路运输经营 + 许可 → 道路运输经营许可信息; 出租汽车驾驶员从业资格 + 证照 → …资格信息."""
    action = _action(letter)
    if obj.endswith(action.whole):
        return obj + "信息"
    return obj + action.suffix


def _pick(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    values = [v for v, _ in table]
    return rng.choices(values, weights=[w for _, w in table])[0]


@dataclass(frozen=True, slots=True)
class _Entry:
    """A vocabulary entry as the generator draws from it."""

    obj: str
    actions: str  # letters of the actions, e.g. "PIX"
    subject: Subject
    domain: str  # "" or a basic-information domain 01..03


@functools.cache
def _entries() -> dict[str, tuple[_Entry, ...]]:
    vocabulary = load_vocabulary()
    return {
        key: tuple(_Entry(e.object, vocabulary.letters(e), e.about, e.domain) for e in entries)
        for key, entries in vocabulary.entries.items()
    }


def _action(letter: str) -> Action:
    return load_vocabulary().actions[letter]


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A topic that could be generated: enough to name it; built only when drawn."""

    provider: str
    group: CatalogGroup
    name: str
    obj: str
    action: str  # an action letter
    subject: Subject
    category_head: str  # 类 + 项, e.g. "105" or "212"
    project: str  # "" unless special-project


class _Generator:
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
        self.core_elements = _core_identifiers(core)

    # --- candidates -------------------------------------------------------------------

    def _vocabulary_key(self, unit: DepartmentCreate) -> str:
        if unit.code in _entries():
            return unit.code
        suffix = unit.code.rsplit("-", 1)[-1]
        if "-" in unit.code and suffix in _BUREAU_VOCABULARY:
            return _BUREAU_VOCABULARY[suffix]
        if unit.kind is DepartmentKind.district:
            return "district"
        raise ValueError(f"unit {unit.code!r} has no vocabulary to generate topics from")

    def _prefix(self, unit: DepartmentCreate) -> str:
        """District units name their topics after the district: 越秀区最低生活保障信息."""
        if unit.kind is not DepartmentKind.district:
            return ""
        short = unit.short_name or unit.name
        return short[: short.index("区") + 1] if "区" in short else ""

    def candidates(self, providers: Iterable[str], group: CatalogGroup) -> list[_Candidate]:
        """Every topic ``providers`` could offer in ``group``, in a stable order."""
        out: list[_Candidate] = []
        for code in providers:
            unit = self.units[code]
            key = self._vocabulary_key(unit)
            prefix = self._prefix(unit)
            entries = _entries()[key]
            if group is CatalogGroup.basic:
                out.extend(self._basic(unit, prefix, entries))
            elif group is CatalogGroup.departmental:
                for e in entries:
                    for letter in e.actions:
                        if e.domain and letter in "IRC":
                            continue  # basic information, drawn into the basic group
                        name = prefix + _topic_name(letter, e.obj)
                        head = f"3{_action(letter).index:02d}"
                        out.append(
                            _Candidate(code, group, name, e.obj, letter, e.subject, head, "")
                        )
            else:
                for p_index, project in enumerate(load_vocabulary().projects, start=1):
                    if project.members and key not in project.members:
                        continue
                    for e in entries:
                        for letter in e.actions:
                            name = f"{prefix}{_topic_name(letter, e.obj)}（{project.name}）"
                            out.append(
                                _Candidate(
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

    def _basic(
        self, unit: DepartmentCreate, prefix: str, entries: Sequence[_Entry]
    ) -> list[_Candidate]:
        """Basic information: flagged objects, e-licences (电子证照) and 双公示 records."""
        basic = CatalogGroup.basic
        out: list[_Candidate] = []
        has_permit = has_penalty = False
        for e in entries:
            has_permit |= "P" in e.actions
            has_penalty |= "X" in e.actions
            for letter in e.actions:
                name = prefix + _topic_name(letter, e.obj)
                if e.domain and letter in "IRC":
                    out.append(
                        _Candidate(
                            unit.code, basic, name, e.obj, letter, e.subject, f"1{e.domain}", ""
                        )
                    )
                if letter == "C" and "电子证照" not in e.obj:
                    licence = name.removesuffix("信息") + "电子证照信息"
                    out.append(
                        _Candidate(
                            unit.code,
                            basic,
                            licence,
                            e.obj,
                            "C",
                            e.subject,
                            f"1{_DOMAIN_LICENCE}",
                            "",
                        )
                    )
        short = unit.short_name or unit.name
        if has_permit:
            out.append(
                _Candidate(
                    unit.code,
                    basic,
                    f"{short}行政许可信息（双公示）",
                    "行政许可",
                    "P",
                    "entity",
                    f"1{_DOMAIN_CREDIT}",
                    "",
                )
            )
        if has_penalty:
            out.append(
                _Candidate(
                    unit.code,
                    basic,
                    f"{short}行政处罚信息（双公示）",
                    "行政处罚",
                    "X",
                    "entity",
                    f"1{_DOMAIN_CREDIT}",
                    "",
                )
            )
        return out

    # --- drawing ----------------------------------------------------------------------

    def draw(
        self,
        rng: random.Random,
        pool: list[_Candidate],
        count: int,
        cover: set[str],
    ) -> list[_Candidate]:
        """``count`` candidates with unused names, first one for each provider in ``cover``.

        Covered providers are removed from ``cover``. When the vocabulary runs out, names
        get a variant suffix (增量/全量/历史/汇总), as real catalogs split big resources.
        """
        rng.shuffle(pool)
        chosen: list[_Candidate] = []

        def take(c: _Candidate) -> None:
            self.used_names.add((c.provider, c.name))
            cover.discard(c.provider)
            chosen.append(c)

        for c in pool:
            if len(chosen) >= count:
                break
            if c.provider in cover and (c.provider, c.name) not in self.used_names:
                take(c)
        for variant in ("", *_VARIANTS):
            for c in pool:
                if len(chosen) >= count:
                    return chosen
                v = (
                    c
                    if not variant
                    else _Candidate(
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

    def build(self, rng: random.Random, c: _Candidate, era: str) -> TopicCreate:
        """A complete, valid topic for candidate ``c`` published in ``era`` (2017 or 2020)."""
        unit = self.units[c.provider]
        action = _action(c.action)
        short = unit.short_name or unit.name
        slug = self._slug(c.provider, action.slug)
        element_stem = f"{c.provider.replace('-', '_')}.{slug.removeprefix(c.provider + '-')}"
        element_stem = element_stem.replace("-", "_")

        sharing_type = _pick(rng, _SHARING_WEIGHTS[c.group])
        if c.action == "T":
            # Aggregates carry no personal data; they are rarely withheld.
            sharing_type = "unconditional" if rng.random() < 0.6 else "conditional"
        resource_type = _pick(rng, _RESOURCE_WEIGHTS[c.group])
        if c.action == "T" and resource_type == "interface":
            resource_type = "table"
        cycle = _pick(rng, _STATS_CYCLES if c.action == "T" else _CYCLE_WEIGHTS[c.group])

        items = self._items(rng, c, action, sharing_type, element_stem)
        sharing: dict[str, Any] = {
            "type": sharing_type,
            "methods": list(rng.choice(_METHODS[resource_type])),
            "usage_scopes": sorted(rng.sample(_SCOPES, rng.randint(1, 3)), key=_SCOPES.index),
        }
        if sharing_type == "conditional":
            sharing["conditions"] = rng.choice(_CONDITIONS).format(
                duty=rng.choice(_DUTIES), short=short
            )
        elif sharing_type == "not_shared":
            sharing["legal_basis"] = _LEGAL_BASIS.get(
                c.provider.rsplit("-", 1)[-1],
                _LEGAL_BASIS_BY_KIND.get(unit.kind, _LEGAL_BASIS_DEFAULT),
            )
            sharing["usage_scopes"] = []
        open_type = "closed"
        if sharing_type != "not_shared" and c.action in "TDPX" and rng.random() < 0.35:
            open_type = "open"

        names = "、".join(str(it["name"]) for it in items[:4])
        lead = f"为支撑{c.project}专项应用，" if c.project else ""
        abstract = (
            f"{lead}{unit.name}{action.doing}的{c.name.split('（')[0]}，"
            f"包括{names}等{len(items)}项，{_CYCLE_LABEL[cycle]}更新。"
        )
        start, span = _DATES[era]
        tags = [action.label] + ([c.project] if c.project else [])
        raw: dict[str, Any] = {
            "category": self._category(c),
            "group": c.group.value,
            "name": c.name,
            "slug": slug,
            "provider": c.provider,
            "abstract": abstract,
            "format": rng.choice(_FORMATS[resource_type]),
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

    def _category(self, c: _Candidate) -> str:
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
        c: _Candidate,
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
            if spec.field in _RESHARED_FIELDS:
                # A person's or entity's identifier is never this topic's own datum: it
                # re-shares the core source, or carries no element when there is none.
                if spec.field in self.core_elements:
                    item["element"] = self.core_elements[spec.field]
                    item["is_source"] = False
            elif spec.key or (own_detail and rng.random() < 0.2):
                item["element"] = f"{element_stem}.{spec.field}"
                item["is_source"] = True
            if spec.key and (spec.field in _RESHARED_FIELDS or spec in action.items):
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


def _core_identifiers(core: Sequence[TopicCreate]) -> dict[str, str]:
    """Core elements generated identifier items re-share, by item field."""
    sourced = sorted(
        {it.element for t in core for it in t.items if it.element is not None and it.is_source}
    )
    out: dict[str, str] = {}
    for fld in _RESHARED_FIELDS:
        matches = [e for e in sourced if e.rsplit(".", 1)[-1] == fld]

        def rank(element: str) -> tuple[int, str]:
            head = element.split(".", 1)[0]
            order = _RESHARE_PREFERENCE.index(head) if head in _RESHARE_PREFERENCE else 99
            return order, element

        if matches:
            out[fld] = min(matches, key=rank)
    return out


def _providers_2017(units: Sequence[DepartmentCreate]) -> list[str]:
    return [
        u.code
        for u in units
        if u.kind is DepartmentKind.municipal or u.code in CATALOG_2017_VERTICALS
    ]


def _addition_row(unit: DepartmentCreate, catalog: set[str]) -> str:
    return "catalog" if unit.code in catalog else unit.kind.value


def _generate_2017(
    gen: _Generator, units: Sequence[DepartmentCreate], core: Sequence[TopicCreate]
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
    chosen: list[_Candidate] = []
    # Departmental first: every department has such topics, so coverage is met there.
    for group in (CatalogGroup.departmental, CatalogGroup.basic, CatalogGroup.special):
        need = TARGETS_2017[group] - sum(1 for t in core if t.group is group)
        if need < 0:
            raise ValueError(
                f"core topics hold {TARGETS_2017[group] - need} {group.value} topics, "
                f"more than the {TARGETS_2017[group]} of guangzhou-2017"
            )
        chosen += gen.draw(rng, gen.candidates(providers, group), need, cover)
    if cover:
        raise ValueError(f"no topic could be drawn for {sorted(cover)}")
    # Build in catalog order (group, then provider's position) so output reads naturally.
    chosen.sort(key=lambda c: (c.category_head[0], gen.unit_index[c.provider]))
    return [gen.build(rng, c, "2017") for c in chosen]


def _generate_2020_additions(
    gen: _Generator, units: Sequence[DepartmentCreate], core: Sequence[TopicCreate]
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
    chosen: list[_Candidate] = []
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
                pool = gen.candidates(providers, group)
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
    gen = _Generator(units, core, seed, on_progress, total)
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
    conflicts = find_source_conflicts(topics)
    if conflicts:
        c = conflicts[0]
        raise ValueError(
            f"element {c.element!r} is sourced by both {topics[c.first].name!r} and "
            f"{topics[c.second].name!r}"
        )
    return topics
