"""The single ``exchange`` command."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from exchange.config import Settings
from exchange.credit import cli as credit_cli
from exchange.licences.cli import licence_app
from exchange.loadrun import load as load_command

if TYPE_CHECKING:
    from exchange.db.engine import Database
    from exchange.departments.city import City

app = typer.Typer(
    help="exchange: a simulator of a municipal government information-sharing exchange.",
    no_args_is_help=True,
    add_completion=False,
)
serve_app = typer.Typer(help="Run one part of the exchange as its own process.")
clock_app = typer.Typer(help="The platform's simulated clock.")
catalog_app = typer.Typer(help="Catalog content: validate and inspect.")
app.add_typer(serve_app, name="serve")
app.add_typer(clock_app, name="clock")
app.add_typer(catalog_app, name="catalog")
audit_app = typer.Typer(help="The hash-chained audit log of exchanges.")
app.add_typer(audit_app, name="audit")
app.command("load")(load_command)
db_app = typer.Typer(help="The database's schema: upgrade it, see where it stands.")
app.add_typer(db_app, name="db")
federation_app = typer.Typer(help="The connection between the city and the provincial platform.")
app.add_typer(federation_app, name="federation")
app.add_typer(credit_cli.app, name="credit")
app.add_typer(licence_app, name="licence")

console = Console(stderr=True)


def _settings(**overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)  # type: ignore[arg-type]


def _fail(message: str, hint: str = "") -> typer.Exit:
    # Unwrapped (soft_wrap): a path, URL or command cut across lines cannot be copied.
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    if hint:
        console.print(f"[dim]{escape(hint)}[/]", soft_wrap=True)
    return typer.Exit(code=2)


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
                    str(ctx.parts["operator_key"]),
                    ctx.clock,
                    served=served,
                    departments_url=departments_url,
                    progress=report,
                )
            except ContentError as exc:
                raise _fail(str(exc), "fix the file named above, then run again") from exc
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


@app.command()
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
    from exchange.app import build_context, create_app, freeze_heap
    from exchange.catalog.generate import PROFILES
    from exchange.db.migrate import SchemaNotCurrent
    from exchange.security import resolve_operator_key
    from exchange.serving import port_in_use, run

    settings = _settings(
        port=port, host=host, database_url=database_url, catalog_profile=profile, level=level
    )
    # Everything that can refuse is checked before the first file or row is written.
    if settings.level not in ("city", "province"):
        raise _fail(f"no platform level {settings.level!r}", "choose city or province")
    if federation and (settings.level != "city" or workers > 1):
        raise _fail("--federation starts a city exchange (one process) and its province")
    if settings.catalog_profile not in PROFILES:
        raise _fail(
            f"no catalog profile {settings.catalog_profile!r}",
            f"choose one of: {', '.join(sorted(PROFILES))}",
        )
    if port_in_use(settings.host, settings.port):
        raise _fail(
            f"{settings.host}:{settings.port} is already in use (another exchange?)",
            "stop what listens there, or pass --port / set EXCHANGE_PORT",
        )
    from_env = settings.operator_key is not None
    operator_key, generated = resolve_operator_key(settings)
    settings = settings.model_copy(update={"operator_key": operator_key})
    if federation:
        _up_federated(settings, province_port, province_database_url, generated, from_env)
        return
    try:
        _seed_with_progress(settings)
        if workers > 1:
            from exchange.workers import serve_workers

            banner.show(
                banner.build(settings, operator_key, generated=generated, from_env=from_env),
                console,
            )
            console.print(f"[dim]{workers} worker processes on port {settings.port}[/]")
            serve_workers(settings, workers)
            return
        ctx = build_context(settings)
    except SchemaNotCurrent as exc:
        raise _fail(str(exc)) from exc
    application = create_app(settings, ctx=ctx)
    banner.show(
        banner.build(settings, operator_key, generated=generated, from_env=from_env), console
    )
    freeze_heap()
    run(application, host=settings.host, port=settings.port)


def _up_federated(
    city: Settings,
    province_port: int | None,
    province_database_url: str | None,
    generated: bool,
    from_env: bool,
) -> None:
    """The city exchange in this process, the provincial platform in a child process."""
    from exchange import banner
    from exchange.app import build_context, create_app, freeze_heap
    from exchange.db.migrate import SchemaNotCurrent
    from exchange.federation.launch import pair_settings, province_process
    from exchange.security import resolve_operator_key
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
        raise _fail(
            f"{province.host}:{province.port} is already in use",
            "pass --province-port for the provincial platform",
        )
    province_key, _ = resolve_operator_key(province)
    pair = pair_settings(city, province.model_copy(update={"operator_key": province_key}))
    try:
        _seed_with_progress(pair.city)
        ctx = build_context(pair.city)
    except SchemaNotCurrent as exc:
        raise _fail(str(exc)) from exc
    console.print("[dim]starting the provincial platform …[/]")
    with province_process(pair.province):
        application = create_app(pair.city, ctx=ctx)
        banner.show(
            banner.build(
                pair.city,
                city.operator_key or "",
                generated=generated,
                from_env=from_env,
                peer=banner.Peer(pair.province, province_key),
            ),
            console,
        )
        freeze_heap()
        run(application, host=pair.city.host, port=pair.city.port)


@serve_app.command("departments")
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

    settings = _settings(port=port, host=host)
    operator_key, _ = resolve_operator_key(settings)
    provider_secret, generated = resolve_provider_secret(settings)
    settings = settings.model_copy(
        update={"operator_key": operator_key, "provider_secret": provider_secret}
    )
    scheme = "https" if ssl_certfile else "http"
    console.print(
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
    )


@app.command("provider-credential")
def provider_credential(
    code: Annotated[str, typer.Argument(help="The provider department's code, e.g. swj.")],
    database_url: Annotated[str | None, typer.Option(help="Database of the exchange.")] = None,
) -> None:
    """Print the credential a provider verifies the exchange's calls with (operator only:
    it reads the exchange's master secret). Hand it to the department, like its API key."""
    from exchange.provider_auth import derive_provider_secret
    from exchange.security import provider_secret_path, resolve_provider_secret

    settings = _settings(database_url=database_url)
    if not settings.provider_secret:
        # Asking must not create: a new secret here would hand out a credential that the
        # running exchange (which kept its own) never signs with.
        _existing_url(settings)
        path = provider_secret_path(settings)
        if not path.exists():
            raise _fail(
                f"no provider secret at {path}",
                "the exchange creates it on its first start: run this where `exchange up` "
                "keeps its state, or set EXCHANGE_PROVIDER_SECRET",
            )
    secret, _ = resolve_provider_secret(settings)
    typer.echo(derive_provider_secret(secret, code))


