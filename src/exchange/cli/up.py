"""``exchange up`` (the whole exchange, and with --federation its province) and ``exchange
seed`` (a split deployment's first step): both seed the catalog with a progress bar."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from exchange.cli.common import DatabaseOption, console, fail, make_settings
from exchange.config import Settings


def _seed_with_progress(settings: Settings, departments_url: str | None = None) -> None:
    from exchange.app import build_context
    from exchange.catalog.content import ContentError
    from exchange.seed import BUILTIN, adopt_builtin, is_seeded, seed

    ctx = build_context(settings)
    try:
        if departments_url is None:
            served = _served_departments(settings)
            if is_seeded(ctx.db):
                adopt_builtin(ctx.db, served)
                return
            # Relative: resolved against whatever port this process runs on.
            departments_url = BUILTIN if served else None
        else:
            # Departments elsewhere (exchange seed): every defined one, at that address.
            served = all_departments(settings)
            if is_seeded(ctx.db):
                return
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            tasks: dict[str, int] = {}

            def report(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = int(bar.add_task(f"seeding {stage}", total=total))
                bar.update(tasks[stage], completed=done)  # type: ignore[arg-type]

            try:
                seed(
                    ctx.db,
                    settings,
                    ctx.operator_key,
                    ctx.clock,
                    served=served,
                    departments_url=departments_url,
                    progress=report,
                )
            except ContentError as exc:
                raise fail(str(exc), "fix the file named above, then run again") from exc
    finally:
        ctx.db.dispose()


def _served_departments(settings: Settings) -> list[str]:
    if not settings.mock_departments:
        return []
    return all_departments(settings)


def all_departments(settings: Settings) -> list[str]:
    """Codes of the mock departments defined in ``settings.services_dir``."""
    try:
        from exchange.departments.definitions import load_definitions
    except ImportError:
        return []
    return sorted(load_definitions(settings.services_dir))


def up(
    port: Annotated[int | None, typer.Option(help="Port to serve on (default 8000).")] = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL (default: embedded SQLite in .exchange/).")
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Catalog seeded on first start: core, guangzhou-2017, platform-2020."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Exchange processes sharing the port and the database (the mock "
            "departments then run in a process of their own).",
        ),
    ] = 1,
    level: Annotated[
        str | None,
        typer.Option(help="city (default) or province: which platform this exchange is."),
    ] = None,
    federation: Annotated[
        bool,
        typer.Option(
            "--federation",
            help="Also run the provincial platform (its own port and database, its mock "
            "departments), connected to this city exchange.",
        ),
    ] = False,
    province_port: Annotated[
        int | None, typer.Option(help="--federation: the province's port (default port+200).")
    ] = None,
    province_database_url: Annotated[
        str | None,
        typer.Option(
            help="--federation: the province's database (default: SQLite in .exchange/province/)."
        ),
    ] = None,
) -> None:
    """Run the whole exchange with mock departments on one port (with --federation: and
    the provincial platform beside it, on a second port)."""
    from exchange import banner
    from exchange.app import build_context, create_app, tune_gc
    from exchange.catalog.generate import PROFILES
    from exchange.db.migrate import SchemaNotCurrent
    from exchange.security import resolve_operator_key
    from exchange.serving import port_in_use, run

    settings = make_settings(
        port=port, host=host, database_url=database_url, catalog_profile=profile, level=level
    )
    # Everything that can refuse is checked before the first file or row is written.
    if settings.level not in ("city", "province"):
        raise fail(f"no platform level {settings.level!r}", "choose city or province")
    if federation and (settings.level != "city" or workers > 1):
        raise fail("--federation starts a city exchange (one process) and its province")
    if settings.catalog_profile not in PROFILES:
        raise fail(
            f"no catalog profile {settings.catalog_profile!r}",
            f"choose one of: {', '.join(sorted(PROFILES))}",
        )
    if port_in_use(settings.host, settings.port):
        raise fail(
            f"{settings.host}:{settings.port} is already in use (another exchange?)",
            "stop what listens there, or pass --port / set EXCHANGE_PORT",
        )
    from_env = settings.operator_key is not None
    operator_key, generated = resolve_operator_key(settings)
    settings = settings.model_copy(update={"operator_key": operator_key})
    if federation:
        _up_federated(settings, province_port, province_database_url, generated, from_env)
        return

    def show_banner() -> None:
        # Once the port answers (serving's on_ready): its curl works as soon as it is shown.
        banner.show(
            banner.build(settings, operator_key, generated=generated, from_env=from_env),
            console,
        )

    try:
        _seed_with_progress(settings)
        if workers > 1:
            from exchange.workers import serve_workers

            def ready_workers() -> None:
                show_banner()
                console.print(f"[dim]{workers} worker processes on port {settings.port}[/]")

            serve_workers(settings, workers, on_ready=ready_workers)
            return
        ctx = build_context(settings)
    except SchemaNotCurrent as exc:
        raise fail(str(exc)) from exc
    application = create_app(settings, ctx=ctx)
    tune_gc(settings)
    run(application, host=settings.host, port=settings.port, on_ready=show_banner)


def _up_federated(
    city: Settings,
    province_port: int | None,
    province_database_url: str | None,
    generated: bool,
    from_env: bool,
) -> None:
    """The city exchange in this process, the provincial platform in a child process."""
    from exchange import banner
    from exchange.app import build_context, create_app, tune_gc
    from exchange.db.migrate import SchemaNotCurrent
    from exchange.federation.launch import pair_settings, province_process
    from exchange.security import resolve_operator_key, state_dir
    from exchange.serving import port_in_use, run

    # Explicit values only: the city's EXCHANGE_* environment must not leak into the
    # province (its own database, keys and state directory).
    province = Settings(
        level="province",
        host=city.host,
        port=province_port or city.port + 200,
        database_url=province_database_url or "sqlite:///./.exchange/province/exchange.db",
        operator_key=None,
        provider_secret=None,
        seed=city.seed,
        population=city.population,
        enterprises=city.enterprises,
    )
    if port_in_use(province.host, province.port):
        raise fail(
            f"{province.host}:{province.port} is already in use",
            "pass --province-port for the provincial platform",
        )
    province_key, _ = resolve_operator_key(province)
    pair = pair_settings(city, province.model_copy(update={"operator_key": province_key}))
    try:
        _seed_with_progress(pair.city)
        ctx = build_context(pair.city)
    except SchemaNotCurrent as exc:
        raise fail(str(exc)) from exc
    # Its own banner would repeat what the city's shows of it: its output goes to a log.
    log = state_dir(pair.province) / "up.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"[dim]starting the provincial platform … (its log: {log})[/]")
    with ExitStack() as running:
        try:
            running.enter_context(province_process(pair.province, log=log))
        except RuntimeError as exc:
            raise fail(str(exc), "read its log for why") from exc
        application = create_app(pair.city, ctx=ctx)

        def show_banner() -> None:
            banner.show(
                banner.build(
                    pair.city,
                    city.operator_key or "",
                    generated=generated,
                    from_env=from_env,
                    peer=banner.Peer(pair.province, province_key, log),
                ),
                console,
            )

        tune_gc(pair.city)
        run(application, host=pair.city.host, port=pair.city.port, on_ready=show_banner)


def seed(
    departments_url: Annotated[
        str,
        typer.Option(
            help="Where the broker reaches the mock departments (`exchange serve "
            "departments`), e.g. http://departments:8100/departments."
        ),
    ],
    database_url: DatabaseOption = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Catalog to seed: core, guangzhou-2017, platform-2020."),
    ] = None,
) -> None:
    """Create the tables and seed the catalog, units and demo keys, once (a split
    deployment's first step, after `exchange db upgrade`; `exchange up` does it itself).
    Seeding twice is a no-op."""
    from exchange.db.migrate import SchemaNotCurrent
    from exchange.security import resolve_operator_key

    settings = make_settings(database_url=database_url, catalog_profile=profile)
    operator_key, _ = resolve_operator_key(settings)
    settings = settings.model_copy(update={"operator_key": operator_key})
    try:
        _seed_with_progress(settings, departments_url=departments_url.rstrip("/"))
    except SchemaNotCurrent as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"seeded: {settings.database_url} (departments at {departments_url})")
