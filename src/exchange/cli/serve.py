"""``exchange serve …``: one part of the exchange (or the mock departments) as its own
process."""

from __future__ import annotations

from typing import Annotated

import typer

from exchange.cli.common import DatabaseOption, HostOption, PortOption, console, fail, make_settings

app = typer.Typer(help="Run one part of the exchange as its own process.")


@app.command("departments")
def serve_departments(
    port: Annotated[int, typer.Option(help="Port to serve the mock departments on.")] = 8100,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    ssl_certfile: Annotated[
        str | None, typer.Option(help="Serve https with this certificate (PEM).")
    ] = None,
    ssl_keyfile: Annotated[str | None, typer.Option(help="The certificate's key (PEM).")] = None,
    ssl_ca_certs: Annotated[
        str | None,
        typer.Option(help="mTLS: require a client certificate issued by this CA (PEM)."),
    ] = None,
) -> None:
    """Serve only the mock department APIs (so they can sit on another machine).

    They answer only calls the exchange signed: give them the exchange's master secret
    (EXCHANGE_PROVIDER_SECRET, or the same state directory as ``exchange up``)."""
    from exchange.departments.cli import serve_departments as run
    from exchange.security import resolve_operator_key, resolve_provider_secret

    settings = make_settings(port=port, host=host)
    operator_key, _ = resolve_operator_key(settings)
    provider_secret, generated = resolve_provider_secret(settings)
    settings = settings.model_copy(
        update={"operator_key": operator_key, "provider_secret": provider_secret}
    )
    scheme = "https" if ssl_certfile else "http"
    said = (
        f"mock departments on {scheme}://{host}:{port}/departments/<code>  "
        f"(fault control needs the operator key {operator_key}; data calls need the "
        "exchange's signature"
        + (", from a master secret generated now: give it to the exchange)" if generated else ")")
    )
    run(
        settings,
        host,
        port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        ssl_ca_certs=ssl_ca_certs,
        on_ready=lambda: console.print(said),
    )


def _serve_part(
    part: str, port: int | None, host: str | None, database_url: str | None, **front: object
) -> None:
    """Serve one part of :data:`exchange.app.PARTS` on its own (see ``exchange up``)."""
    from exchange.app import build_context, create_app, tune_gc
    from exchange.db.migrate import SchemaNotCurrent
    from exchange.security import resolve_operator_key
    from exchange.serving import run

    settings = make_settings(
        port=port, host=host, database_url=database_url, mock_departments=False
    )
    operator_key, _ = resolve_operator_key(settings)
    settings = settings.model_copy(update={"operator_key": operator_key})
    try:
        ctx = build_context(settings)
    except SchemaNotCurrent as exc:
        raise fail(str(exc)) from exc
    application: object = create_app(settings, ctx=ctx, parts=(part,))
    if part == "portal":
        from exchange.web.gateway import Gateway, PartUrls

        urls = {name: list(v) for name, v in front.items() if isinstance(v, list | tuple)}
        application = Gateway(application, PartUrls(urls))  # type: ignore[arg-type]
        routes = ", ".join(f"{name} → {' '.join(v)}" for name, v in urls.items() if v)
        said = f"portal on {settings.base_url}/ ; API routed to {routes or 'nothing'}"
    else:
        said = f"{part} on {settings.base_url} ({settings.database_url})"
    tune_gc(settings)
    run(
        application,
        host=settings.host,
        port=settings.port,
        on_ready=lambda: console.print(said),
    )


@app.command("broker")
def serve_broker(
    port: PortOption = None, host: HostOption = None, database_url: DatabaseOption = None
) -> None:
    """Serve only the broker (/api/v1/exchange, /metrics): run several, one database."""
    _serve_part("broker", port, host, database_url)


@app.command("catalog")
def serve_catalog(
    port: PortOption = None, host: HostOption = None, database_url: DatabaseOption = None
) -> None:
    """Serve only the catalog and its member units (/api/v1/catalog, /api/v1/departments)."""
    _serve_part("catalog", port, host, database_url)


@app.command("authz")
def serve_authz(
    port: PortOption = None, host: HostOption = None, database_url: DatabaseOption = None
) -> None:
    """Serve only authorization and the audit log (applications, disputes, grants, audit)."""
    _serve_part("authz", port, host, database_url)


@app.command("portal")
def serve_portal(
    port: PortOption = None,
    host: HostOption = None,
    database_url: DatabaseOption = None,
    broker: Annotated[
        list[str] | None,
        typer.Option(
            "--broker",
            envvar="EXCHANGE_BROKER_URLS",
            help="Base URL of a broker; repeat for several (env: space-separated).",
        ),
    ] = None,
    catalog: Annotated[
        list[str] | None,
        typer.Option("--catalog", envvar="EXCHANGE_CATALOG_URLS", help="Catalog part's URL."),
    ] = None,
    authz: Annotated[
        list[str] | None,
        typer.Option("--authz", envvar="EXCHANGE_AUTHZ_URLS", help="Authz part's URL."),
    ] = None,
    departments: Annotated[
        list[str] | None,
        typer.Option(
            "--departments", envvar="EXCHANGE_DEPARTMENTS_URLS", help="Mock departments' URL."
        ),
    ] = None,
) -> None:
    """Serve the portal page, and pass each API path to the part that owns it."""
    _serve_part(
        "portal",
        port,
        host,
        database_url,
        broker=broker or [],
        catalog=catalog or [],
        authz=authz or [],
        departments=departments or [],
    )