@federation_app.command("credential")
def federation_credential(
    level: Annotated[str | None, typer.Option(help="city or province (EXCHANGE_LEVEL).")] = None,
    database_url: Annotated[str | None, typer.Option(help="Database of the exchange.")] = None,
) -> None:
    """Print the credential this platform issues to its peer (operator only: it reads the
    master secret). Hand it to the peer's operator once; the peer sets it as
    EXCHANGE_PEER_CREDENTIAL and signs its calls here with it."""
    from exchange.federation.trust import issued_credential
    from exchange.security import provider_secret_path, resolve_provider_secret

    settings = _settings(database_url=database_url, level=level)
    if not settings.provider_secret and not provider_secret_path(settings).exists():
        raise _fail(
            f"no provider secret at {provider_secret_path(settings)}",
            "the exchange creates it on its first start: run this where `exchange up` keeps "
            "its state, or set EXCHANGE_PROVIDER_SECRET",
        )
    secret, _ = resolve_provider_secret(settings)
    typer.echo(issued_credential(secret, settings.peer_code))


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
        raise _fail(
            f"no exchange answers at {target}",
            "start it (`exchange up`), or pass --database-url to use its database directly",
        )
    return None


def _clock_call(target: str, settings: Settings, method: str, path: str, **body: str) -> str:
    import httpx

    from exchange.security import read_operator_key

    key = read_operator_key(settings)
    if key is None:
        raise _fail(
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
        raise _fail(f"the exchange at {target} did not answer: {exc}") from exc
    if resp.status_code != 200:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:200]
        raise _fail(f"the exchange at {target} refused ({resp.status_code}): {message}")
    data = resp.json()
    now = dt.datetime.fromisoformat(data["now"]).isoformat(timespec="seconds")
    return f"{now} (offset {dt.timedelta(seconds=data['offset_seconds'])})"


