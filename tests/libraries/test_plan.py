"""Which topics each library gathers, read from the catalog (一数一源)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from exchange.catalog.content import load_core_topics
from exchange.config import Settings
from exchange.libraries.plan import plan_sources


def _core_topics() -> list[Any]:
    core = load_core_topics(Settings().catalog_dir)
    rows = []
    for i, spec in enumerate(core, 1):
        data = spec.model_dump(mode="json")
        rows.append(
            SimpleNamespace(
                resource_code=f"{spec.category}/{i:06d}",
                provider=spec.provider,
                name=spec.name,
                status="published",
                resource_type=data["resource_type"],
                data=data,
            )
        )
    return rows


def test_each_element_has_one_source_and_witnesses_only_check() -> None:
    plans = plan_sources(_core_topics(), library_unit="zsj")
    person = [p for p in plans if p.library == "person"]
    enterprise = [p for p in plans if p.library == "enterprise"]
    served: dict[str, str] = {}
    for plan in plans:
        for f in plan.fields:
            if f.is_source:
                assert f.element not in served, f"{f.element} served by two sources"
                served[f.element] = plan.provider
    # The household register is the source of the person's basic elements, market
    # regulation of the enterprise's.
    assert served["person.name"] == "gaj"
    assert served["person.household_status"] == "gaj"
    assert served["social_insurance.status"] == "rsj"
    assert served["enterprise.name"] == "scjgj"
    # Witnesses re-share an element of a source: kept only to check it.
    gjj = next(p for p in person if p.provider == "gjj")
    assert gjj.role == "witness"
    assert [(f.field, f.element, f.is_source) for f in gjj.fields] == [
        ("name", "person.name", False)
    ]
    swj = next(p for p in enterprise if p.provider == "swj" and p.role == "witness")
    assert [f.element for f in swj.fields] == ["enterprise.name"]
    # A marriage record names the husband and the wife too: only the first item carrying
    # person.name (the record's own subject) is used.
    mzj = next(p for p in person if p.provider == "mzj")
    assert [f.field for f in mzj.fields if f.element == "person.name"] == ["name"]


def test_plan_leaves_out_own_interface_not_shared_and_retired_topics() -> None:
    topics = _core_topics()
    plans = plan_sources(topics, library_unit="zsj")
    codes = {p.resource_code for p in plans}
    by_slug = {t.data["slug"]: t for t in topics}
    # The library unit cannot apply for its own topics; interface topics cannot be
    # exported; not-shared items (tax paid) are never gathered.
    assert by_slug["credit-publicity"].resource_code not in codes
    assert by_slug["cremation-records"].resource_code not in codes
    assert by_slug["tax-paid"].resource_code not in codes
    retired = by_slug["social-insurance-enrolment"].resource_code
    assert retired in codes
    again = plan_sources(topics, library_unit="zsj", retired=[retired])
    assert retired not in {p.resource_code for p in again}
    # With another library unit, the operator's own topics become sources.
    other = plan_sources(topics, library_unit="mzj")
    assert by_slug["credit-publicity"].resource_code in {p.resource_code for p in other}
    assert by_slug["marriage-registration"].resource_code not in {p.resource_code for p in other}


def test_plan_is_stable_sources_before_witnesses() -> None:
    topics = _core_topics()
    first = plan_sources(topics, library_unit="zsj")
    assert first == plan_sources(list(reversed(topics)), library_unit="zsj")
    roles = [p.role for p in first]
    assert roles == sorted(roles, key=lambda r: r != "source")
    for plan in first:
        assert plan.items[0] == plan.key_field
