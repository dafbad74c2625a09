"""The seed's counts reproduced by a profile (``exchange federation profile seed-2020``):
the rule that picks the topics (unit tests over the catalog the city seeds), and a run
against a city seeded with the 2020 catalog and its province, whose catalog and counters
then show 741 published and 199 provided as data: the counts come out of the run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.federation.pair import CITY_OPERATOR, PROVINCE_OPERATOR, Pair, make_pair

from exchange.catalog.content import load_core_topics, load_units
from exchange.catalog.generate import generate_catalog
from exchange.documents import ContentError
from exchange.federation.profile import (
    FederationProfile,
    choose,
    load_profiles,
    profiles,
    run_profile,
)

CATALOG = Path(__file__).resolve().parents[2] / "catalog"


def _topic(code: str, provider: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resource_code": code,
        "provider": provider,
        "status": "published",
        "group": "departmental",
        "resource_type": "table",
        "api_path": None,
        "tags": [],
        "sharing": {"type": "conditional"},
        "items": [{"field": "a", "sharing_type": "conditional"}],
    }
    return {**base, **over}


def _profile(publish: int, provide: int) -> FederationProfile:
    return FederationProfile(description="t", catalog="core", publish=publish, provide=provide)


def test_served_then_basic_then_each_department_in_turn() -> None:
    topics = [
        _topic("301000001/000001", "b"),
        _topic("301000001/000002", "b"),
        _topic("301000001/000003", "a"),
        _topic("101000001/000001", "c", group="basic"),
        _topic("301000001/000004", "c", api_path="/topics/x"),
    ]
    published, _ = choose(topics, _profile(5, 0), "gdzsj")
    assert published == [
        "301000001/000004",  # served by a department
        "101000001/000001",  # basic
        "301000001/000003",  # then a's first, b's first, b's second
        "301000001/000001",
        "301000001/000002",
    ]


def test_what_is_never_published_and_what_is_provided() -> None:
    not_shared = {"sharing": {"type": "not_shared"}}
    topics = [
        _topic("301000001/000001", "a", **not_shared),  # shares nothing
        _topic("301000001/000002", "gdzsj"),  # the peer's own unit
        _topic("301000001/000003", "a", tags=["源目录 101001001/000001"]),  # mounted
        _topic("301000001/000004", "a", status="retired"),
        _topic("301000001/000005", "a", resource_type="interface"),
        _topic("301000001/000006", "a"),
        _topic("301000001/000007", "b", api_path="/topics/y"),
    ]
    published, provided = choose(topics, _profile(3, 2), "gdzsj")
    assert published == ["301000001/000007", "301000001/000005", "301000001/000006"]
    # Tables only, the served one first.
    assert provided == ["301000001/000007", "301000001/000006"]
    with pytest.raises(ValueError, match="3 topics that can be published"):
        choose(topics, _profile(4, 0), "gdzsj")
    with pytest.raises(ValueError, match="2 are tables"):
        choose(topics, _profile(3, 3), "gdzsj")


def test_seed_2020_fits_the_2020_catalog() -> None:
    """The profile's sizes are met by the catalog it names, across the departments."""
    profile = profiles()["seed-2020"]
    units = load_units(CATALOG)
    core = load_core_topics(CATALOG, units)
    generated = generate_catalog(profile.catalog, units, core, 2020)
    docs = []
    for n, t in enumerate(generated):
        doc = t.model_dump(mode="json")
        docs.append({**doc, "status": "published", "resource_code": f"{t.category}/{n:06d}"})
    published, provided = choose(docs, profile, "gdzsj")
    assert (len(published), len(provided)) == (profile.publish, profile.provide)
    by_code = {d["resource_code"]: d for d in docs}
    assert len(set(published)) == len(published)
    assert set(provided) <= set(published)
    assert {by_code[c]["resource_type"] for c in provided} == {"table"}
    # Every core topic a department serves (and shares) is published, its tables provided.
    served = {
        d["resource_code"]
        for d in docs
        if d.get("api_path") and d["sharing"]["type"] != "not_shared"
    }
    assert len(served) >= 10
    assert served <= set(published)
    assert {c for c in served if by_code[c]["resource_type"] == "table"} <= set(provided)
    # Spread over the departments, every group present.
    assert len({by_code[c]["provider"] for c in published}) > 100
    assert set(Counter(by_code[c]["group"] for c in published)) == {
        "basic",
        "departmental",
        "special",
    }


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    pair = make_pair(tmp_path_factory.mktemp("profile"))
    pair.city.env["EXCHANGE_CATALOG_PROFILE"] = "platform-2020"
    for platform in (pair.city, pair.province):
        platform.env["EXCHANGE_CITY_CHANGE_SCALE"] = "0"
        platform.env["EXCHANGE_POPULATION"] = "2000"
        platform.env["EXCHANGE_ENTERPRISES"] = "500"
    try:
        pair.province.start()
        pair.city.start(within=300)
        yield pair
    finally:
        pair.stop()


