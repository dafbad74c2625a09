"""``exchange demo --story enterprise`` against a real ``exchange up``: the legal-person
library, the business licence issued and verified offline, the customs' list check."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from tests.serve import exchange_up

from exchange.config import Settings
from exchange.demo_enterprise import pick_enterprise, run_enterprise_story
from exchange.departments.city import City

KEY = "exk_operator_enterprise-story"


def test_the_enterprise_story_is_told_twice(tmp_path: Path) -> None:
    with exchange_up(tmp_path, f"sqlite:///{tmp_path}/story.db", KEY) as server:
        settings = Settings(operator_key=KEY)
        city = City(settings.seed, settings.population, settings.enterprises)
        told = io.StringIO()
        report = run_enterprise_story(server.url, KEY, city, console=Console(file=told, width=140))
        firm = pick_enterprise(city)
        assert report.credit_code == firm.credit_code
        # The library assembled the enterprise from its source, market regulation.
        assert report.sources, told.getvalue()
        assert "scjgj" in set(report.sources.values())
        assert report.licence_created
        assert report.licence_number.startswith("YYZZ")
        assert report.verification == "valid"
        assert "Step 5 · the customs checks the lists" in told.getvalue()

        env = {**os.environ, "EXCHANGE_OPERATOR_KEY": KEY}
        done = subprocess.run(
            [sys.executable, "-m", "exchange.cli", "demo", "--story", "enterprise",
             "--url", server.url, "--pause", "0"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        text = " ".join(done.stdout.split())
        assert "issued by an earlier telling of the story" in text
        assert f"business licence {report.licence_number} verified valid" in text
        unknown = subprocess.run(
            [sys.executable, "-m", "exchange.cli", "demo", "--story", "nope", "--url", server.url],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert unknown.returncode == 2
        assert "no story" in unknown.stderr
