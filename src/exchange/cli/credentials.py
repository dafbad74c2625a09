"""The credentials an operator hands out, derived from the exchange's master secret:
``exchange provider-credential`` and ``exchange federation credential``."""

from __future__ import annotations

from typing import Annotated

import typer

from exchange.cli.common import existing_url, fail, make_settings

federation_app = typer.Typer(help="The connection between the city and the provincial platform.")


def provider_credential(
    code: Annotated[str, typer.Argument(help="The provider department's code, e.g. swj.")],
    database_url: Annotated[str | None, typer.Option(help="Database of the exchange.")] = None,
) -> None:
    """Print the credential a provider verifies the exchange's calls with (operator only:
    it reads the exchange's master secret). Hand it to the department, like its API key."""
    from exchange.provider_auth import derive_provider_secret
    from exchange.security import provider_secret_path, resolve_provider_secret

    settings = make_settings(database_url=database_url)
    if not settings.provider_secret:
        # Asking must not create: a new secret here would hand out a credential that the
        # running exchange (which kept its own) never signs with.
        existing_url(settings)
        path = provider_secret_path(settings)
        if not path.exists():
            raise fail(
                f"no provider secret at {path}",
                "the exchange creates it on its first start: run this where `exchange up` "
                "keeps its state, or set EXCHANGE_PROVIDER_SECRET",
            )
    secret, _ = resolve_provider_secret(settings)
    typer.echo(derive_provider_secret(secret, code))


@federation_app.command("credential")
def federation_credential(
    level: Annotated[str | None, typer.Option(help="city or province (EXCHANGE_LEVEL).")] = None,
    database_url: Annotated[str | None, typer.Option(help="Database of the exchange.")] = None,
) -> None:
    """Print the credential this platform issues to its peer (operator only: it reads the
    master secret). Hand it to the peer's operator once; the peer sets it as
    EXCHANGE_PEER_CREDENTIAL and signs its calls here with it."""
    from exchange.federation.trust import issued_credential
    from exchange.security import provider_secret_path, resolve_provider_secret

    settings = make_settings(database_url=database_url, level=level)
    if not settings.provider_secret and not provider_secret_path(settings).exists():
        raise fail(
            f"no provider secret at {provider_secret_path(settings)}",
            "the exchange creates it on its first start: run this where `exchange up` keeps "
            "its state, or set EXCHANGE_PROVIDER_SECRET",
        )
    secret, _ = resolve_provider_secret(settings)
    typer.echo(issued_credential(secret, settings.peer_code))
