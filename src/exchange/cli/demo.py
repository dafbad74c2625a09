"""``exchange demo``: tell a story against a running exchange (the stories themselves live
in ``exchange.demo*``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

from exchange.cli.common import DEFAULT_URL, ExchangeUrl, OperatorKey, fail, make_settings
from exchange.config import Settings

if TYPE_CHECKING:
    from exchange.departments.city import City


def demo(
    url: ExchangeUrl = DEFAULT_URL,
    operator_key: OperatorKey = None,
    pause: Annotated[float, typer.Option(help="Seconds to pause at each step.")] = 0.8,
    story: Annotated[
        str,
        typer.Option(
            help="household: household economic-status verification (居民家庭经济状况核对); "
            'newborn: a birth reaches three departments by subscription (新生儿出生"一件事"); '
            "enterprise: opening a business as one thing (企业开办一件事); "
            "federation: a provincial department's check through the province and the city "
            "(`exchange up --federation`)."
        ),
    ] = "household",
    province_url: Annotated[
        str, typer.Option(help="--story federation: the provincial platform.")
    ] = "http://127.0.0.1:8200",
    province_operator_key: Annotated[
        str | None,
        typer.Option(help="--story federation: its operator key (default: .exchange/province/)."),
    ] = None,
) -> None:
    """Tell a story against a running exchange. household (the default): applications,
    reviews, a dispute, one check fanned out through the broker, the audit. newborn: a birth
    registered at public security reaches health, medical security and civil affairs by
    subscription within seconds. enterprise: the legal-person library, a business licence
    issued and verified offline, the customs' credit-list check. federation: the provincial
    market regulator checks a Guangzhou enterprise through both exchanges."""
    from exchange.client import ExchangeError
    from exchange.demo import run_demo
    from exchange.departments.city import City
    from exchange.glossary import word
    from exchange.security import state_dir

    if story not in STORIES:
        raise fail(f"no story {story!r}", f"choose one of {', '.join(STORIES)}")

    settings = make_settings(operator_key=operator_key)
    key = settings.operator_key
    if not key:
        path = state_dir(settings) / "operator.key"
        if not path.exists():
            raise fail(
                "no operator key",
                "pass --operator-key, set EXCHANGE_OPERATOR_KEY, or run "
                "the demo where `exchange up` keeps .exchange/operator.key",
            )
        key = path.read_text().strip()
    out = Console()
    if story == "newborn":
        _newborn(url.rstrip("/"), key, out, pause, settings.lang)
        return
    # The demo's applicant comes from the same synthetic city the departments serve: the
    # seed, population and enterprises settings must be the running exchange's.
    city = City(settings.seed, settings.population, settings.enterprises)
    if story == "enterprise":
        _enterprise_story(url.rstrip("/"), key, city, out, pause)
        return
    if story == "federation":
        _federation_story(url, key, province_url, province_operator_key, city, out, pause)
        return
    try:
        report = run_demo(url.rstrip("/"), key, city, console=out, pause=pause, lang=settings.lang)
    except ExchangeError as exc:
        raise fail(f"the exchange at {url} refused the demo: {exc}") from exc
    except LookupError as exc:
        raise fail(
            str(exc), "run the demo against an exchange seeded with the core catalog"
        ) from exc
    out.rule("[bold]done")
    out.print(
        f"{len(report.applications)} applications, dispute decided "
        f"[bold]{word('decision', report.dispute_decision, settings.lang)}[/], "
        f"{sum(report.found.values())} records from "
        f"{len(report.found)} topics, {report.audited} audit entries, chain "
        + ("[green]intact[/]" if report.chain_ok else "[red]NOT intact[/]")
    )
    if not report.chain_ok:
        raise typer.Exit(code=1)


#: The stories ``exchange demo --story`` tells (the first is the default).
STORIES = ("household", "newborn", "enterprise", "federation")


def _newborn(url: str, key: str, out: Console, pause: float, lang: Literal["zh", "en"]) -> None:
    from exchange.client import ExchangeError
    from exchange.demo_newborn import CONSUMERS, run_newborn

    try:
        report = run_newborn(url, key, console=out, pause=pause, lang=lang)
    except ExchangeError as exc:
        raise fail(f"the exchange at {url} refused the story: {exc}") from exc
    except (LookupError, RuntimeError) as exc:
        raise fail(
            str(exc), "tell it against `exchange up` (the mock departments and subscriptions)"
        ) from exc
    out.rule("[bold]done")
    arrived = ", ".join(f"{c} {a.seconds:.2f} s" for c, a in report.arrivals.items())
    out.print(
        f"birth delivered to {len(report.arrivals)} of {len(CONSUMERS)} departments "
        f"({arrived}), chain " + ("[green]intact[/]" if report.chain_ok else "[red]NOT intact[/]")
    )
    if len(report.arrivals) < len(CONSUMERS) or not report.chain_ok:
        raise typer.Exit(code=1)


def _enterprise_story(url: str, key: str, city: City, out: Console, pause: float) -> None:
    import httpx

    from exchange.client import ExchangeError
    from exchange.demo_enterprise import run_enterprise_story

    try:
        report = run_enterprise_story(url, key, city, console=out, pause=pause)
    except (ExchangeError, httpx.HTTPError) as exc:
        raise fail(f"the exchange at {url} refused the story: {exc}") from exc
    except LookupError as exc:
        raise fail(str(exc)) from exc
    out.rule("[bold]done")
    out.print(
        f"{report.name}: {len(report.sources)} elements from the legal-person library, "
        f"business licence {report.licence_number} verified [bold]{report.verification}[/], "
        f"lists: {', '.join(report.lists) or 'neither'}"
    )
    if report.verification != "valid" or not report.sources:
        raise typer.Exit(code=1)


def _federation_story(
    url: str,
    key: str,
    province_url: str,
    province_key: str | None,
    city: City,
    out: Console,
    pause: float,
) -> None:
    from exchange.demo_federation import run_federation_demo
    from exchange.security import read_operator_key

    if not province_key:
        province_key = read_operator_key(Settings(level="province", operator_key=None))
    if not province_key:
        raise fail(
            "no operator key of the province",
            "pass --province-operator-key, or run where `exchange up --federation` keeps "
            ".exchange/province/operator.key",
        )
    try:
        report = run_federation_demo(
            url, key, province_url, province_key, city, console=out, pause=pause
        )
    except (RuntimeError, LookupError) as exc:
        raise fail(str(exc), "start both platforms with `exchange up --federation`") from exc
    out.rule("[bold]done")
    out.print(
        f"{sum(len(r) for r in report.records.values())} records across levels for "
        f"{report.enterprise}; both audit trails share the correlation id: "
        + ("[green]yes[/]" if report.same_correlation else "[red]NO[/]")
    )
    if not report.same_correlation:
        raise typer.Exit(code=1)
