"""The catalog generator: exact shapes per profile, determinism, realism, 一数一源."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from exchange.catalog.content import find_claim_clashes, load_core_topics, load_units
from exchange.catalog.generate import (
    ADDITIONS_2020,
    CATALOG_2017_VERTICALS,
    PROFILES,
    TARGETS_2017,
    generate_catalog,
)
from exchange.catalog.schemas import CatalogGroup, SharingType, TopicCreate
from exchange.members.schemas import DepartmentCreate, DepartmentKind

CATALOG = Path(__file__).resolve().parents[2] / "catalog"
SEED = 20170701
FIRST_DIGIT = {CatalogGroup.basic: "1", CatalogGroup.special: "2", CatalogGroup.departmental: "3"}


def _topic(provider: str, slug: str, group: str, items: list[dict[str, Any]]) -> TopicCreate:
    return TopicCreate.model_validate(
        {
            "category": {"basic": "101001001", "departmental": "301001001"}[group],
            "group": group,
            "name": f"{slug}信息",
            "slug": slug,
            "provider": provider,
            "abstract": "测试用核心主题",
            "resource_type": "interface",
            "update_cycle": "daily",
            "sharing": {"type": "unconditional"},
            "items": items,
            "api_path": f"/topics/{slug}",
        }
    )


# A small core: the sources of the person and enterprise identifiers, and a departmental topic.
CORE = [
    _topic(
        "gaj",
        "household-registration",
        "basic",
        [
            {
                "field": "id_number",
                "name": "公民身份号码",
                "sharing_type": "unconditional",
                "element": "person.id_number",
                "is_key": True,
            },
            {
                "field": "name",
                "name": "姓名",
                "sharing_type": "unconditional",
                "element": "person.name",
            },
        ],
    ),
    _topic(
        "scjgj",
        "business-entities",
        "basic",
        [
            {
                "field": "credit_code",
                "name": "统一社会信用代码",
                "sharing_type": "unconditional",
                "element": "enterprise.credit_code",
                "is_key": True,
            },
        ],
    ),
    _topic(
        "swj",
        "tax-registration",
        "departmental",
        [
            {
                "field": "credit_code",
                "name": "统一社会信用代码",
                "sharing_type": "unconditional",
                "element": "enterprise.credit_code",
                "is_source": False,
            },
            {
                "field": "tax_authority",
                "name": "主管税务机关",
                "sharing_type": "unconditional",
                "element": "tax.registration.tax_authority",
            },
        ],
    ),
]


@pytest.fixture(scope="module")
def units() -> list[DepartmentCreate]:
    return load_units(CATALOG)


@pytest.fixture(scope="module")
def gz2017(units: list[DepartmentCreate]) -> list[TopicCreate]:
    return generate_catalog("guangzhou-2017", units, CORE, SEED)


@pytest.fixture(scope="module")
def p2020(units: list[DepartmentCreate]) -> list[TopicCreate]:
    return generate_catalog("platform-2020", units, CORE, SEED)


def dumps(topics: list[TopicCreate]) -> list[dict[str, Any]]:
    return [t.model_dump(mode="json") for t in topics]


# --- shapes -----------------------------------------------------------------------------


def test_profiles_are_the_three_documented() -> None:
    assert {"core", "guangzhou-2017", "platform-2020"} == PROFILES


def test_unknown_profile_is_refused(units: list[DepartmentCreate]) -> None:
    with pytest.raises(ValueError, match="unknown profile 'platform-2030'"):
        generate_catalog("platform-2030", units, CORE, SEED)


def test_core_profile_is_just_the_core(units: list[DepartmentCreate]) -> None:
    assert generate_catalog("core", units, CORE, SEED) == CORE


def test_guangzhou_2017_has_the_catalogs_exact_shape(
    units: list[DepartmentCreate], gz2017: list[TopicCreate]
) -> None:
    assert len(gz2017) == 1999
    assert gz2017[: len(CORE)] == CORE
    groups = Counter(t.group for t in gz2017)
    assert groups == {
        CatalogGroup.basic: 71,
        CatalogGroup.departmental: 699,
        CatalogGroup.special: 1229,
    }
    assert sum(TARGETS_2017.values()) == 1999
    providers = {t.provider for t in gz2017}
    expected = {
        u.code
        for u in units
        if u.kind is DepartmentKind.municipal or u.code in CATALOG_2017_VERTICALS
    }
    assert len(providers) == 52
    assert providers == expected
    assert "swj" in providers


def test_platform_2020_has_3722_topics_from_all_151_units(
    units: list[DepartmentCreate], p2020: list[TopicCreate]
) -> None:
    assert len(p2020) == 3722
    assert p2020[: len(CORE)] == CORE
    per_unit = Counter(t.provider for t in p2020)
    assert set(per_unit) == {u.code for u in units}
    assert min(per_unit.values()) >= 1
    assert sum(sum(row.values()) for row in ADDITIONS_2020.values()) == 3722 - 1999


def test_platform_2020_extends_the_2017_catalog(
    gz2017: list[TopicCreate], p2020: list[TopicCreate]
) -> None:
    assert dumps(p2020[:1999]) == dumps(gz2017)
    assert all(t.published_on is not None and t.published_on.year >= 2018 for t in p2020[1999:])


# --- determinism ------------------------------------------------------------------------


def test_same_seed_same_catalog(units: list[DepartmentCreate], p2020: list[TopicCreate]) -> None:
    again = generate_catalog("platform-2020", units, CORE, SEED)
    assert dumps(again) == dumps(p2020)


def test_another_seed_another_catalog(
    units: list[DepartmentCreate], gz2017: list[TopicCreate]
) -> None:
    other = generate_catalog("guangzhou-2017", units, CORE, SEED + 1)
    assert len(other) == 1999
    assert Counter(t.group for t in other) == Counter(t.group for t in gz2017)
    assert {t.name for t in other} != {t.name for t in gz2017}


# --- one datum, one source --------------------------------------------------------------


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_one_datum_one_source_holds_over_each_profile(
    units: list[DepartmentCreate], profile: str
) -> None:
    topics = generate_catalog(profile, units, CORE, SEED)
    assert find_claim_clashes(topics) == []
    sources = Counter(
        it.element for t in topics for it in t.items if it.element is not None and it.is_source
    )
    assert all(n == 1 for n in sources.values())


def test_generated_items_reshare_core_identifiers_or_own_their_elements(
    p2020: list[TopicCreate],
) -> None:
    core_sources = {
        it.element for t in CORE for it in t.items if it.element is not None and it.is_source
    }
    reshared: Counter[str] = Counter()
    for topic in p2020[len(CORE) :]:
        assert topic.slug is not None
        own_prefix = f"{topic.provider.replace('-', '_')}."
        for item in topic.items:
            if item.element is None:
                continue
            if item.is_source:
                assert item.element.startswith(own_prefix), item.element
                assert item.element.endswith(f".{item.field}")
            else:
                assert item.element in core_sources
                reshared[item.element] += 1
    assert reshared["person.id_number"] > 100
    assert reshared["enterprise.credit_code"] > 100


# --- realism ----------------------------------------------------------------------------


def test_every_generated_topic_is_valid_and_well_formed(p2020: list[TopicCreate]) -> None:
    generated = p2020[len(CORE) :]
    slugs = [t.slug for t in p2020]
    assert len(set(slugs)) == len(slugs)
    assert len({(t.provider, t.name) for t in p2020}) == len(p2020)
    for topic in generated:
        # Round-trips through the registrant's schema: what the seeder will POST.
        assert TopicCreate.model_validate(topic.model_dump()) == topic
        assert topic.api_path is None
        assert topic.category[0] == FIRST_DIGIT[topic.group]
        assert 3 <= len(topic.items) <= 25
        assert re.search(r"[\u4e00-\u9fff]", topic.name)
        assert all(re.search(r"[\u4e00-\u9fff]", it.name) for it in topic.items)
        assert topic.abstract.endswith("更新。")


def test_categories_are_unique_among_generated_topics(p2020: list[TopicCreate]) -> None:
    categories = [t.category for t in p2020[len(CORE) :]]
    assert len(set(categories)) == len(categories)


def test_sharing_mix_looks_like_a_real_catalog(gz2017: list[TopicCreate]) -> None:
    def share(group: CatalogGroup, kind: SharingType) -> float:
        topics = [t for t in gz2017 if t.group is group]
        return sum(t.sharing.type is kind for t in topics) / len(topics)

    assert share(CatalogGroup.basic, SharingType.unconditional) > 0.7
    assert share(CatalogGroup.departmental, SharingType.conditional) > 0.55
    not_shared = sum(t.sharing.type is SharingType.not_shared for t in gz2017) / len(gz2017)
    assert 0.01 < not_shared < 0.1
    for topic in gz2017:
        if topic.sharing.type is SharingType.not_shared:
            assert "《" in (topic.sharing.legal_basis or "")
        if topic.sharing.type is SharingType.conditional:
            assert topic.sharing.conditions
    assert len({t.resource_type for t in gz2017}) == 3
    assert len({t.update_cycle for t in gz2017}) >= 6


def test_names_come_from_department_vocabularies(p2020: list[TopicCreate]) -> None:
    names = {(t.provider, t.name.split("（")[0]) for t in p2020}
    assert ("jtj", "道路运输经营许可信息") in names
    assert ("jtj", "出租汽车驾驶员从业资格信息") in names
    # District units name their topics after the district.
    assert all(t.name.startswith("越秀区") for t in p2020 if t.provider == "yuexiu-mzj")
    special = [t for t in p2020 if t.group is CatalogGroup.special]
    assert all(t.name.endswith("）") and t.tags for t in special)


# --- refusals and progress --------------------------------------------------------------


def test_too_many_core_basic_topics_are_refused(units: list[DepartmentCreate]) -> None:
    many = [
        _topic(
            "gaj",
            f"basic-{i}",
            "basic",
            [{"field": "x", "name": "项", "sharing_type": "unconditional"}],
        )
        for i in range(72)
    ]
    with pytest.raises(ValueError, match="more than the 71"):
        generate_catalog("guangzhou-2017", units, many, SEED)


def test_a_district_core_topic_cannot_be_in_the_2017_catalog(
    units: list[DepartmentCreate],
) -> None:
    stray = [
        _topic(
            "tianhe",
            "tianhe-grid",
            "departmental",
            [{"field": "x", "name": "项", "sharing_type": "unconditional"}],
        )
    ]
    with pytest.raises(ValueError, match="tianhe"):
        generate_catalog("guangzhou-2017", units, stray, SEED)
    # The same topic fits platform-2020, which has every unit.
    assert len(generate_catalog("platform-2020", units, stray, SEED)) == 3722


def test_progress_is_reported_up_to_the_total(units: list[DepartmentCreate]) -> None:
    seen: list[tuple[int, int]] = []
    generate_catalog(
        "guangzhou-2017", units, CORE, SEED, on_progress=lambda d, t: seen.append((d, t))
    )
    assert seen[0] == (len(CORE) + 1, 1999)
    assert seen[-1] == (1999, 1999)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.skipif(
    not any((CATALOG / "topics").glob("*.yaml")), reason="no core topic files written yet"
)
@pytest.mark.parametrize("profile", ["guangzhou-2017", "platform-2020"])
def test_real_core_content_expands_to_each_profile(
    units: list[DepartmentCreate], profile: str
) -> None:
    core = load_core_topics(CATALOG, units)
    topics = generate_catalog(profile, units, core, SEED)
    assert len(topics) == {"guangzhou-2017": 1999, "platform-2020": 3722}[profile]
    assert topics[: len(core)] == core
    assert find_claim_clashes(topics) == []


def test_withheld_details_can_be_verified(p2020: list[TopicCreate]) -> None:
    """A not-shared detail of a generated topic is verifiable (核验): confirmed, never
    disclosed; a key and anything shared are not flagged."""
    generated = p2020[len(CORE) :]
    flagged = [(t, i) for t in generated for i in t.items if i.verifiable]
    assert flagged
    assert all(i.sharing_type == "not_shared" and not i.is_key for _, i in flagged)
    withheld = [i for t in generated for i in t.items if i.sharing_type == "not_shared"]
    assert all(i.verifiable for i in withheld if not i.is_key)


def test_core_content_marks_the_items_banks_verify(units: list[DepartmentCreate]) -> None:
    core = {t.slug: t for t in load_core_topics(CATALOG, units)}
    verifiable = {
        slug: {i.field for i in t.items if i.verifiable} for slug, t in core.items() if slug
    }
    assert {"name", "registered_address"} <= verifiable["household-registration"]
    assert {"total_paid", "arrears"} <= verifiable["tax-paid"]
    assert "contribution_base" in verifiable["social-insurance-enrolment"]
