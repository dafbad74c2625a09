"""What every command shares: the error console, settings from options, and the refusals
that keep a command from touching the wrong database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from exchange.config import Settings

if TYPE_CHECKING:
    from exchange.db.engine import Database

console = Console(stderr=True)

#: ``--url`` and ``--operator-key`` of the commands that talk to a running exchange.
DEFAULT_URL = "http://127.0.0.1:8000"
ExchangeUrl = Annotated[str, typer.Option(help="Base URL of a running exchange (`exchange up`).")]
OperatorKey = Annotated[
    str | None,
    typer.Option(help="Operator key (default: EXCHANGE_OPERATOR_KEY or .exchange/operator.key)."),
]


def make_settings(**overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)  # type: ignore[arg-type]


def fail(message: str, hint: str = "") -> typer.Exit:
    # Unwrapped (soft_wrap): a path, URL or command cut across lines cannot be copied.
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    if hint:
        console.print(f"[dim]{escape(hint)}[/]", soft_wrap=True)
    return typer.Exit(code=2)


PortOption = Annotated[int | None, typer.Option(help="Port (default EXCHANGE_PORT, else 8000).")]
HostOption = Annotated[
    str | None, typer.Option(help="Interface to bind (default EXCHANGE_HOST, else 127.0.0.1).")
]
DatabaseOption = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL (default EXCHANGE_DATABASE_URL).")
]


def open_current(settings: Settings) -> Database:
    """The exchange's database, refused unless its schema is this code's."""
    from exchange.db.engine import Database
    from exchange.db.migrate import SchemaNotCurrent, ensure_current

    db = Database(existing_url(settings))
    try:
        ensure_current(db)
    except SchemaNotCurrent as exc:
        db.dispose()
        raise fail(str(exc)) from exc
    return db


def shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


DB_URL_HELP = "Database (default: EXCHANGE_DATABASE_URL, else the embedded SQLite file)."


def database_exists(url: str) -> bool:
    """False only for a SQLite file that is not there (a server database is asked)."""
    from sqlalchemy.engine import make_url

    if not url.startswith("sqlite"):
        return True
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return True
    return Path(database).expanduser().exists()


def existing_url(settings: Settings) -> str:
    """The configured database URL, refused when its SQLite file does not exist."""
    from sqlalchemy.engine import make_url

    url = settings.database_url
    if not database_exists(url):
        path = Path(make_url(url).database or "").expanduser().resolve()
        raise fail(
            f"no exchange database at {path}",
            "run this where `exchange up` keeps its .exchange/ directory, or pass "
            "--database-url / set EXCHANGE_DATABASE_URL",
        )
    return url
