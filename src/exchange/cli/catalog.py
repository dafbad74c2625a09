"""``exchange catalog …``: check the catalog content before an exchange seeds it."""

from __future__ import annotations

from typing import Annotated

import typer

from exchange.cli.common import fail, make_settings

app = typer.Typer(help="Catalog content: validate and inspect.")


@app.command("validate")
def catalog_validate(
    profile: Annotated[str, typer.Option(help="Profile to expand and check.")] = "core",
) -> None:
    """Validate catalog/ (units and topics) and the expansion of a profile."""
    from exchange.catalog.content import ContentError, load_core_topics, load_units
    from exchange.catalog.generate import generate_catalog

    settings = make_settings()
    try:
        units = load_units(settings.catalog_dir)
        core = load_core_topics(settings.catalog_dir)
        topics = generate_catalog(profile, units, core, settings.seed)
    except (ContentError, ValueError) as exc:
        raise fail(str(exc)) from exc
    providers = {t.provider for t in topics}
    typer.echo(
        f"ok: {len(units)} units, {len(core)} core topics, profile {profile}: "
        f"{len(topics)} topics from {len(providers)} providers"
    )
