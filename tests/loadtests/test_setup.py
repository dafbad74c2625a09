"""The grants plan: deterministic, Zipf-skewed, only exchangeable topics, never one's own."""

from __future__ import annotations

from collections import Counter

from loadtests.setup import Topic, _topic, make_plan


def _t(code: str, provider: str, group: str = "departmental", ok: bool = True) -> Topic:
    return Topic(
        code=code,
        name=code,
        provider=provider,
        group=group,
        resource_type="table",
        key_type="id_number",
        shareable=("id_number", "name"),
        conditional=True,
        exchangeable=ok,
    )


TOPICS = {
    t.code: t
    for t in [
        _t("101001001/000001", "gaj", "basic"),
        _t("102001001/000001", "scjgj", "basic"),
        *(_t(f"30100{i}001/000001", "rsj") for i in range(1, 8)),
        _t("309009009/000009", "mzj", ok=False),
    ]
}
UNITS = {f"u{i:03d}": "district" for i in range(140)} | {
    "gaj": "municipal",
    "scjgj": "municipal",
    "rsj": "municipal",
    "mzj": "municipal",
    "sjzx": "provincial",
}


def test_plan_is_deterministic_and_seeded() -> None:
    a, b = make_plan(UNITS, TOPICS, seed=1), make_plan(UNITS, TOPICS, seed=1)
    assert a.grants == b.grants
    assert a.departments == b.departments
    assert make_plan(UNITS, TOPICS, seed=2).grants != a.grants


def test_grants_cover_exchangeable_topics_only_and_never_ones_own() -> None:
    plan = make_plan(UNITS, TOPICS, seed=5)
    for unit, held in plan.grants.items():
        assert "309009009/000009" not in held  # no mock API behind it
        assert all(TOPICS[c].provider != unit for c in held)
        assert len(held) == len(set(held))
    assert 2 <= len(plan.grants["u000"]) <= 6
    # The provincial platform pulls every exchangeable topic it does not provide.
    assert len(plan.grants["sjzx"]) == 9
    assert set(plan.consumers) == set(UNITS)
    assert abs(sum(plan.departments.values()) - 1.0) < 1e-9


def test_basic_topics_are_the_most_popular_and_most_held() -> None:
    plan = make_plan(UNITS, TOPICS, seed=3)
    ranked = sorted(plan.popularity, key=lambda c: -plan.popularity[c])
    assert {TOPICS[c].group for c in ranked[:2]} == {"basic"}
    held = Counter(c for codes in plan.grants.values() for c in codes)
    assert held[ranked[0]] > held[ranked[-1]]


def test_topic_is_exchangeable_only_with_an_api_a_key_and_shareable_items() -> None:
    raw = {
        "resource_code": "101001001/000001",
        "name": "户籍登记信息",
        "provider": "gaj",
        "group": "basic",
        "resource_type": "table",
        "api_path": "/topics/household-registration",
        "items": [
            {"field": "id_number", "sharing_type": "unconditional", "is_key": True},
            {"field": "photo_ref", "sharing_type": "conditional"},
            {"field": "secret", "sharing_type": "not_shared"},
        ],
    }
    t = _topic(raw, {"gaj": "http://x/departments/gaj"})
    assert t.exchangeable
    assert t.shareable == ("id_number", "photo_ref")
    assert t.conditional
    assert t.path == "/api/v1/exchange/101001001/000001"
    assert not _topic(raw, {"gaj": None}).exchangeable
    assert not _topic({**raw, "api_path": None}, {"gaj": "http://x"}).exchangeable


def test_applications_declare_a_use_the_catalog_offers() -> None:
    raw = {
        "resource_code": "201002002/000001",
        "name": "社会保险参保信息",
        "provider": "rsj",
        "group": "basic",
        "resource_type": "table",
        "items": [{"field": "id_number", "sharing_type": "conditional", "is_key": True}],
        "sharing": {"usage_scopes": ["administrative_basis", "business_collaboration"]},
    }
    assert _topic(raw, {}).purpose_scope == "administrative_basis"
    offered = {"usage_scopes": ["administrative_basis", "data_verification"]}
    assert _topic({**raw, "sharing": offered}, {}).purpose_scope == "data_verification"
    assert _topic({**raw, "sharing": {}}, {}).purpose_scope == "data_verification"
