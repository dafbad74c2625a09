"""``exchange credit``: run the mock departments' double-publicity feed against an exchange."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from exchange.cli.common import DEFAULT_URL, ExchangeUrl, OperatorKey

app = typer.Typer(help="Credit double publicity (双公示): the mock departments' feed.")


@app.command("feed")
def feed(
    url: ExchangeUrl = DEFAULT_URL,
    operator_key: OperatorKey = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="Decision days to cover.")] = 30,
    per_unit: Annotated[
        int, typer.Option(min=0, max=200, help="Mean decisions per unit and day.")
    ] = 4,
    late_rate: Annotated[float, typer.Option(min=0, max=1, help="Share published late.")] = 0.01,
    miss_rate: Annotated[float, typer.Option(min=0, max=1, help="Share never published.")] = 0.0,
) -> None:
    """Announce and publish, as each of the 37 departments and 11 districts, the permit and
    penalty decisions of the synthetic city due by the platform's today (idempotent: run it
    after each `exchange clock advance`)."""
    import datetime as dt

    import httpx

    from exchange.config import Settings
    from exchange.credit.feed import run, submitting_units
    from exchange.departments.city import City
    from exchange.security import demo_key, state_dir

    settings = Settings() if operator_key is None else Settings(operator_key=operator_key)
    key = settings.operator_key
    if not key:
        path = state_dir(settings) / "operator.key"
        if not path.exists():
            typer.echo("error: no operator key (pass --operator-key)", err=True)
            raise typer.Exit(2)
        key = path.read_text().strip()
    op_key: str = key
    with httpx.Client(base_url=url.rstrip("/"), timeout=60) as http:

        def call(unit: str | None, method: str, path: str, body: Any = None) -> Any:
            bearer = op_key if unit is None else demo_key(op_key, unit)
            resp = http.request(
                method, path, json=body, headers={"Authorization": f"Bearer {bearer}"}
            )
            if resp.status_code != 200:
                typer.echo(f"error: {method} {path} as {unit}: {resp.text[:300]}", err=True)
                raise typer.Exit(1)
            return resp.json()

        today = dt.date.fromisoformat(call(None, "GET", "/api/v1/clock")["today"])
        units = submitting_units(call(None, "GET", "/api/v1/departments"))
        city = City(settings.seed, settings.population, settings.enterprises)
        report = run(
            lambda unit, path, body: call(unit, "POST", path, body),
            city,
            units,
            today,
            days=days,
            per_unit=per_unit,
            late_rate=late_rate,
            miss_rate=miss_rate,
            seed=settings.seed,
        )
    typer.echo(
        f"{today}: {len(units)} units, {report.notices} decisions announced, "
        f"{report.published} published ({report.late} late), {report.duplicates} already "
        f"published, in {report.calls} calls"
    )


@app.command("ingest")
def ingest(
    url: ExchangeUrl = DEFAULT_URL,
    operator_key: OperatorKey = None,
) -> None:
    """Gather the living city's permit and penalty events from the distribution outbox into
    double publicity, as the market regulator's decisions (idempotent)."""
    import httpx

    key = _operator_key(operator_key)
    after, published, events = 0, 0, 0
    with httpx.Client(base_url=url.rstrip("/"), timeout=120) as http:
        while True:
            resp = http.post(
                "/api/v1/credit/ingest",
                params={"after": after},
                headers={"Authorization": f"Bearer {key}"},
            )
            if resp.status_code != 200:
                typer.echo(f"error: {resp.status_code} {resp.text[:300]}", err=True)
                raise typer.Exit(1)
            answer = resp.json()
            if not answer["events"]:
                break
            events += answer["events"]
            published += answer["published"]
            after = answer["cursor"]
    typer.echo(f"{events} change events read, {published} decisions published")


def _operator_key(given: str | None) -> str:
    from exchange.config import Settings
    from exchange.security import state_dir

    settings = Settings() if given is None else Settings(operator_key=given)
    if settings.operator_key:
        return settings.operator_key
    path = state_dir(settings) / "operator.key"
    if not path.exists():
        typer.echo("error: no operator key (pass --operator-key)", err=True)
        raise typer.Exit(2)
    return path.read_text().strip()
