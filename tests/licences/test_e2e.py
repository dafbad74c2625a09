"""Over real HTTP on loopback: a department issues, a verifier fetches the key and status
list once, then verifies offline (SDK and CLI), with the exchange gone."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from tests.conftest import OPERATOR_KEY
from tests.e2e.harness import serve, settings_for
from tests.licences.conftest import key_of, marriage
from typer.testing import CliRunner

from exchange.app import build_context, create_app
from exchange.cli import app as cli
from exchange.client import (
    PermissionDenied,
    TransportError,
    VerifierPool,
    fetch_licence_verifier,
    load_licence_verifier,
    verify_many,
)
from exchange.seed import seed


def test_issue_revoke_and_verify_offline_with_the_exchange_gone(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/exchange.db")
    ctx = build_context(settings)
    seed(ctx.db, settings, OPERATOR_KEY, ctx.clock)
    cache = tmp_path / "trust.json"
    try:
        with serve(create_app(settings, ctx=ctx)) as url, httpx.Client(base_url=url) as http:
            issued = []
            for ref in ("A1", "A2", "A3"):
                resp = http.post(
                    "/api/v1/licences", json=marriage(external_ref=ref), headers=key_of("mzj")
                )
                assert resp.status_code == 201, resp.text
                issued.append(resp.json())
            revoked = issued[0]["number"]
            resp = http.post(
                f"/api/v1/licences/{revoked}/revoke",
                json={"reason": "撤销登记"},
                headers=key_of("mzj"),
            )
            assert resp.status_code == 200
            verifier = fetch_licence_verifier(url, cache=cache)
            result = CliRunner().invoke(
                cli,
                ["licence", "verify", issued[1]["number"], issued[1]["code"], "--url", url,
                 "--cache", str(cache)],
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            assert "VALID" in result.output
    finally:
        ctx.db.dispose()

    # The exchange is gone: the verifier and the kept copy still answer.
    pairs = [(lic["number"], lic["code"]) for lic in issued]
    assert [r.reason for r in (verifier.verify(n, c) for n, c in pairs)] == [
        "revoked",
        "valid",
        "valid",
    ]
    kept = load_licence_verifier(cache)
    assert kept.verify(*pairs[0]).reason == "revoked"
    assert fetch_licence_verifier(url, cache=cache).verify(*pairs[1]).ok  # fell back to it
    with pytest.raises(TransportError):
        fetch_licence_verifier(url)
    runner = CliRunner()
    revoked_cli = runner.invoke(
        cli, ["licence", "verify", *pairs[0], "--offline", "--cache", str(cache), "--json"]
    )
    assert revoked_cli.exit_code == 1
    assert json.loads(revoked_cli.stdout)["revocation"]["reason"] == "撤销登记"
    number, code = pairs[1]
    altered = code[:-6] + ("A" if code[-6] != "A" else "B") + code[-5:]
    bad = runner.invoke(
        cli, ["licence", "verify", number, altered, "--offline", "--cache", str(cache)]
    )
    assert bad.exit_code == 1
    assert "ALTERED" in bad.stdout or "MALFORMED" in bad.stdout
    no_copy = runner.invoke(
        cli, ["licence", "verify", number, code, "--offline", "--cache", str(tmp_path / "none")]
    )
    assert no_copy.exit_code == 2
    # A batch over two processes answers as one process does, and so does a pool kept for
    # several batches (chunks cut to fit, whatever the batch's size).
    alone = verify_many(kept, pairs * 50)
    assert verify_many(kept, pairs * 50, processes=2, chunk=40) == alone
    with VerifierPool(kept, processes=2) as pool:
        assert pool.verify_many(pairs * 50) == alone
        assert pool.verify_many(pairs[:1]) == alone[:1]
        assert pool.verify_many([]) == []


def test_the_enterprise_story_issues_and_verifies_a_business_licence(tmp_path: Path) -> None:
    from exchange.client import ExchangeClient
    from exchange.demo_steps import issue_business_licence, verify_business_licence
    from exchange.departments.city import City
    from exchange.security import demo_key

    settings = settings_for(f"sqlite:///{tmp_path}/exchange.db")
    ctx = build_context(settings)
    seed(ctx.db, settings, OPERATOR_KEY, ctx.clock)
    city = City(settings.seed, settings.population, settings.enterprises)
    firm = next(e for e in city.iter_enterprises() if e.status.startswith("存续"))
    try:
        with (
            serve(create_app(settings, ctx=ctx)) as url,
            ExchangeClient(url, demo_key(OPERATOR_KEY, "scjgj")) as regulator,
        ):
            first = issue_business_licence(regulator, firm)
            again = issue_business_licence(regulator, firm)
            assert first.created
            assert not again.created
            assert again.licence.number == first.licence.number
            assert first.licence.holder_id == firm.credit_code
            result = verify_business_licence(url, first.licence)
            assert result.ok, result
            with (
                ExchangeClient(url, demo_key(OPERATOR_KEY, "gaj")) as other,
                pytest.raises(PermissionDenied),
            ):
                issue_business_licence(other, firm)
    finally:
        ctx.db.dispose()
