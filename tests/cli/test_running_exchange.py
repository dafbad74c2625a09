"""Against one real ``exchange up``: the banner's commands work as printed, and
``exchange clock`` goes through the running exchange."""

from __future__ import annotations

import shlex
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.conftest import OPERATOR_KEY
from tests.serve import Server, exchange_up, free_port
from typer.testing import CliRunner

from exchange import cli
from exchange.security import demo_key

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("running")
    with exchange_up(
        tmp, f"sqlite:///{tmp}/exchange.db", OPERATOR_KEY, EXCHANGE_MOCK_DEPARTMENTS="false"
    ) as running:
        yield running


def printed(server: Server, after: str) -> str:
    """The line the banner printed after the heading ``after``."""
    lines = server.log.read_text().splitlines()
    return lines[lines.index(after) + 1].strip()


def raw_get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send the URL's bytes as they are, the way curl does (httpx would encode them)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    assert parts.hostname
    assert parts.port
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def test_the_banners_try_command_answers(server: Server) -> None:
    command = printed(server, "Try:")
    assert "q=%E6%88%B7%E7%B1%8D" in command
    args = shlex.split(command)
    assert args[:2] == ["curl", "-H"]
    name, _, value = args[2].partition(": ")

    status, body = raw_get(args[3], {name: value})

    assert status == 200, body
    text = body.decode(errors="replace")
    assert "户籍" in text or "\\u6237\\u7c4d" in text
    # The raw characters are what failed before: the server refuses them (not our fault,
    # but the reason the banner must encode).
    raw_status, _ = raw_get(args[3].replace("%E6%88%B7%E7%B1%8D", "户籍"), {name: value})
    assert raw_status == 400


def test_the_portal_link_carries_working_demo_keys(server: Server) -> None:
    link = printed(server, "Portal with the demo keys:")
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == server.url
    fragment = parse_qs(parts.fragment)
    assert fragment["key"] == [demo_key(OPERATOR_KEY, "mzj")]
    keys = fragment["keys"][0].split(",")
    assert keys == [OPERATOR_KEY, demo_key(OPERATOR_KEY, "gaj"), demo_key(OPERATOR_KEY, "scjgj")]
    assert httpx.get(server.url + parts.path).status_code == 200
    for key in [*fragment["key"], *keys]:
        resp = httpx.get(f"{server.url}/api/v1/clock", headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, (key, resp.text)


def test_clock_goes_through_the_running_exchange(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no database here: only the exchange can answer
    port = urlsplit(server.url).port
    env = {"EXCHANGE_PORT": str(port), "EXCHANGE_OPERATOR_KEY": OPERATOR_KEY}
    before = httpx.get(
        f"{server.url}/api/v1/clock", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
    ).json()["offset_seconds"]

    moved = CliRunner().invoke(cli.app, ["clock", "advance", "2d"], env=env)

    assert moved.exit_code == 0, moved.output
    assert f"advanced by the exchange at {server.url}" in moved.output
    after = httpx.get(
        f"{server.url}/api/v1/clock", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
    ).json()
    assert after["offset_seconds"] == before + 2 * 86400
    shown = CliRunner().invoke(cli.app, ["clock", "show", "--url", server.url], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"from the exchange at {server.url}" in shown.output
    assert not (tmp_path / ".exchange").exists()


def test_clock_names_an_address_where_nothing_answers(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        cli.app, ["clock", "advance", "1d", "--url", url], env={"EXCHANGE_OPERATOR_KEY": "k"}
    )
    assert result.exit_code == 2
    assert f"no exchange answers at {url}" in " ".join(result.output.split())
