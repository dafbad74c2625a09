"""``exchange up --federation``: both platforms on one machine, two ports, two databases."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from tests.serve import exchange_cli, free_port, wait_for_output

from exchange.security import demo_key

pytestmark = pytest.mark.e2e


def test_up_federation_runs_the_city_and_the_province_side_by_side(tmp_path: Path) -> None:
    city_port, province_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    log = tmp_path / "up.log"
    ports = ("--port", str(city_port), "--province-port", str(province_port))
    proc = exchange_cli(("up", "--federation", *ports), env, tmp_path, log)
    city, province = f"http://127.0.0.1:{city_port}", f"http://127.0.0.1:{province_port}"
    try:
        # The banner names both platforms, and is shown once both answer: asked once each.
        wait_for_output(proc, log, "Try:", 180)
        assert httpx.get(city + "/healthz", timeout=10).status_code == 200
        assert httpx.get(province + "/healthz", timeout=10).status_code == 200
        # Each its own database and operator, beside each other in the state directory.
        city_key = (tmp_path / ".exchange" / "operator.key").read_text().strip()
        province_key = (tmp_path / ".exchange" / "province" / "operator.key").read_text().strip()
        assert city_key != province_key
        assert (tmp_path / ".exchange" / "exchange.db").exists()
        assert (tmp_path / ".exchange" / "province" / "exchange.db").exists()

        as_prov = {"Authorization": f"Bearer {demo_key(province_key, 'gd-scjgj')}"}
        units = httpx.get(f"{province}/api/v1/departments", headers=as_prov, params={"limit": 100})
        assert units.status_code == 200, units.text
        kinds = {u["code"]: u["kind"] for u in units.json()}
        assert kinds["gz"] == "city_platform"
        assert kinds["gd-scjgj"] == "provincial_dept"
        topics = httpx.get(f"{province}/api/v1/catalog/topics", headers=as_prov).json()
        assert {t["provider"] for t in topics["items"]} >= {"gd-gat", "gd-scjgj", "gd-mzt"}
        # The province's departments are its own: the city's keys do not open it.
        as_city = {"Authorization": f"Bearer {demo_key(city_key, 'mzj')}"}
        assert httpx.get(f"{province}/api/v1/whoami", headers=as_city).status_code == 401
        assert httpx.get(f"{city}/api/v1/whoami", headers=as_city).json()["code"] == "mzj"
        # Both platforms and their keys are in the banner.
        text = log.read_text()
        assert f"{province}/" in text
        assert demo_key(province_key, "gd-scjgj") in text
        # One banner, the city's: the province's own output goes to the log it names.
        assert text.count("Try:") == 1
        province_log = tmp_path / ".exchange" / "province" / "up.log"
        assert str(province_log) in text.replace("\n", "").replace("│", "").replace(" ", "")
        assert "provincial platform (省级)" in province_log.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # Stopping the city stops the province it started.
    with pytest.raises(httpx.HTTPError):
        httpx.get(province + "/healthz", timeout=2)
