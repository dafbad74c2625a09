"""The single ``exchange`` command: one module per command group, assembled here.

Commands are registered in this order because ``exchange --help`` lists them so: top-level
commands first (load, up, provider-credential, seed, demo), then the groups.
"""

from __future__ import annotations

import sys

import typer

from exchange.cli import audit, catalog, clock, credentials, db, demo, serve, up
from exchange.cli import credit as credit_cli
from exchange.cli.licences import licence_app
from exchange.loadrun import load as load_command

__all__ = ["app", "main"]

app = typer.Typer(
    help="exchange: a simulator of a municipal government information-sharing exchange.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(serve.app, name="serve")
app.add_typer(clock.app, name="clock")
app.add_typer(catalog.app, name="catalog")
app.add_typer(audit.app, name="audit")
app.command("load")(load_command)
app.add_typer(db.app, name="db")
app.add_typer(credentials.federation_app, name="federation")
app.add_typer(credit_cli.app, name="credit")
app.add_typer(licence_app, name="licence")
app.command()(up.up)
app.command("provider-credential")(credentials.provider_credential)
app.command()(up.seed)
app.command()(demo.demo)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
