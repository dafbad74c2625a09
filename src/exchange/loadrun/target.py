"""The exchange a load run drives: one found answering at ``--host`` (its operator key
checked before Locust starts), or ``exchange up`` started on loopback for the run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from rich.console import Console

from exchange import healthcheck
from exchange.children import end_with_parent

__all__ = ["LOOPBACK", "healthy", "running_exchange"]

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def healthy(url: str) -> bool:
    """Whether an exchange answers ``/healthz`` at ``url`` (200, status ok)."""
    return healthcheck.check(f"{url}/healthz", timeout=2.0) is None


def _check_operator_key(host: str, operator_key: str) -> None:
    """Fail before Locust starts if the exchange at ``host`` refuses the operator key (the
    grants setup needs it; Locust would only end with a traceback)."""
    try:
        resp = httpx.get(
            f"{host}/api/v1/departments",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {operator_key}"},
            timeout=10.0,
        )
    except httpx.HTTPError as exc:
        raise RuntimeError(f"the exchange at {host} did not answer: {exc}") from exc
    if resp.status_code in (401, 403):
        raise RuntimeError(
            f"the exchange at {host} refuses this operator key ({resp.status_code}): pass "
            "the key its banner shows with --operator-key or EXCHANGE_OPERATOR_KEY (a local "
            "`exchange up` keeps it in .exchange/operator.key where it was started)"
        )


@contextmanager
def running_exchange(
    host: str, operator_key: str, log: Path, console: Console, *, start: bool, workers: int = 1
) -> Iterator[int | None]:
    """Use the exchange at ``host``, or start ``exchange up`` there (loopback only) when
    ``start``: only for the default address, never one the user named with --host.

    Yields the started exchange's process id (``None`` for one found running)."""
    if healthy(host):
        _check_operator_key(host, operator_key)
        console.print(f"using the exchange at {host}")
        yield None
        return
    if not start:
        raise RuntimeError(
            f"no exchange answers at {host}: start one there (`exchange up`), or leave out "
            "--host to let exchange load start one on this machine"
        )
    parts = urlsplit(host)
    if parts.hostname not in LOOPBACK:
        raise RuntimeError(f"no exchange answers at {host} (only a loopback one can be started)")
    console.print(
        f"no exchange at {host}: starting one, {workers} worker process"
        f"{'es and the mock departments in their own' if workers > 1 else ''} (log: {log})"
    )
    env = {
        **os.environ,
        "EXCHANGE_OPERATOR_KEY": operator_key,
        "EXCHANGE_HOST": parts.hostname or "127.0.0.1",
        "EXCHANGE_PORT": str(parts.port or 80),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exchange.cli", "up", "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=out,
            preexec_fn=end_with_parent(),
        )
    try:
        why = healthcheck.wait(f"{host}/healthz", within=120, proc=proc, every=0.2)
        if why is not None:
            raise RuntimeError(f"exchange up {why}; see {log}")
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
