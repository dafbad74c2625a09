"""``exchange demo --story newborn`` against a real ``exchange up``: a birth registered at
public security reaches three departments by subscription, each with only its items."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
from rich.console import Console
from tests.serve import exchange_up

from exchange.demo_newborn import CONSUMERS, run_newborn

KEY = "exk_operator_newborn-test"


def test_newborn_story_delivers_the_birth_to_every_department(tmp_path: Path) -> None:
    with exchange_up(tmp_path, f"sqlite:///{tmp_path}/newborn.db", KEY) as server:
        told = io.StringIO()
        report = run_newborn(server.url, KEY, console=Console(file=told, width=140))
        text = told.getvalue()
        assert "新生儿出生" in text
        assert report.child is not None
        # Every department received the child's registration, by push or by long-poll.
        assert set(report.arrivals) == {c.code for c in CONSUMERS}
        for c in CONSUMERS:
            event = report.arrivals[c.code].event
            assert event["key"] == report.child
            assert event["kind"] == "birth"
            # Only the items that department asked for and was granted.
            assert set(event["record"]) == set(c.items) == set(report.granted[c.code])
        # The bank verified the father's address: the true one matches, a slip does not
        # (where the exchange offers verification; the story says so where it does not).
        paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
        if "/api/v1/exchange/{front}/{seq}/verify" in paths:
            assert report.verified is not None
            assert list(report.verified.values()) == ["match", "mismatch"]
        else:
            assert report.verified is None
            assert "offers no verification" in text
        assert report.audited == len(CONSUMERS)
        assert report.chain_ok

        # The command tells it again on the same exchange (new grants, new subscriptions).
        env = {**os.environ, "EXCHANGE_OPERATOR_KEY": KEY, "EXCHANGE_LANG": "en"}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "exchange.cli",
                "demo",
                "--story",
                "newborn",
                "--url",
                server.url,
                "--pause",
                "0",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"birth delivered to {len(CONSUMERS)} of {len(CONSUMERS)}" in " ".join(
            done.stdout.split()
        )


def test_an_unknown_story_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "EXCHANGE_OPERATOR_KEY": KEY}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exchange.cli",
            "demo",
            "--story",
            "wedding",
            "--url",
            "http://127.0.0.1:9",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "no story 'wedding'" in done.stderr
