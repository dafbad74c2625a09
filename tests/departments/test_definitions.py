"""services/ definitions: loading, refusal of bad files, and agreement with the catalog."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from exchange.catalog.schemas import ResourceType, SharingType, TopicCreate
from exchange.departments.definitions import (
    DepartmentDefinition,
    load_definition,
    load_definitions,
)
from exchange.documents import ContentError

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"gaj", "scjgj", "mzj", "rsj", "gjj", "ghzyj", "swj", "wjw", "zsj"}


def _catalog() -> list[TopicCreate]:
    topics = []
    for path in sorted((ROOT / "catalog" / "topics").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8"))["topics"]:
            topic = TopicCreate.model_validate(entry)
            assert topic.provider == path.stem, f"{path.name}: {topic.slug} has another provider"
            topics.append(topic)
    return topics


def test_every_required_department_is_defined(
    definitions: dict[str, DepartmentDefinition],
) -> None:
    assert set(definitions) >= REQUIRED
    assert definitions["gaj"].name == "广州市公安局"
    assert definitions["zsj"].name == "广州市政务服务数据管理局"


def test_definition_fields_match_catalog_items_both_ways(
    definitions: dict[str, DepartmentDefinition],
) -> None:
    # A core topic without an api_path is served by the exchange itself (e.g. the credit
    # lists, /api/v1/credit/lists), not by a mock department.
    catalog = {(t.provider, t.slug): t for t in _catalog() if t.api_path}
    served = {(c, t.slug) for c, d in definitions.items() for t in d.topics}
    assert served == set(catalog)
    for (code, slug), topic in catalog.items():
        served_topic = definitions[code].topic(slug)
        assert served_topic is not None
        assert set(served_topic.fields) == {i.field for i in topic.items}, slug
        keys = [i.field for i in topic.items if i.is_key]
        assert keys == [served_topic.key], slug
        assert topic.api_path == f"/topics/{slug}"
        assert (topic.resource_type is ResourceType.table) == served_topic.export, slug


def test_each_department_offers_a_bulk_table(definitions: dict[str, DepartmentDefinition]) -> None:
    for code, d in definitions.items():
        assert any(t.export for t in d.topics), code


def test_one_datum_one_source() -> None:
    sources: dict[str, list[str]] = defaultdict(list)
    carried: set[str] = set()
    for topic in _catalog():
        for item in topic.items:
            if item.element is None:
                continue
            carried.add(item.element)
            if item.is_source:
                sources[item.element].append(f"{topic.provider}/{topic.slug}")
    for element in carried:
        assert len(sources[element]) == 1, f"{element}: sources {sources[element]}"
    for element, where in sources.items():
        if element.startswith("person."):
            assert where[0].startswith("gaj/"), element
        if element.startswith("enterprise."):
            assert where[0].startswith("scjgj/"), element


def test_sharing_types_are_realistic() -> None:
    topics = {t.slug: t for t in _catalog()}
    assert topics["household-registration"].sharing.type is SharingType.unconditional
    assert topics["enterprise-registration"].sharing.type is SharingType.unconditional
    photo = next(i for i in topics["household-registration"].items if i.field == "photo_ref")
    assert photo.sharing_type is SharingType.conditional
    secret = [t for t in topics.values() if t.sharing.type is SharingType.not_shared]
    assert secret
    assert all(t.sharing.legal_basis for t in secret)
    assert any("税收征收管理法" in (t.sharing.legal_basis or "") for t in secret)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """
code: demo
name: 广州市示例局
topics:
  - slug: people
    name: 示例人口信息
    generator: household_registration
    key: id_number
    fields: [id_number, name]
"""


def test_a_new_department_is_just_a_file(tmp_path: Path) -> None:
    _write(tmp_path, "demo.yaml", GOOD)
    loaded = load_definitions(tmp_path)
    assert loaded["demo"].topics[0].key_type == "id_number"


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (
            GOOD.replace("household_registration", "crystal_ball"),
            "topics.0.generator",
            "unknown generator",
        ),
        (
            GOOD.replace("[id_number, name]", "[id_number, name, shoe_size]"),
            "topics.0.fields.2",
            "not a field",
        ),
        (GOOD.replace("key: id_number", "key: credit_code"), "topics.0.key", "looks records up"),
        (GOOD.replace("[id_number, name]", "[name]"), "topics.0.fields", "must be returned"),
        (GOOD.replace("code: demo", "code: other"), "code", "match the file name"),
        (GOOD + "faults: {error_rate: 2}\n", "faults.error_rate", "less than or equal"),
        (GOOD + "colour: red\n", "colour", "unknown field"),
        (GOOD.replace("name: 广州市示例局\n", ""), "name", "required field is missing"),
        ("code: [unclosed", "", "not valid YAML at line"),
        ("- just\n- a list\n", "", "mapping"),
    ],
)
def test_invalid_files_are_refused_with_file_field_and_reason(
    tmp_path: Path, text: str, field: str, reason: str
) -> None:
    path = _write(tmp_path, "demo.yaml", text)
    with pytest.raises(ContentError) as caught:
        load_definition(path)
    err = caught.value
    assert err.file == str(path)
    assert err.field == field
    assert reason in err.reason
    assert str(path) in str(err)
    assert field in str(err)


def test_duplicate_slugs_are_refused(tmp_path: Path) -> None:
    text = GOOD + GOOD[GOOD.index("  - slug") :]
    with pytest.raises(ContentError, match=r"topics\.1\.slug: duplicate"):
        load_definition(_write(tmp_path, "demo.yaml", text))


def test_an_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match=r"no \*\.yaml"):
        load_definitions(tmp_path)
