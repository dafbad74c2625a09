"""``exchange licence …``: verify licences offline, from anywhere, with no key."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from exchange.cli.common import DEFAULT_URL, ExchangeUrl, OperatorKey

licence_app = typer.Typer(help="Electronic licences (电子证照): verify a number and code.")

_console = Console(stderr=True)
DEFAULT_CACHE = Path(".exchange") / "licence-trust.json"


def _fail(message: str, hint: str = "") -> typer.Exit:
    _console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    if hint:
        _console.print(f"[dim]{escape(hint)}[/]", soft_wrap=True)
    return typer.Exit(code=2)


@licence_app.command("verify")
def verify(
    number: Annotated[str, typer.Argument(help="The licence number (证照编号).")],
    code: Annotated[str, typer.Argument(help="Its verification code (核验码, the QR payload).")],
    url: Annotated[
        str, typer.Option(help="Exchange to fetch the public key and status list from.")
    ] = "http://127.0.0.1:8000",
    cache: Annotated[
        Path,
        typer.Option(help="Copy of the key and status list: refreshed, or used offline."),
    ] = DEFAULT_CACHE,
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not contact the exchange: use the copy.")
    ] = False,
    content: Annotated[
        Path | None,
        typer.Option(help="JSON file of the presented licence's items, to compare too."),
    ] = None,
    today: Annotated[
        str | None, typer.Option(help="Judge expiry on this day (YYYY-MM-DD).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Verify a licence against the platform's public key; exit 0 if valid, 1 if not (the
    reason printed: revoked, expired, altered …), 2 if it could not be checked."""
    from exchange.client import (
        ExchangeAPIError,
        TransportError,
        fetch_licence_verifier,
        load_licence_verifier,
    )

    try:
        if offline:
            verifier = load_licence_verifier(cache)
        else:
            cache.parent.mkdir(parents=True, exist_ok=True)
            verifier = fetch_licence_verifier(url, cache=cache)
        items = json.loads(content.read_text(encoding="utf-8")) if content else None
        day = dt.date.fromisoformat(today) if today else None
    except (TransportError, ExchangeAPIError) as exc:
        raise _fail(f"cannot fetch the licence key from {url}: {exc}", "try --offline") from exc
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    if items is not None and not isinstance(items, dict):
        raise _fail("--content: a JSON object of the licence's items")
    result = verifier.verify(number, code, content=items, today=day)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        out = Console()
        mark = "[bold green]VALID[/]" if result.ok else f"[bold red]{result.reason.upper()}[/]"
        out.print(f"{mark} {escape(number)}: {escape(result.message)}")
        if result.claims is not None:
            c = result.claims
            out.print(
                f"  {escape(c.type_name)} of {escape(c.holder_name)} ({escape(c.holder_id)}), "
                f"issued {c.issued_on} by {escape(c.issuer_name)}, valid until "
                f"{c.valid_until or '长期'}"
            )
        if result.revoked is not None:
            out.print(f"  revoked {result.revoked[1]}: {escape(result.revoked[0])}")
        if result.status_as_of is not None:
            note = " [yellow](stale: fetch a new one)[/]" if result.stale else ""
            out.print(f"  status list of {result.status_as_of.isoformat()}{note}")
    sys.stdout.flush()
    if not result.ok:
        raise typer.Exit(code=1)


@licence_app.command("feed")
def feed(
    url: ExchangeUrl = DEFAULT_URL,
    operator_key: OperatorKey = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="Platform days to cover.")] = 7,
    all_types: Annotated[
        bool,
        typer.Option(
            "--all-types",
            help="Also derive marriage certificates and business licences (for departments "
            "that do not publish the city's changes, which issue those).",
        ),
    ] = False,
) -> None:
    """Issue, as the mock departments, the licences derived from the synthetic city over
    the last DAYS platform days: professional qualifications (人社局), and with --all-types
    marriage certificates (民政局) and business licences (市场监管局) (idempotent: run it
    after each `exchange clock advance`)."""
    import httpx

    from exchange.config import Settings
    from exchange.departments.city import City
    from exchange.licences.feed import DERIVED_RATES, run
    from exchange.security import demo_key, read_operator_key

    settings = Settings() if operator_key is None else Settings(operator_key=operator_key)
    key = read_operator_key(settings)
    if not key:
        raise _fail("no operator key", "pass --operator-key or set EXCHANGE_OPERATOR_KEY")
    op_key: str = key
    city = City(settings.seed, settings.population, settings.enterprises)
    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=60) as http:
            clock = http.get("/api/v1/clock", headers={"Authorization": f"Bearer {op_key}"})
            if clock.status_code != 200:
                raise _fail(f"GET /api/v1/clock: {clock.status_code} {clock.text[:200]}")
            today = dt.date.fromisoformat(clock.json()["today"])

            def post(issuer: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
                resp = http.post(
                    "/api/v1/licences",
                    json=body,
                    headers={"Authorization": f"Bearer {demo_key(op_key, issuer)}"},
                )
                answer: dict[str, object] = resp.json()
                return resp.status_code, answer

            rates = DERIVED_RATES if all_types else None
            report = run(post, city, today, days=days, rates=rates, seed=settings.seed)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach {url}: {exc}") from exc
    per_type = ", ".join(f"{k} {v}" for k, v in sorted(report.per_type.items())) or "none"
    typer.echo(
        f"{today}: {report.issued} licences issued ({per_type}), {report.already} already "
        f"issued, {report.refused} refused"
    )
    for line in report.errors[:10]:
        _console.print(f"[red]{escape(line)}[/]")
    if report.refused:
        raise typer.Exit(code=1)
