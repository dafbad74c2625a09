"""``make up`` installs only what running needs, and says what it does (read with make -n)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def planned(target: str, venv: Path) -> list[str]:
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), target, f"VENV={venv}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


def test_up_installs_the_runtime_only_and_says_so(tmp_path: Path) -> None:
    steps = planned("up", tmp_path / ".venv")
    installs = [s for s in steps if "pip install" in s and "--upgrade pip" not in s]
    assert installs == [f"{tmp_path}/.venv/bin/python -m pip install --quiet -e ."]
    said = [s for s in steps if s.startswith("echo ")]
    assert any("installing the exchange and what it needs to run" in s for s in said)
    assert steps[-1] == f"{tmp_path}/.venv/bin/exchange up"


def test_test_installs_the_development_tools(tmp_path: Path) -> None:
    steps = planned("test", tmp_path / ".venv")
    assert f'{tmp_path}/.venv/bin/python -m pip install --quiet -e ".[dev]"' in steps
    # The dev install satisfies `make up` too: it stamps the runtime as installed.
    assert any(".installed-runtime" in s and s.startswith("touch ") for s in steps)
