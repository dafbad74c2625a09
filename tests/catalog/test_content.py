"""The declarative catalog content: units.yaml, topics/*.yaml and the loader's refusals."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from exchange.catalog.content import (
    ClaimClash,
    ContentError,
    find_claim_clashes,
    load_core_topics,
    load_units,
)
from exchange.ids import (
    CURRENT_AREAS,
    credit_code_problem,
    make_credit_code,
    org_code_problem,
)
from exchange.members.schemas import DepartmentCreate, DepartmentKind

CATALOG = Path(__file__).resolve().parents[2] / "catalog"

FIXED_CODES = {
    "gaj": ("广州市公安局", DepartmentKind.municipal),
    "scjgj": ("广州市市场监督管理局", DepartmentKind.municipal),
    "mzj": ("广州市民政局", DepartmentKind.municipal),
    "rsj": ("广州市人力资源和社会保障局", DepartmentKind.municipal),
    "gjj": ("广州市住房公积金管理中心", DepartmentKind.municipal),
    "ghzyj": ("广州市规划和自然资源局", DepartmentKind.municipal),
    "swj": ("国家税务总局广州市税务局", DepartmentKind.vertical),
    "wjw": ("广州市卫生健康委员会", DepartmentKind.municipal),
    "ybj": ("广州市医疗保障局", DepartmentKind.municipal),
    "zsj": ("广州市政务服务数据管理局", DepartmentKind.municipal),
}

_GOOD_CREDIT = make_credit_code("11", "440100", "12345678")
# Right alphabet, type and organisation code; only the final check character is wrong.
BAD_CREDIT = _GOOD_CREDIT[:-1] + ("0" if _GOOD_CREDIT[-1] != "0" else "1")

UNITS_YAML = """\
units:
  - code: gaj
    name: 广州市公安局
    kind: municipal
  - code: scjgj
    name: 广州市市场监督管理局
    kind: municipal
"""

HOUSEHOLD = """\
topics:
  - category: "101001001"
    group: basic
    name: 户籍登记信息
    slug: household-registration
    provider: gaj
    abstract: 户籍人口登记信息
    resource_type: interface
    update_cycle: daily
    sharing: {type: unconditional}
    items:
      - {field: id_number, name: 公民身份号码, sharing_type: unconditional,
         element: person.id_number, is_key: true}
      - {field: name, name: 姓名, sharing_type: unconditional, element: person.name}
"""

ENTERPRISE = """\
topics:
  - category: "102001001"
    group: basic
    name: 商事主体基础信息
    slug: business-entities
    provider: scjgj
    abstract: 商事主体登记信息
    resource_type: interface
    update_cycle: daily
    sharing: {type: conditional, conditions: 仅限依法履职使用}
    items:
      - {field: credit_code, name: 统一社会信用代码, sharing_type: conditional,
         element: enterprise.credit_code, is_key: true}
      - {field: legal_id_number, name: 法定代表人身份证号, sharing_type: conditional,
         element: person.id_number, is_source: false}