PortOption = Annotated[int | None, typer.Option(help="Port (default EXCHANGE_PORT, else 8000).")]
HostOption = Annotated[
    str | None, typer.Option(help="Interface to bind (default EXCHANGE_HOST, else 127.0.0.1).")
]
DatabaseOption = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL (default EXCHANGE_DATABASE_URL).")
]


def _serve_part(
    part: str, port: int | None, host: str | None, database_url: str | None, **front: object
) -> None:
    """Serve one part of :data:`exchange.app.PARTS` on its own (see ``exchange up``)."""
    from exchange.app import build_context, create_app, freeze_heap
    from exchange.db.migrate import SchemaNotCurrent
    from exchange.security import resolve_operator_key
    from exchange.serving import run

    settings = _settings(port=port, host=host, database_url=database_url, mock_departments=False)
    operator_key, _ = resolve_operator_key(settings)
    settings = settings.model_copy(update={"operator_key": operator_key})
    try:
        ctx = build_context(settings)
    except SchemaNotCurrent as exc:
        raise _fail(str(exc)) from exc
    application: object = create_app(settings, ctx=ctx, parts=(part,))
    if part == "portal":
        from exchange.web.gateway import Gateway, PartUrls

        urls = {name: list(v) for name, v in front.items() if isinstance(v, list | tuple)}
        application = Gateway(application, PartUrls(urls))  # type: ignore[arg-type]
        routes = ", ".join(f"{name} → {' '.join(v)}" for name, v in urls.items() if v)
        console.print(f"portal on {settings.base_url}/ ; API routed to {routes or 'nothing'}")
    else:
        console.print(f"{part} on {settings.base_url} ({settings.database_url})")
    freeze_heap()
    run(application, host=settings.host, port=settings.port)


@serve_app.command("broker")
def serve_broker(
    port: PortOption = None, host: HostOption = None, database_url: DatabaseOption = None
) -> None:
    """Serve only the broker (/api/v1/exchange, /metrics): run several, one database."""
    _serve_part("broker", port, host, database_url)


@serve_app.command("catalog")
def serve_catalog(
    port: PortOption = None, host: HostOption = None, database_url: DatabaseOption = None
) -> None:
    """Serve only the catalog and its member units (/api/v1/catalog, /api/v1/departments)."""
    _serve_part("catalog", port, host, database_url)


@serve_app.command("authz")
def serve_authz(
    port: PortOption = None, host: HostOption = None, database_url: DatabaseOption = None
) -> None:
    """Serve only authorization and the audit log (applications, disputes, grants, audit)."""
    _serve_part("authz", port, host, database_url)


@serve_app.command("portal")
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


@app.command()
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

    settings = _settings(database_url=database_url, catalog_profile=profile)
    operator_key, _ = resolve_operator_key(settings)
    settings = settings.model_copy(update={"operator_key": operator_key})
    try:
        _seed_with_progress(settings, departments_url=departments_url.rstrip("/"))
    except SchemaNotCurrent as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"seeded: {settings.database_url} (departments at {departments_url})")


