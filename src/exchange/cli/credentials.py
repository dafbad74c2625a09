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


@federation_app.command("profile")
def federation_profile(
    name: Annotated[str, typer.Argument(help="The profile, e.g. seed-2020.")],
    url: Annotated[
        str, typer.Option(help="The city exchange (`exchange up --federation`).")
    ] = "http://127.0.0.1:8000",
    operator_key: Annotated[
        str | None,
        typer.Option(
            help="The city's operator key (default: EXCHANGE_OPERATOR_KEY or .exchange/)."
        ),
    ] = None,
    province_url: Annotated[str, typer.Option(help="The provincial platform.")] = (
        "http://127.0.0.1:8200"
    ),
    province_operator_key: Annotated[
        str | None, typer.Option(help="Its operator key (default: .exchange/province/).")
    ] = None,
) -> None:
    """Publish the profile's city topics to the province and provide some of them as data
    (seed-2020: 741 published, 199 provided; which ones follows a rule over the city's
    catalog, see exchange.federation.profile). Against both running platforms, through
    their APIs; running it again changes nothing."""
    import httpx

    from exchange.config import Settings
    from exchange.federation.profile import profiles, run_profile
    from exchange.security import read_operator_key

    known = profiles()
    if name not in known:
        raise fail(f"no federation profile {name!r}", f"choose one of {', '.join(sorted(known))}")
    city_key = operator_key or read_operator_key(make_settings())
    province_key = province_operator_key or read_operator_key(
        Settings(level="province", operator_key=None)
    )
    if not city_key or not province_key:
        raise fail(
            "no operator key of the " + ("city" if not city_key else "province"),
            "pass --operator-key and --province-operator-key, or run where `exchange up "
            "--federation` keeps .exchange/",
        )
    try:
        report = run_profile(
            name,
            city_url=url,
            city_operator_key=city_key,
            province_url=province_url,
            province_operator_key=province_key,
            say=typer.echo,
        )
    except (RuntimeError, ValueError, TimeoutError, httpx.HTTPError) as exc:
        raise fail(str(exc), "start both platforms with `exchange up --federation`") from exc
    city, province = report.city_status, report.province_status
    typer.echo(
        f"city: {city['published']} topics published to the province, "
        f"{city['provided_to_peer']} provided as data\n"
        f"province: {province['mounted']} city topics in its catalog, "
        f"{province['provided_by_peer']} provided by the city as data "
        f"({report.applications} grants filed by this run)"
    )
