"""The generator's vocabulary files: loaded by the catalog's one YAML loader, refused with a
ContentError naming file and field when they do not hold together."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exchange.catalog.content import ContentError
from exchange.catalog.vocabulary import DATA_DIR, load_vocabulary


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A copy of the shipped vocabulary to break."""
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def edit(file: Path, old: str, new: str) -> None:
    text = file.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {file.name}"
    file.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_shipped_vocabulary_loads() -> None:
    vocabulary = load_vocabulary()
    assert set(vocabulary.actions) == set("IPFRXJSTCDAQY")
    assert {a.slug for a in vocabulary.actions.values()} >= {"permit", "penalty", "statistics"}
    entry = vocabulary.entries["jtj"][0]
    assert (entry.object, vocabulary.letters(entry), entry.about) == (
        "道路运输经营许可",
        "PIX",
        "entity",
    )
    household = next(e for e in vocabulary.entries["gaj"] if e.object == "户籍人口")
    assert (household.about, household.domain) == ("person", "01")
    assert vocabulary.projects[0].name == "居民家庭经济状况核对"
    assert "mzj" in vocabulary.projects[0].members
    assert not vocabulary.projects[-1].members  # a general project: every department
    assert [s.field for s in vocabulary.tail][-1] == "remarks"


def test_an_unknown_action_is_named(data: Path) -> None:
    edit(data / "vocabulary.yaml", "actions: [info, inspection]}", "actions: [info, inspect]}")
    with pytest.raises(ContentError) as caught:
        load_vocabulary(data)
    assert caught.value.file.endswith("vocabulary.yaml")
    assert caught.value.field == "vocabulary.bgt.0.actions"
    assert "'inspect'" in caught.value.reason


def test_a_project_member_without_vocabulary_is_named(data: Path) -> None:
    edit(data / "vocabulary.yaml", "members: [mzj, gaj,", "members: [mzj, nobody,")
    with pytest.raises(ContentError) as caught:
        load_vocabulary(data)
    assert caught.value.field == "projects.0.members"
    assert "'nobody'" in caught.value.reason


def test_a_wrong_field_is_refused_with_its_path(data: Path) -> None:
    edit(data / "actions.yaml", "data_type: date, optional: true}", "data_type: day}")
    with pytest.raises(ContentError) as caught:
        load_vocabulary(data)
    assert caught.value.file.endswith("actions.yaml")
    assert caught.value.field == "actions.0.items.2.data_type"


def test_an_action_defined_twice_is_refused(data: Path) -> None:
    edit(data / "actions.yaml", "  - letter: P\n", "  - letter: I\n")
    with pytest.raises(ContentError) as caught:
        load_vocabulary(data)
    assert caught.value.field == "actions.1"


def test_a_missing_subject_is_refused(data: Path) -> None:
    edit(data / "actions.yaml", "  thing:\n", "  thingy:\n")
    with pytest.raises(ContentError) as caught:
        load_vocabulary(data)
    assert caught.value.field.startswith("subjects")


def test_not_yaml_is_refused(data: Path) -> None:
    (data / "vocabulary.yaml").write_text("vocabulary: [unclosed\n", encoding="utf-8")
    with pytest.raises(ContentError, match="not valid YAML"):
        load_vocabulary(data)
