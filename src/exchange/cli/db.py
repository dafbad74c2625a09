"""``exchange db …``: the database's schema through its Alembic revisions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exchange.cli.common import (
    DB_URL_HELP,
    database_exists,
    existing_url,
    fail,
    make_settings,
    shown,
)

app = typer.Typer(help="The database's schema: upgrade it, see where it stands.")


@app.command("upgrade")
def db_upgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision (default: the newest).")
    ] = "head",
    database_url: Annotated[str | None, typer.Option(help=DB_URL_HELP)] = None,
) -> None:
    """Upgrade the database's schema (creating it in an empty database).

    Safe to run while exchanges serve from it only if the revisions in between say so in
    their notes; stop them first otherwise. Several runs at once wait for each other.
    """
    from exchange.db import migrate

    settings = make_settings(database_url=database_url)
    url = settings.database_url
    try:
        before = migrate.state(url) if database_exists(url) else None
        after = migrate.upgrade(url, revision)
    except migrate.SchemaNotCurrent as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:  # alembic's unknown/ambiguous revision errors
        if type(exc).__module__.startswith("alembic"):
            raise fail(str(exc), "see `exchange db history` for the revisions") from exc
        raise
    was = ", ".join(before.current) if before and before.current else "empty"
    if before and before.unversioned:
        was = "created before migrations (adopted as the baseline)"
    now = ", ".join(after.current) or "empty"
    if before is not None and before.current == after.current:
        typer.echo(f"{shown(url)}: already at {now}")
    else:
        typer.echo(f"{shown(url)}: upgraded from {was} to {now}")


@app.command("current")
def db_current(
    database_url: Annotated[str | None, typer.Option(help=DB_URL_HELP)] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 unless the database is at the newest revision.")
    ] = False,
) -> None:
    """Print the database's revision and whether it is this exchange's newest."""
    from exchange.db import migrate

    settings = make_settings(database_url=database_url)
    url = existing_url(settings)
    current = migrate.state(url)
    if current.at_head:
        typer.echo(f"{current.head} (head): {shown(url)} is up to date")
        return
    typer.echo(migrate.describe(current, url))
    if check:
        raise typer.Exit(code=1)


@app.command("history")
def db_history() -> None:
    """List the schema revisions this exchange carries, newest first."""
    from exchange.db import migrate

    for script in migrate.history():
        marks = []
        if script.is_head:
            marks.append("head")
        if script.is_base:
            marks.append("baseline")
        mark = f" ({', '.join(marks)})" if marks else ""
        typer.echo(f"{script.revision}{mark}  {script.doc}")


@app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision changes.")],
    database_url: Annotated[
        str | None,
        typer.Option(help="Compare the models with this database (default: a scratch SQLite)."),
    ] = None,
    autogenerate: Annotated[
        bool, typer.Option(help="Derive the operations from the models (else an empty one).")
    ] = True,
    directory: Annotated[Path | None, typer.Option(hidden=True)] = None,
) -> None:
    """For developers: write a new revision after changing a model (review it, then test)."""
    from exchange.db import migrate

    try:
        path = migrate.revision(
            message, url=database_url, autogenerate=autogenerate, directory=directory
        )
    except migrate.SchemaNotCurrent as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"wrote {path}")
    typer.echo("review it, then run the tests: tests/db/test_migrations.py checks it")
