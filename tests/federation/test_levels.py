"""A province is the same program on its own content and state (EXCHANGE_LEVEL=province)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.catalog.content import load_core_topics, load_units
from exchange.config import Settings
from exchange.departments.definitions import load_definitions
from exchange.federation.trust import issued_credential
from exchange.provider_auth import derive_provider_secret

ROOT = Path(__file__).resolve().parents[2]


def test_a_province_reads_its_own_content_and_keeps_its_own_state() -> None:
    province = Settings(level="province")
    assert province.catalog_dir == ROOT / "catalog" / "province"
    assert province.services_dir == ROOT / "services" / "province"
    assert province.database_url == "sqlite:///./.exchange/province/exchange.db"
    assert province.port == 8200
    assert (province.own_code, province.peer_code) == ("gdzsj", "gz")
    city = Settings()
    assert city.catalog_dir == ROOT / "catalog"
    assert (city.own_code, city.peer_code) == ("gz", "gdzsj")


def test_explicit_settings_win_over_the_province_defaults(tmp_path: Path) -> None:
    province = Settings(
        level="province", catalog_dir=tmp_path, database_url="sqlite:///x.db", port=9000
    )
    assert (province.catalog_dir, province.database_url, province.port) == (
        tmp_path,
        "sqlite:///x.db",
        9000,
    )


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="level"):
        Settings(level="county")  # type: ignore[arg-type]


def test_the_province_has_departments_a_catalog_and_the_city_platform() -> None:
    units = {u.code: u for u in load_units(ROOT / "catalog" / "province")}
    assert units["gz"].kind == "city_platform"
    assert units["gdzsj"].kind == "provincial"  # the provincial platform's operator
    departments = [u for u in units.values() if u.kind == "provincial_dept"]
    assert len(departments) >= 5
    assert all(u.area_code == "440000" for u in departments)
    assert "gd-scjgj" in units  # the cross-level story's consumer
    topics = load_core_topics(ROOT / "catalog" / "province")
    assert {t.provider for t in topics} <= set(units)
    # Every provincial topic is served by a provincial mock department, item for item.
    definitions = load_definitions(ROOT / "services" / "province")
    served = {(code, t.slug): t for code, d in definitions.items() for t in d.topics}
    assert served.keys() == {(t.provider, t.slug) for t in topics}
    for topic in topics:
        assert list(served[(topic.provider, topic.slug)].fields) == [i.field for i in topic.items]


def test_the_credential_issued_to_the_peer_is_its_units_provider_credential() -> None:
    master = "exms_test"
    issued = issued_credential(master, "gdzsj")
    # What the broker signs its calls to the peer's unit with: one credential per direction.
    assert issued == derive_provider_secret(master, "gdzsj")
    assert issued != issued_credential(master, "gz")
    assert issued != issued_credential("exms_other", "gdzsj")
