"""The CLI refuses before it writes anything: a wrong directory, a taken port, an unknown
profile, a --host where nothing listens. Each case met a new user (issue 14)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from tests.conftest import OPERATOR_KEY
from tests.serve import free_port
from typer.testing import CliRunner

from exchange import banner, cli, serving
from exchange.config import Settings
from exchange.db import migrate
from exchange.provider_auth import derive_provider_secret
from exchange.security import resolve_operator_key


def said(result: Result) -> str:
    return " ".join(result.output.split())


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no exchange in it, and nothing serving the default port."""
    monkeypatch.chdir(tmp_path)

    def serve(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("exchange up got as far as serving")

    monkeypatch.setattr(serving, "run", serve)
    return tmp_path


def run(*args: str, **env: str) -> Result:
    # A free port: no running exchange answers where the clock commands look first.
    return CliRunner().invoke(cli.app, list(args), env={"EXCHANGE_PORT": str(free_port()), **env})


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "verify"],
        ["clock", "advance", "10d"],
        ["clock", "show"],
        ["db", "current"],
        ["provider-credential", "swj"],
    ],
)
def test_state_commands_refuse_a_missing_database_and_name_it(
    elsewhere: Path, args: list[str]
) -> None:
    result = run(*args)

    assert result.exit_code == 2, result.output
    assert f"no exchange database at {elsewhere / '.exchange' / 'exchange.db'}" in said(result)
    assert "ok:" not in result.output
    assert not (elsewhere / ".exchange").exists()  # nothing created by asking


def test_provider_credential_never_makes_a_secret_of_its_own(elsewhere: Path) -> None:
    url = f"sqlite:///{elsewhere}/state/exchange.db"
    migrate.upgrade(url)
    secret_file = elsewhere / "state" / "provider.secret"

    refused = run("provider-credential", "swj", "--database-url", url)

    assert refused.exit_code == 2, refused.output
    assert f"no provider secret at {secret_file}" in said(refused)
    assert not secret_file.exists()

    kept = "exms_kept-by-the-running-exchange"
    secret_file.write_text(f"{kept}\n")
    given = run("provider-credential", "swj", "--database-url", url)

    assert given.exit_code == 0, given.output
    assert given.output.strip() == derive_provider_secret(kept, "swj")


def test_clock_without_a_running_exchange_uses_the_existing_database(elsewhere: Path) -> None:
    url = f"sqlite:///{elsewhere}/state/exchange.db"
    migrate.upgrade(url)

    moved = run("clock", "advance", "3d", EXCHANGE_DATABASE_URL=url)

    assert moved.exit_code == 0, moved.output
    assert "offset 3 days, 0:00:00" in said(moved)
    assert "advanced in sqlite:///" in said(moved)
    shown = run("clock", "show", "--database-url", url)
    assert "offset 3 days, 0:00:00" in said(shown)


def test_up_with_an_unknown_profile_says_which_exist(elsewhere: Path) -> None:
    result = run("up", "--profile", "nosuch", EXCHANGE_OPERATOR_KEY=OPERATOR_KEY)

    assert result.exit_code == 2, result.output
    assert "no catalog profile 'nosuch'" in said(result)
    assert "core, guangzhou-2017, platform-2020" in said(result)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (elsewhere / ".exchange").exists()


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_up_checks_the_port_before_seeding(elsewhere: Path, taken_port: int) -> None:
    result = run("up", "--port", str(taken_port))

    assert result.exit_code == 2, result.output
    assert f"127.0.0.1:{taken_port} is already in use" in said(result)
    # No state directory, no generated key, no banner with keys that will never work.
    assert not (elsewhere / ".exchange").exists()
    assert "Operator key" not in result.output


def test_a_free_port_is_free() -> None:
    assert not serving.port_in_use("127.0.0.1", free_port())


def test_load_does_not_start_an_exchange_where_host_points(elsewhere: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = run("load", "--host", url, "--out", str(elsewhere / "results"))

    assert result.exit_code == 2, result.output
    assert f"no exchange answers at {url}" in said(result)
    assert "starting one" not in result.output
    assert not serving.port_in_use("127.0.0.1", int(url.rsplit(":", 1)[1]))
    assert not (elsewhere / ".exchange").exists()
    assert not (elsewhere / "results").exists()


def test_the_operator_key_file_is_named_where_it_is(
    elsewhere: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    state = tmp_path_factory.mktemp("state-elsewhere")
    settings = Settings(database_url=f"sqlite:///{state}/exchange.db")
    key, generated = resolve_operator_key(settings)
    assert generated

    note = banner.operator_key_note(settings, generated=True, from_env=False)

    assert note == f"generated, kept in {state / 'operator.key'}"
    assert (state / "operator.key").read_text().strip() == key
    assert not (elsewhere / ".exchange").exists()
    again = banner.operator_key_note(settings, generated=False, from_env=False)
    assert again == f"kept in {state / 'operator.key'}"
    inside = Settings(database_url="sqlite:///./.exchange/exchange.db")
    assert banner.operator_key_note(inside, generated=True, from_env=False) == (
        "generated, kept in .exchange/operator.key"
    )
