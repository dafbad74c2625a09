"""``exchange demo --story federation`` against a city and its province on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from rich.console import Console
from tests.federation.pair import Pair, make_pair

from exchange.demo_federation import run_federation_demo
from exchange.departments.city import City

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    pair = make_pair(tmp_path_factory.mktemp("story"))
    try:
        pair.province.start()
        pair.city.start()
        yield pair
    finally:
        pair.stop()


def test_the_provincial_regulator_checks_an_enterprise_through_both_exchanges(
    pair: Pair,
) -> None:
    console = Console(record=True, width=160)
    report = run_federation_demo(
        pair.city.url,
        pair.city.operator,
        pair.province.url,
        pair.province.operator,
        City(2020, 100_000, 20_000),
        console=console,
        pause=0,
    )
    assert len(report.mounted) == 2
    assert len(report.request_ids) == 2
    registration, tax = report.records.values()
    assert registration[0]["credit_code"] == report.enterprise
    assert set(registration[0]) == {
        "credit_code",
        "name",
        "entity_type",
        "legal_representative",
        "status",
    }
    # The conditional credit rating came through both reviews.
    assert "credit_rating" in tax[0]
    assert report.same_correlation
    for rid, (province, city) in report.trails.items():
        assert [e["consumer"] for e in province] == ["gd-scjgj"]
        assert [(e["consumer"], e["correlation_id"]) for e in city] == [("gdzsj", rid)]
    text = console.export_text()
    assert "gz" in text


def test_the_command_tells_it_and_exits_0(pair: Pair) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    done = subprocess.run(
        [
            *(sys.executable, "-m", "exchange.cli", "demo", "--story", "federation"),
            *("--url", pair.city.url, "--operator-key", pair.city.operator),
            *("--province-url", pair.province.url),
            *("--province-operator-key", pair.province.operator, "--pause", "0"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "both audit trails share the correlation id: yes" in " ".join(done.stdout.split())
