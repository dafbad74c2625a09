"""Two exchanges on loopback, a city and its province, federated (for the e2e tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.polling import wait_until
from tests.serve import free_port

from exchange.provider_auth import derive_provider_secret
from exchange.security import demo_key

CITY_SECRET = "exms_test-city-master"
PROVINCE_SECRET = "exms_test-province-master"
CITY_OPERATOR = "exk_operator_test-city"
PROVINCE_OPERATOR = "exk_operator_test-province"


@dataclass
class Platform:
    level: str
    port: int
    workdir: Path
    operator: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / f"{self.level}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def key(self, code: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {demo_key(self.operator, code)}"}

    @property
    def op(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.operator}"}

    def start(self, within: float = 120) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "exchange.cli", "up"],
                env=self.env,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + within
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.level} exited:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.level} did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        resp = httpx.get(self.url + path, headers=headers or self.op, params=params, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=headers or self.op, timeout=30)


@dataclass
class Pair:
    city: Platform
    province: Platform

    def stop(self) -> None:
        self.city.stop()
        self.province.stop()


def make_pair(tmp: Path) -> Pair:
    """The two platforms' settings, each holding the credential the other issued it."""
    city_port, province_port = free_port(), free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    (tmp / "city").mkdir()
    (tmp / "province").mkdir()
    city = Platform(
        "city",
        city_port,
        tmp / "city",
        CITY_OPERATOR,
        {
            **base,
            "EXCHANGE_PORT": str(city_port),
            "EXCHANGE_OPERATOR_KEY": CITY_OPERATOR,
            "EXCHANGE_PROVIDER_SECRET": CITY_SECRET,
            "EXCHANGE_PEER_URL": f"http://127.0.0.1:{province_port}",
            "EXCHANGE_PEER_CREDENTIAL": derive_provider_secret(PROVINCE_SECRET, "gz"),
        },
    )
    province = Platform(
        "province",
        province_port,
        tmp / "province",
        PROVINCE_OPERATOR,
        {
            **base,
            "EXCHANGE_LEVEL": "province",
            "EXCHANGE_PORT": str(province_port),
            "EXCHANGE_OPERATOR_KEY": PROVINCE_OPERATOR,
            "EXCHANGE_PROVIDER_SECRET": PROVINCE_SECRET,
            "EXCHANGE_PEER_URL": f"http://127.0.0.1:{city_port}",
            "EXCHANGE_PEER_CREDENTIAL": derive_provider_secret(CITY_SECRET, "gdzsj"),
        },
    )
    return Pair(city, province)


def wait_for(what: str, check: Any, within: float = 60) -> Any:
    """Poll ``check()`` until it returns something truthy (a deadline, not a sleep)."""
    return wait_until(check, what, within=within, every=0.2)
