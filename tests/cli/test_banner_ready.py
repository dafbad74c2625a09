"""``exchange up`` shows its banner once the port answers, so its curl works when pasted.

The banner used to be printed before uvicorn started the app and bound the port: for
about a second its commands were refused ("Couldn't connect"). Each test waits for the
banner's last heading and then asks the port once, with no retry.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from tests.conftest import OPERATOR_KEY
from tests.serve import ExitedEarly, exchange_cli, free_port, wait_for_output

pytestmark = pytest.mark.e2e

#: starts tried when another test took the free port before this exchange bound it
ATTEMPTS = 3


def _banner_then_ask(
    tmp_path: Path, args: tuple[str, ...], *, command: str = "up", shown: str = "Try:"
) -> tuple[str, httpx.Response]:
    """Start ``exchange COMMAND [args]`` (``{port}`` in an argument: the port it is given);
    once its log shows ``shown`` (the banner's last heading), GET ``/healthz`` once. The
    log, and that answer."""
    for attempt in range(1, ATTEMPTS + 1):
        port = free_port()
        log = tmp_path / f"up-{port}.log"
        env = {
            **os.environ,
            "EXCHANGE_DATABASE_URL": f"sqlite:///{tmp_path}/exchange-{port}.db",
            "EXCHANGE_OPERATOR_KEY": OPERATOR_KEY,
            "EXCHANGE_PORT": str(port),
            "EXCHANGE_HOST": "127.0.0.1",
            "EXCHANGE_MOCK_DEPARTMENTS": "false",
        }
        argv = (*command.split(), *(a.format(port=port) for a in args))
        proc = exchange_cli(argv, env, tmp_path, log)
        try:
            try:
                text = wait_for_output(proc, log, shown)
            except ExitedEarly as exc:
                if "already in use" in exc.text and attempt < ATTEMPTS:
                    continue
                raise
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            except httpx.ConnectError as exc:
                raise AssertionError(f"banner shown, port refused: {exc}\n{text}") from exc
            return text, answer
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    raise AssertionError("unreachable: every attempt either returned or raised")


def test_the_banner_is_shown_once_the_port_answers(tmp_path: Path) -> None:
    text, answer = _banner_then_ask(tmp_path, ())

    assert answer.status_code == 200, answer.text
    assert "worker processes" not in text


def test_with_workers_the_banner_waits_for_a_worker_to_answer(tmp_path: Path) -> None:
    text, answer = _banner_then_ask(tmp_path, ("--workers", "2"))

    assert answer.status_code == 200, answer.text
    # Said after the banner, also once they answer.
    assert text.index("2 worker processes on port") > text.index("Try:")


def test_serve_departments_says_where_once_they_answer(tmp_path: Path) -> None:
    _, answer = _banner_then_ask(
        tmp_path,
        ("--port", "{port}", "--host", "127.0.0.1"),
        command="serve departments",
        shown="mock departments on",
    )

    assert answer.status_code == 200, answer.text
