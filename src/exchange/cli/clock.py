"""``exchange clock …``: the platform's simulated time, through a running exchange when one
answers, else in its database."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from exchange.cli.common import fail, make_settings, open_current, shown
from exchange.config import Settings

app = typer.Typer(help="The platform's simulated clock.")


_CLOCK_URL_HELP = (
    "A running exchange to ask (default: the configured one, http://EXCHANGE_HOST:PORT, "
    "when it answers)."
)
_CLOCK_DB_HELP = "Read and move the clock in this database directly, not through an exchange."


def _clock_target(settings: Settings, url: str | None, database_url: str | None) -> str | None:
    """The running exchange the clock commands go through, or None for the database.

    A running exchange is asked first: it answers with the time it applies (and refreshes
    its caches). Only without one is the database used, and it must already exist.
    """
    from exchange.loadrun import healthy

    if database_url is not None:
        return None
    target = (url or settings.base_url).rstrip("/")
    if healthy(target):
        return target
    if url is not None:
        raise fail(
            f"no exchange answers at {target}",
            "start it (`exchange up`), or pass --database-url to use its database directly",
        )
    return None


def _clock_call(target: str, settings: Settings, method: str, path: str, **body: str) -> str:
    import httpx

    from exchange.security import read_operator_key

    key = read_operator_key(settings)
    if key is None:
        raise fail(
            f"the exchange at {target} needs the operator key",
            "set EXCHANGE_OPERATOR_KEY, or run where `exchange up` keeps .exchange/operator.key",
        )
    try:
        resp = httpx.request(
            method,
            f"{target}{path}",
            json=body or None,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10.0,
        )
    except httpx.HTTPError as exc:
        raise fail(f"the exchange at {target} did not answer: {exc}") from exc
    if resp.status_code != 200:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:200]
        raise fail(f"the exchange at {target} refused ({resp.status_code}): {message}")
    data = resp.json()
    now = dt.datetime.fromisoformat(data["now"]).isoformat(timespec="seconds")
    return f"{now} (offset {dt.timedelta(seconds=data['offset_seconds'])})"


@app.command("advance")
def clock_advance(
    by: Annotated[str, typer.Argument(help="How far: e.g. 10d, 36h, 90m, 2w.")],
    url: Annotated[str | None, typer.Option(help=_CLOCK_URL_HELP)] = None,
    database_url: Annotated[str | None, typer.Option(help=_CLOCK_DB_HELP)] = None,
) -> None:
    """Move the platform's simulated time forward (deadlines and expiries follow)."""
    from exchange.clock import Clock, parse_duration

    try:
        delta = parse_duration(by)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    settings = make_settings(database_url=database_url)
    target = _clock_target(settings, url, database_url)
    if target is not None:
        now = _clock_call(target, settings, "POST", "/api/v1/clock/advance", by=by)
        typer.echo(f"platform time is now {now}, advanced by the exchange at {target}")
        return
    db = open_current(settings)
    try:
        clock = Clock(db)
        moved = clock.advance(delta)
        offset = clock.offset
    except ValueError as exc:
        raise fail(str(exc)) from exc
    finally:
        db.dispose()
    typer.echo(
        f"platform time is now {moved.isoformat(timespec='seconds')} (offset {offset}), "
        f"advanced in {shown(settings.database_url)}"
    )


@app.command("reset")
def clock_reset(
    database_url: Annotated[str | None, typer.Option(help="Database of the exchange.")] = None,
) -> None:
    """Put the platform's simulated time back to wall time."""
    from exchange.clock import Clock

    settings = make_settings(database_url=database_url)
    db = open_current(settings)
    try:
        clock = Clock(db)
        clock.reset()
        typer.echo(f"platform time is wall time again: {clock.now().isoformat(timespec='seconds')}")
    finally:
        db.dispose()


@app.command("show")
def clock_show(
    url: Annotated[str | None, typer.Option(help=_CLOCK_URL_HELP)] = None,
    database_url: Annotated[str | None, typer.Option(help=_CLOCK_DB_HELP)] = None,
) -> None:
    """Print the platform's simulated time and its offset from wall time."""
    from exchange.clock import Clock

    settings = make_settings(database_url=database_url)
    target = _clock_target(settings, url, database_url)
    if target is not None:
        now = _clock_call(target, settings, "GET", "/api/v1/clock")
        typer.echo(f"{now}, from the exchange at {target}")
        return
    db = open_current(settings)
    try:
        clock = Clock(db)
        typer.echo(
            f"{clock.now().isoformat(timespec='seconds')} (offset {clock.offset}), "
            f"from {shown(settings.database_url)}"
        )
    finally:
        db.dispose()