@clock_app.command("advance")
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
        raise _fail(str(exc)) from exc
    settings = _settings(database_url=database_url)
    target = _clock_target(settings, url, database_url)
    if target is not None:
        now = _clock_call(target, settings, "POST", "/api/v1/clock/advance", by=by)
        typer.echo(f"platform time is now {now}, advanced by the exchange at {target}")
        return
    db = _open_current(settings)
    try:
        clock = Clock(db)
        moved = clock.advance(delta)
        offset = clock.offset
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    finally:
        db.dispose()
    typer.echo(
        f"platform time is now {moved.isoformat(timespec='seconds')} (offset {offset}), "
        f"advanced in {_shown(settings.database_url)}"
    )


@clock_app.command("reset")
def clock_reset(
    database_url: Annotated[str | None, typer.Option(help="Database of the exchange.")] = None,
) -> None:
    """Put the platform's simulated time back to wall time."""
    from exchange.clock import Clock

    settings = _settings(database_url=database_url)
    db = _open_current(settings)
    try:
        clock = Clock(db)
        clock.reset()
        typer.echo(f"platform time is wall time again: {clock.now().isoformat(timespec='seconds')}")
    finally:
        db.dispose()


@clock_app.command("show")
def clock_show(
    url: Annotated[str | None, typer.Option(help=_CLOCK_URL_HELP)] = None,
    database_url: Annotated[str | None, typer.Option(help=_CLOCK_DB_HELP)] = None,
) -> None:
    """Print the platform's simulated time and its offset from wall time."""
    from exchange.clock import Clock

    settings = _settings(database_url=database_url)
    target = _clock_target(settings, url, database_url)
    if target is not None:
        now = _clock_call(target, settings, "GET", "/api/v1/clock")
        typer.echo(f"{now}, from the exchange at {target}")
        return
    db = _open_current(settings)
    try:
        clock = Clock(db)
        typer.echo(
            f"{clock.now().isoformat(timespec='seconds')} (offset {clock.offset}), "
            f"from {_shown(settings.database_url)}"
        )
    finally:
        db.dispose()