@pytest.mark.e2e
@pytest.mark.slow
def test_seed_2020_run_shows_741_and_199_on_both_sides(pair: Pair) -> None:
    def run() -> Any:
        return run_profile(
            "seed-2020",
            city_url=pair.city.url,
            city_operator_key=CITY_OPERATOR,
            province_url=pair.province.url,
            province_operator_key=PROVINCE_OPERATOR,
            within=240,
        )

    report = run()
    assert report.applications == 199
    city, province = report.city_status, report.province_status
    assert (city["published"], city["provided_to_peer"]) == (741, 199)
    assert (province["mounted"], province["provided_by_peer"]) == (741, 199)
    # The province's catalog lists them, provided by the city platform's unit.
    page = pair.province.get("/api/v1/catalog/topics", provider="gz", limit=1)
    assert page["total"] == 741
    provisions = pair.province.get("/api/v1/federation/provisions")["items"]
    assert sorted(p["peer_resource_code"] for p in provisions) == sorted(report.provided)
    # The city's grants to the province's unit: one per provided topic.
    grants = pair.city.get("/api/v1/grants", consumer="gdzsj", status="active", limit=500)
    assert sorted(g["topic"] for g in grants["items"]) == sorted(report.provided)

    again = run()
    assert again.applications == 0
    assert (again.published, again.provided) == (report.published, report.provided)
    assert (again.city_status["published"], again.province_status["mounted"]) == (741, 741)
    assert again.province_status["provided_by_peer"] == 199


def test_the_cli_refuses_an_unknown_profile_and_a_platform_that_is_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.serve import free_port
    from typer.testing import CliRunner

    from exchange import cli

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli.app, ["federation", "profile", "seed-1999"])
    assert result.exit_code == 2, result.output
    assert "no federation profile 'seed-1999'" in result.output
    assert "seed-2020" in result.output
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(
        cli.app,
        ["federation", "profile", "seed-2020", "--url", nowhere, "--province-url", nowhere],
        env={"EXCHANGE_OPERATOR_KEY": CITY_OPERATOR},
    )
    assert result.exit_code == 2, result.output
    assert "no operator key of the province" in " ".join(result.output.split())
    result = runner.invoke(
        cli.app,
        [
            "federation",
            "profile",
            "seed-2020",
            "--url",
            nowhere,
            "--province-url",
            nowhere,
            "--province-operator-key",
            PROVINCE_OPERATOR,
        ],
        env={"EXCHANGE_OPERATOR_KEY": CITY_OPERATOR},
    )
    assert result.exit_code == 2, result.output
    assert "start both platforms" in " ".join(result.output.split())


def test_a_profiles_file_that_does_not_add_up_is_refused_naming_the_field(tmp_path: Path) -> None:
    assert profiles()["seed-2020"].provide <= profiles()["seed-2020"].publish
    file = tmp_path / "profiles.yaml"
    file.write_text(
        "profiles:\n  odd: {description: x, catalog: full, publish: 3, provide: 5}\n", "utf-8"
    )
    with pytest.raises(ContentError) as caught:
        load_profiles(file)
    assert (caught.value.file, caught.value.field) == (str(file), "profiles.odd.provide")
    assert "more topics than it publishes" in caught.value.reason
    file.write_text("profiles:\n  odd: {description: x, catalog: full, publish: 0}\n", "utf-8")
    with pytest.raises(ContentError, match=r"profiles\.odd\.publish: .*greater than"):
        load_profiles(file)
