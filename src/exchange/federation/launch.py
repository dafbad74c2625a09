"""``exchange up --federation``: the city exchange and the provincial platform on one
machine, two ports, two databases, each with its own mock departments.

The credentials the two operators would hand each other once are derived here from each
platform's own master secret (``exchange federation credential`` prints the same value for
an operator setting up the pair by hand) and passed to the other process in its
environment: nothing secret is written anywhere new.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from exchange import healthcheck
from exchange.children import end_with_parent
from exchange.config import Settings
from exchange.federation.trust import issued_credential
from exchange.security import resolve_provider_secret

__all__ = ["Pair", "pair_settings", "province_process"]


@dataclass(frozen=True)
class Pair:
    """Both platforms' settings, each already holding the credential the other issued."""

    city: Settings
    province: Settings


def pair_settings(city: Settings, province: Settings) -> Pair:
    """Exchange the operators' credentials between ``city`` and ``province``.

    Each platform issues its peer a credential derived from its own provider master
    secret; the peer signs its calls with it and the issuer re-derives it to verify.
    """
    city_master, _ = resolve_provider_secret(city)
    province_master, _ = resolve_provider_secret(province)
    return Pair(
        city=city.model_copy(
            update={
                "provider_secret": city_master,
                "peer_url": province.self_url,
                "peer_credential": issued_credential(province_master, city.own_code),
            }
        ),
        province=province.model_copy(
            update={
                "provider_secret": province_master,
                "peer_url": city.self_url,
                "peer_credential": issued_credential(city_master, province.own_code),
            }
        ),
    )


def environment(settings: Settings) -> dict[str, str]:
    """The ``EXCHANGE_*`` variables that recreate ``settings`` in a child process."""
    env = {
        "EXCHANGE_LEVEL": settings.level,
        "EXCHANGE_HOST": settings.host,
        "EXCHANGE_PORT": str(settings.port),
        "EXCHANGE_DATABASE_URL": settings.database_url,
        "EXCHANGE_CATALOG_DIR": str(settings.catalog_dir),
        "EXCHANGE_SERVICES_DIR": str(settings.services_dir),
        "EXCHANGE_SEED": str(settings.seed),
        "EXCHANGE_POPULATION": str(settings.population),
        "EXCHANGE_ENTERPRISES": str(settings.enterprises),
    }
    for name in ("operator_key", "provider_secret", "peer_url", "peer_credential"):
        value = getattr(settings, name)
        if value:
            env[f"EXCHANGE_{name.upper()}"] = str(value)
    return env


@contextmanager
def province_process(
    province: Settings, *, log: Path | None = None, start_within: float = 120
) -> Iterator[subprocess.Popen[bytes]]:
    """Run the provincial platform (``exchange up`` at province level) as a child process
    until the block ends; wait until it answers ``/healthz``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update(environment(province))
    out = log.open("ab") if log is not None else None
    proc = subprocess.Popen(
        [sys.executable, "-m", "exchange.cli", "up"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT if out is not None else None,
        preexec_fn=end_with_parent(),
    )
    try:
        why = healthcheck.wait(
            province.self_url + "/healthz", within=start_within, proc=proc, every=0.2
        )
        if why is not None:
            said = f" (its log: {log})" if log is not None else ""
            raise RuntimeError(f"the provincial platform {why}{said}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if out is not None:
            out.close()