@catalog_app.command("validate")
def catalog_validate(
    profile: Annotated[str, typer.Option(help="Profile to expand and check.")] = "core",
) -> None:
    """Validate catalog/ (units and topics) and the expansion of a profile."""
    from exchange.catalog.content import ContentError, load_core_topics, load_units
    from exchange.catalog.generate import generate_catalog

    settings = _settings()
    try:
        units = load_units(settings.catalog_dir)
        core = load_core_topics(settings.catalog_dir)
        topics = generate_catalog(profile, units, core, settings.seed)
    except (ContentError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    providers = {t.provider for t in topics}
    typer.echo(
        f"ok: {len(units)} units, {len(core)} core topics, profile {profile}: "
        f"{len(topics)} topics from {len(providers)} providers"
    )


@audit_app.command("verify")
def audit_verify(
    database_url: Annotated[str | None, typer.Option(help="Database of the exchange.")] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(help="PEM public key to check checkpoints with (default: the local key)."),
    ] = None,
) -> None:
    """Check the audit log; exit 1 listing each kind of tampering found (first bad entry
    and why): edited, deleted, reordered, truncated or rewritten entries, forged appends,
    forged or deleted checkpoints, altered statistics, forged journal lines.

    Entries a killed broker had journaled but not yet committed are committed first.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from exchange.audit.keys import Verifier
    from exchange.audit.trust import Trust
    from exchange.audit.verify import verify
    from exchange.audit.writer import recover

    settings = _settings(database_url=database_url)
    _existing_url(settings)  # the wrong directory is said first, before any key is looked for
    try:
        trust = Trust.of(settings, create=False)
        verifier = Verifier.from_pem(public_key.read_bytes()) if public_key else trust.verifier
    except (OSError, ValueError, SQLAlchemyError) as exc:
        raise _fail(f"the audit keys or mirror cannot be read: {exc}") from exc
    if verifier is None:
        trust.close()
        raise _fail(
            f"no audit signing key at {trust.key_path}: signed checkpoints cannot be checked",
            "pass --public-key (exchange audit public-key on the exchange's host prints it)",
        )
    try:
        db = _open_current(settings)
    except typer.Exit:
        trust.close()
        raise
    try:
        if trust.journal is not None and trust.signer is not None:
            recovery = recover(db, trust.journal, trust.signer)
            if recovery.replayed is None:
                typer.echo("note: a running exchange holds the audit journal; its newest")
                typer.echo("entries may still be on their way into the chain")
            elif recovery.replayed:
                typer.echo(f"recovered {recovery.replayed} journaled entries a stopped broker left")
        report = verify(db, verifier, trust.mirror, trust.journal)
    except (OSError, SQLAlchemyError) as exc:
        raise _fail(f"the audit log cannot be read: {type(exc).__name__}: {exc}"[:500]) from exc
    finally:
        db.dispose()
        trust.close()
    signed = f"signed up to seq {report.signed_seq} ({report.checkpoints} checkpoints"
    signed += f", key {report.key_id})"
    if report.ok:
        typer.echo(
            f"ok: {report.entries} entries, chain intact up to seq {report.last_seq}, {signed}"
        )
        if report.unsigned_tail:
            typer.echo(f"note: {report.unsigned_tail} newest entries are not signed yet")
        return
    console.print(
        f"[bold red]audit log tampered[/]: entry {report.first_bad_seq} "
        f"({report.problem}): {report.message}"
    )
    for finding in report.findings[1:]:
        at = f"entry {finding.first_bad_seq}" if finding.first_bad_seq is not None else "—"
        console.print(f"  also: {at} ({finding.problem}): {finding.message}")
    console.print(f"[dim]{report.entries} entries read; {signed}[/]")
    raise typer.Exit(code=1)


def _open_current(settings: Settings) -> Database:
    """The exchange's database, refused unless its schema is this code's."""
    from exchange.db.engine import Database
    from exchange.db.migrate import SchemaNotCurrent, ensure_current

    db = Database(_existing_url(settings))
    try:
        ensure_current(db)
    except SchemaNotCurrent as exc:
        db.dispose()
        raise _fail(str(exc)) from exc
    return db


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


_DB_URL_HELP = "Database (default: EXCHANGE_DATABASE_URL, else the embedded SQLite file)."


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision (default: the newest).")
    ] = "head",
    database_url: Annotated[str | None, typer.Option(help=_DB_URL_HELP)] = None,
) -> None:
    """Upgrade the database's schema (creating it in an empty database).

    Safe to run while exchanges serve from it only if the revisions in between say so in
    their notes; stop them first otherwise. Several runs at once wait for each other.
    """
    from exchange.db import migrate

    settings = _settings(database_url=database_url)
    url = settings.database_url
    try:
        before = migrate.state(url) if _database_exists(url) else None
        after = migrate.upgrade(url, revision)
    except migrate.SchemaNotCurrent as exc:
        raise _fail(str(exc)) from exc
    except Exception as exc:  # alembic's unknown/ambiguous revision errors
        if type(exc).__module__.startswith("alembic"):
            raise _fail(str(exc), "see `exchange db history` for the revisions") from exc
        raise
    was = ", ".join(before.current) if before and before.current else "empty"
    if before and before.unversioned:
        was = "created before migrations (adopted as the baseline)"
    now = ", ".join(after.current) or "empty"
    if before is not None and before.current == after.current:
        typer.echo(f"{_shown(url)}: already at {now}")
    else:
        typer.echo(f"{_shown(url)}: upgraded from {was} to {now}")


@db_app.command("current")
def db_current(
    database_url: Annotated[str | None, typer.Option(help=_DB_URL_HELP)] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 unless the database is at the newest revision.")
    ] = False,
) -> None:
    """Print the database's revision and whether it is this exchange's newest."""
    from exchange.db import migrate

    settings = _settings(database_url=database_url)
    url = _existing_url(settings)
    current = migrate.state(url)
    if current.at_head:
        typer.echo(f"{current.head} (head): {_shown(url)} is up to date")
        return
    typer.echo(migrate.describe(current, url))
    if check:
        raise typer.Exit(code=1)


@db_app.command("history")
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


@db_app.command("revision")
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
        raise _fail(str(exc)) from exc
    typer.echo(f"wrote {path}")
    typer.echo("review it, then run the tests: tests/db/test_migrations.py checks it")


def _database_exists(url: str) -> bool:
    """False only for a SQLite file that is not there (a server database is asked)."""
    from sqlalchemy.engine import make_url

    if not url.startswith("sqlite"):
        return True
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return True
    return Path(database).expanduser().exists()


def _existing_url(settings: Settings) -> str:
    """The configured database URL, refused when its SQLite file does not exist."""
    from sqlalchemy.engine import make_url

    url = settings.database_url
    if not _database_exists(url):
        path = Path(make_url(url).database or "").expanduser().resolve()
        raise _fail(
            f"no exchange database at {path}",
            "run this where `exchange up` keeps its .exchange/ directory, or pass "
            "--database-url / set EXCHANGE_DATABASE_URL",
        )
    return url


@audit_app.command("public-key")
def audit_public_key(
    database_url: Annotated[str | None, typer.Option(help="Database of the exchange.")] = None,
) -> None:
    """Print the public half of the audit signing key (PEM), for whoever checks the log."""
    from exchange.audit import keys
    from exchange.security import audit_key_path

    path = audit_key_path(_settings(database_url=database_url))
    if not path.exists():
        raise _fail(f"no audit signing key at {path}", "`exchange up` creates it on first start")
    try:
        verifier = keys.load(path).verifier
    except (OSError, ValueError) as exc:
        raise _fail(f"{path}: {exc}") from exc
    typer.echo(verifier.pem(), nl=False)
    console.print(f"[dim]key id {verifier.key_id()} ({path})[/]")


@app.command()
def demo(
    url: Annotated[
        str, typer.Option(help="Base URL of a running exchange (`exchange up`).")
    ] = "http://127.0.0.1:8000",
    operator_key: Annotated[
        str | None,
        typer.Option(
            help="Operator key (default: EXCHANGE_OPERATOR_KEY or .exchange/operator.key)."
        ),
    ] = None,
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
        raise _fail(f"no story {story!r}", f"choose one of {', '.join(STORIES)}")

    settings = _settings(operator_key=operator_key)
    key = settings.operator_key
    if not key:
        path = state_dir(settings) / "operator.key"
        if not path.exists():
            raise _fail(
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
        raise _fail(f"the exchange at {url} refused the demo: {exc}") from exc
    except LookupError as exc:
        raise _fail(
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
        raise _fail(f"the exchange at {url} refused the story: {exc}") from exc
    except (LookupError, RuntimeError) as exc:
        raise _fail(
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
        raise _fail(f"the exchange at {url} refused the story: {exc}") from exc
    except LookupError as exc:
        raise _fail(str(exc)) from exc
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
        raise _fail(
            "no operator key of the province",
            "pass --province-operator-key, or run where `exchange up --federation` keeps "
            ".exchange/province/operator.key",
        )
    try:
        report = run_federation_demo(
            url, key, province_url, province_key, city, console=out, pause=pause
        )
    except (RuntimeError, LookupError) as exc:
        raise _fail(str(exc), "start both platforms with `exchange up --federation`") from exc
    out.rule("[bold]done")
    out.print(
        f"{sum(len(r) for r in report.records.values())} records across levels for "
        f"{report.enterprise}; both audit trails share the correlation id: "
        + ("[green]yes[/]" if report.same_correlation else "[red]NO[/]")
    )
    if not report.same_correlation:
        raise typer.Exit(code=1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
