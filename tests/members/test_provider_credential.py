"""The operator hands each provider the credential it verifies the exchange's calls with."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from tests.conftest import OPERATOR, make_department
from typer.testing import CliRunner

from exchange.cli import app as cli
from exchange.context import AppContext
from exchange.db import migrate
from exchange.provider_auth import ProviderSigner, ProviderVerifier, derive_provider_secret


def test_a_registered_unit_gets_its_credential_once_and_from_the_operator_again(
    client: TestClient, ctx: AppContext
) -> None:
    body = {"code": "dept-p", "name": "测试提供部门", "kind": "municipal"}
    created = client.post("/api/v1/departments", json=body, headers=OPERATOR)
    assert created.status_code == 201, created.text
    credential = created.json()["provider_credential"]
    assert credential == derive_provider_secret(ctx.provider_secret, "dept-p")

    again = client.post("/api/v1/departments/dept-p/provider-credential", headers=OPERATOR)
    assert again.status_code == 200
    assert again.json()["credential"] == credential
    assert again.json()["window_seconds"] == ctx.settings.provider_window
    # It verifies what the broker signs for this unit, and only for it.
    verifier = ProviderVerifier(credential, "dept-p")
    broker = ProviderSigner(derive_provider_secret(ctx.provider_secret, "dept-p"), "dept-p")
    sig = broker.sign("POST", b"/api/topics/x/query", b"{}", "rid")
    verifier.verify(
        "POST", "/api/topics/x/query", b"{}", {"x-exchange-signature": sig, "x-request-id": "rid"}
    )
    assert credential != derive_provider_secret(ctx.provider_secret, "dept-q")


def test_only_the_operator_hands_out_credentials(client: TestClient) -> None:
    own = make_department(client, "dept-o")
    url = "/api/v1/departments/dept-o/provider-credential"
    assert client.post(url, headers=own).status_code == 403
    assert client.post(url).status_code == 401
    missing = client.post("/api/v1/departments/none-such/provider-credential", headers=OPERATOR)
    assert missing.status_code == 404


def test_the_cli_prints_the_same_credential(tmp_path: Path) -> None:
    env = {"EXCHANGE_PROVIDER_SECRET": "exms_cli-test"}
    out = CliRunner().invoke(cli, ["provider-credential", "swj"], env=env)
    assert out.exit_code == 0, out.output
    assert out.output.strip() == derive_provider_secret("exms_cli-test", "swj")
    # Without a given secret, the one the exchange keeps beside its database (never a new
    # one: tests/cli/test_cli_refusals.py).
    database = f"sqlite:///{tmp_path}/x.db"
    migrate.upgrade(database)
    (tmp_path / "provider.secret").write_text("exms_kept\n")
    kept = CliRunner().invoke(cli, ["provider-credential", "swj", "--database-url", database])
    assert kept.exit_code == 0, kept.output
    assert kept.output.strip() == derive_provider_secret("exms_kept", "swj")
