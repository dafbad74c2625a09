"""``exchange db upgrade|current|history|revision`` and ``exchange up`` against a database
that is behind, through the CLI as a user types them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from tests.conftest import OPERATOR_KEY, POSTGRES_URL, empty_postgres
from typer.testing import CliRunner

from exchange import cli, serving
from exchange.db import migrate

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.app, list(args), env={"EXCHANGE_OPERATOR_KEY": OPERATOR_KEY})


def said(result: Result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


@pytest.fixture
def empty_url(database_url: str, tmp_path: Path) -> str:
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/cli.db"
    empty_postgres(database_url)
    return database_url


def test_upgrade_then_current_then_history(empty_url: str) -> None:
    head = migrate.head()

    before = run("db", "current", "--check", "--database-url", empty_url)
    if empty_url.startswith("sqlite"):
        # No file yet: said, and not created by asking.
        assert before.exit_code == 2, before.output
        assert "no exchange database at" in said(before)
        assert not Path(empty_url.removeprefix("sqlite:///")).exists()
    else:
        assert before.exit_code == 1, before.output
        assert "has no exchange schema yet: run `exchange db upgrade`" in said(before)

    up = run("db", "upgrade", "--database-url", empty_url)
    assert up.exit_code == 0, up.output
    assert f"upgraded from empty to {head}" in said(up)
    again = run("db", "upgrade", "--database-url", empty_url)
    assert f"already at {head}" in said(again)

    current = run("db", "current", "--check", "--database-url", empty_url)
    assert current.exit_code == 0, current.output
    assert said(current).startswith(f"{head} (head):")

    history = run("db", "history")
    assert history.exit_code == 0, history.output
    lines = history.output.splitlines()
    assert lines[0].startswith(f"{head} (head")
    assert lines[-1].startswith(f"{migrate.baseline()} (")
    assert "baseline" in lines[-1]


def test_upgrade_to_an_unknown_revision_says_so(empty_url: str) -> None:
    result = run("db", "upgrade", "nosuchrevision", "--database-url", empty_url)
    assert result.exit_code == 2
    assert "nosuchrevision" in said(result)
    assert "Traceback" not in result.output


def test_the_environment_names_the_database(empty_url: str) -> None:
    result = CliRunner().invoke(
        cli.app, ["db", "upgrade"], env={"EXCHANGE_DATABASE_URL": empty_url}
    )
    assert result.exit_code == 0, result.output
    assert migrate.state(empty_url).at_head


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="needs EXCHANGE_TEST_POSTGRES_URL")
def test_up_refuses_a_postgres_database_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert POSTGRES_URL
    monkeypatch.chdir(tmp_path)  # where `up` would keep its state directory

    def serve(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("exchange up served a database that is behind")

    monkeypatch.setattr(serving, "run", serve)
    empty_postgres(POSTGRES_URL)
    try:
        result = run("up", "--database-url", POSTGRES_URL, "--port", "1")
        assert result.exit_code == 2, result.output
        assert "run `exchange db upgrade` (with the same EXCHANGE_DATABASE_URL)" in said(result)
        assert "Traceback" not in result.output
        assert migrate.state(POSTGRES_URL).empty  # nothing created, nothing seeded
    finally:
        empty_postgres(POSTGRES_URL)


def test_revision_writes_the_next_revision_after_head(tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, directory, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)  # ruff's settings, as in the repository

    result = run("db", "revision", "-m", "nothing changed", "--directory", str(directory))

    assert result.exit_code == 0, result.output
    written = Path(said(result).split("wrote ", 1)[1].split(" ")[0])
    assert written.parent == directory / "versions"
    assert written.name.startswith("rev_")
    assert written.name.endswith("_nothing_changed.py")
    assert migrate.head(directory) != migrate.head()
    source = written.read_text()
    assert f"down_revision: str | Sequence[str] | None = {migrate.head()!r}" in source.replace(
        '"', "'"
    )
    # The models equal head, so autogenerate found nothing to do.
    upgrade = source.split("def upgrade() -> None:", 1)[1].split("def downgrade", 1)[0]
    assert "pass" in upgrade
    assert "op." not in upgrade
    # Written lint-clean (the post-write hook runs the venv's ruff): `make lint` passes.
    ruff = Path(sys.executable).with_name("ruff")
    if ruff.exists():
        for args in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
            done = subprocess.run([ruff, *args, written], capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