"""


def write_catalog(root: Path, topics: dict[str, str], units: str = UNITS_YAML) -> Path:
    """A catalog directory with ``units`` and the given topic files."""
    (root / "units.yaml").write_text(units, encoding="utf-8")
    (root / "topics").mkdir()
    for name, text in topics.items():
        (root / "topics" / name).write_text(text, encoding="utf-8")
    return root


# --- the real units.yaml ----------------------------------------------------------------


@pytest.fixture(scope="module")
def real_units() -> list[DepartmentCreate]:
    return load_units(CATALOG)


def test_real_units_are_the_platforms_151_members(real_units: list[DepartmentCreate]) -> None:
    kinds = Counter(u.kind for u in real_units)
    assert len(real_units) == 151
    # 51 municipal bodies plus the tax bureau are the 52 departments of the 2017 catalog.
    assert kinds[DepartmentKind.municipal] == 51
    assert kinds[DepartmentKind.provincial] == 1
    assert kinds[DepartmentKind.district] >= 11
    # The kinds of a provincial platform's registry are the province's (catalog/province).
    city_kinds = set(DepartmentKind) - {
        DepartmentKind.provincial_dept,
        DepartmentKind.city_platform,
    }
    for kind in city_kinds:
        assert kinds[kind] >= 1, f"no unit of kind {kind}"
    assert len({u.code for u in real_units}) == 151


def test_fixed_codes_keep_their_names_and_kinds(real_units: list[DepartmentCreate]) -> None:
    by_code = {u.code: u for u in real_units}
    for code, (name, kind) in FIXED_CODES.items():
        assert by_code[code].name == name
        assert by_code[code].kind is kind


def test_credit_codes_are_valid_and_typed_by_kind(real_units: list[DepartmentCreate]) -> None:
    codes = [u.credit_code for u in real_units]
    assert all(c is not None for c in codes)
    assert len(set(codes)) == len(codes)
    for unit in real_units:
        code = unit.credit_code
        assert code is not None
        assert credit_code_problem(code) is None, unit.code
        assert org_code_problem(code[8:17]) is None, unit.code
        if unit.kind in (DepartmentKind.utility, DepartmentKind.financial):
            assert code[:2] == "91", unit.code
        else:
            assert code[:2] in {"11", "12", "13"}, unit.code


def test_area_codes_follow_gb_t_2260(real_units: list[DepartmentCreate]) -> None:
    districts = [u for u in real_units if u.kind is DepartmentKind.district]
    assert {u.area_code for u in districts} == set(CURRENT_AREAS)
    for unit in districts:
        assert unit.credit_code is not None
        assert unit.credit_code[2:8] == unit.area_code
    for unit in real_units:
        if unit.kind is DepartmentKind.municipal:
            assert unit.area_code == "440100"
    governments = [u for u in districts if u.name.endswith("区人民政府")]
    assert len(governments) == 11


def test_units_have_no_base_url(real_units: list[DepartmentCreate]) -> None:
    assert all(u.base_url is None for u in real_units)


@pytest.mark.skipif(
    not any((CATALOG / "topics").glob("*.yaml")), reason="no core topic files written yet"
)
def test_real_core_topics_load() -> None:
    topics = load_core_topics(CATALOG)
    assert topics
    assert len({t.slug for t in topics if t.slug}) == sum(1 for t in topics if t.slug)


# --- loading fixtures -------------------------------------------------------------------


def test_core_topics_load_in_file_name_order(tmp_path: Path) -> None:
    root = write_catalog(tmp_path, {"scjgj.yaml": ENTERPRISE, "gaj.yaml": HOUSEHOLD})
    topics = load_core_topics(root)
    assert [t.slug for t in topics] == ["household-registration", "business-entities"]
    assert topics[1].items[1].is_source is False


def test_a_second_source_claim_is_a_clash_and_a_re_share_is_not(tmp_path: Path) -> None:
    household, enterprise = load_core_topics(
        write_catalog(tmp_path, {"gaj.yaml": HOUSEHOLD, "scjgj.yaml": ENTERPRISE})
    )
    assert find_claim_clashes([household, enterprise]) == []  # re-shared: is_source false
    first = next(i for i, item in enumerate(household.items) if item.element == "person.id_number")
    claimed = [
        item.model_copy(update={"is_source": True}) if item.element == "person.id_number" else item
        for item in enterprise.items
    ]
    second = next(i for i, item in enumerate(claimed) if item.element == "person.id_number")
    clashing = enterprise.model_copy(update={"items": claimed})
    assert find_claim_clashes([household, clashing]) == [
        ClaimClash("person.id_number", 0, first, 1, second)
    ]


def test_units_given_explicitly_are_used_for_the_provider_check(tmp_path: Path) -> None:
    root = write_catalog(tmp_path, {"gaj.yaml": HOUSEHOLD})
    (root / "units.yaml").unlink()
    units = load_units(CATALOG)
    assert len(load_core_topics(root, units)) == 1


def test_no_topics_directory_means_no_core_topics(tmp_path: Path) -> None:
    shutil.copy(CATALOG / "units.yaml", tmp_path / "units.yaml")
    assert load_core_topics(tmp_path) == []


# --- refusals name file, field and reason ------------------------------------------------


def topics_refusal(root: Path) -> ContentError:
    with pytest.raises(ContentError) as info:
        load_core_topics(root)
    return info.value


def units_refusal(root: Path) -> ContentError:
    with pytest.raises(ContentError) as info:
        load_units(root)
    return info.value


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (
            HOUSEHOLD.replace(
                "sharing_type: unconditional,\n         element: person.id",
                "sharing_type: sometimes,\n         element: person.id",
            ),
            "topics.0.items.0.sharing_type",
            "unconditional",
        ),
        (
            HOUSEHOLD.replace("sharing: {type: unconditional}", "sharing: {type: conditional}"),
            "topics.0.sharing.conditions",
            "conditional topic must state its conditions",
        ),
        (
            HOUSEHOLD.replace(
                "sharing: {type: unconditional}", "sharing: {type: not_shared, legal_basis: 保密法}"
            ),
            "topics.0.items.0.sharing_type",
            "cannot be more open than its topic",
        ),
        (
            HOUSEHOLD.replace("    resource_type: interface\n", ""),
            "topics.0.resource_type",
            "required",
        ),
        (
            HOUSEHOLD.replace('category: "101001001"', 'category: "401001001"'),
            "topics.0.category",
            "pattern",
        ),
        (HOUSEHOLD.replace("field: name,", "field: Name,"), "topics.0.items.1.field", "pattern"),
        (
            HOUSEHOLD.replace("field: name,", "field: id_number,"),
            "topics.0.items.1.field",
            "duplicate item field",
        ),
        (HOUSEHOLD.replace("provider: gaj", "provider: nobody"), "topics.0.provider", "not a unit"),
        (
            HOUSEHOLD.replace("    slug: household", "    colour: red\n    slug: household"),
            "topics.0.colour",
            "unknown field",
        ),
        ("topics: {a: 1}\n", "topics", "must be a list"),
        ("- just a list\n", "topics", "mapping"),
        ("topics: []\nunits: []\n", "units", "only 'topics'"),
    ],
)
def test_broken_topic_files_are_refused(tmp_path: Path, text: str, field: str, reason: str) -> None:
    root = write_catalog(tmp_path, {"gaj.yaml": text})
    err = topics_refusal(root)
    assert err.file == str(root / "topics" / "gaj.yaml")
    assert err.field == field
    assert reason in err.reason
    assert str(err).startswith(f"{err.file}: {field}: ")


def test_invalid_yaml_is_refused_with_its_line(tmp_path: Path) -> None:
    root = write_catalog(tmp_path, {"gaj.yaml": "topics:\n  - name: [unclosed\n"})
    err = topics_refusal(root)
    assert err.file.endswith("gaj.yaml")
    assert err.field == ""
    assert "not valid YAML at line" in err.reason


def test_two_sources_of_one_element_name_both(tmp_path: Path) -> None:
    # The second file claims person.id_number as its own source too.
    thief = ENTERPRISE.replace(
        "element: person.id_number, is_source: false", "element: person.id_number"
    )
    root = write_catalog(tmp_path, {"gaj.yaml": HOUSEHOLD, "scjgj.yaml": thief})
    err = topics_refusal(root)
    assert err.file.endswith("scjgj.yaml")
    assert err.field == "topics.0.items.1.element"
    assert "person.id_number" in err.reason
    assert "gaj.yaml: topics.0.items.0" in err.reason


def test_duplicate_slugs_name_both(tmp_path: Path) -> None:
    copy = ENTERPRISE.replace("business-entities", "household-registration")
    root = write_catalog(tmp_path, {"gaj.yaml": HOUSEHOLD, "scjgj.yaml": copy})
    err = topics_refusal(root)
    assert err.field == "topics.0.slug"
    assert "gaj.yaml: topics.0" in err.reason


@pytest.mark.parametrize(
    ("units", "field", "reason"),
    [
        (
            UNITS_YAML.replace("code: scjgj", "code: gaj"),
            "units.1.code",
            "duplicate unit code 'gaj', already used by units.0",
        ),
        (
            UNITS_YAML.replace("    kind: municipal\n  - code: scjgj", "  - code: scjgj"),
            "units.0.kind",
            "required",
        ),
        (UNITS_YAML.replace("kind: municipal", "kind: federal", 1), "units.0.kind", "federal"),
        (
            UNITS_YAML.replace(
                "    kind: municipal\n  - code: scjgj",
                f'    kind: municipal\n    credit_code: "{BAD_CREDIT}"\n  - code: scjgj',
            ),
            "units.0.credit_code",
            "check character",
        ),
        (UNITS_YAML.replace("code: gaj", "code: GAJ"), "units.0.code", "pattern"),
        ("units:\n  - 42\n", "units.0", "valid dictionary"),
    ],
)
def test_broken_units_are_refused(tmp_path: Path, units: str, field: str, reason: str) -> None:
    root = write_catalog(tmp_path, {}, units=units)
    err = units_refusal(root)
    assert err.file == str(root / "units.yaml")
    assert err.field == field
    assert reason in err.reason


def test_a_missing_units_file_is_refused(tmp_path: Path) -> None:
    err = units_refusal(tmp_path)
    assert err.file.endswith("units.yaml")
    assert "cannot read" in err.reason
