"""What ``exchange up`` prints once it serves: where everything is, and keys to try it with.

Built as data (``build``) and printed separately (``show``), so tests can run the very
command and open the very link a user copies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from sqlalchemy.engine import make_url

from exchange.authz.calendar import BEIJING, OfficialSchedule
from exchange.config import Settings
from exchange.security import demo_key, state_dir

# The household-check story's departments: civil affairs asks, the other two provide.
DEMO_DEPARTMENTS = (("mzj", "市民政局"), ("gaj", "市公安局"), ("scjgj", "市市场监管局"))
# The provincial platform's: market regulation asks (the cross-level story), two provide.
PROVINCE_DEMO_DEPARTMENTS = (
    ("gd-scjgj", "省市场监管局"),
    ("gd-gat", "省公安厅"),
    ("gd-mzt", "省民政厅"),
)
TRY_QUERY = "户籍"
# How long before the official holiday schedule runs out the banner starts saying so: a
# ten-working-day review deadline reaches about a month ahead, a demo is planned further.
CALENDAR_NOTICE_DAYS = 90


@dataclass(frozen=True)
class Banner:
    rows: list[tuple[str, str]]
    # Printed outside the panel, unwrapped: a wrapped URL or command cannot be copied.
    portal_link: str
    try_command: str


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def operator_key_note(settings: Settings, *, generated: bool, from_env: bool) -> str:
    """Where the operator key comes from, naming the file it is kept in (if any)."""
    if from_env:
        return "from EXCHANGE_OPERATOR_KEY"
    path = _shown_path(state_dir(settings) / "operator.key")
    return f"generated, kept in {path}" if generated else f"kept in {path}"


def demo_departments(settings: Settings) -> tuple[tuple[str, str], ...]:
    """The departments whose keys the banner shows: the city's or the province's."""
    return PROVINCE_DEMO_DEPARTMENTS if settings.level == "province" else DEMO_DEPARTMENTS


def portal_link(
    base: str, operator_key: str, departments: tuple[tuple[str, str], ...] = DEMO_DEPARTMENTS
) -> str:
    """The portal signed in as the first demo department, the others one click away
    (the portal reads ``#key=…&keys=…``, see web/README.md)."""
    first, *others = (demo_key(operator_key, code) for code, _ in departments)
    keys = ",".join(quote(k, safe="") for k in (operator_key, *others))
    return f"{base}/#key={quote(first, safe='')}&keys={keys}"


def try_command(
    base: str, operator_key: str, departments: tuple[tuple[str, str], ...] = DEMO_DEPARTMENTS
) -> str:
    # The query is percent-encoded: raw UTF-8 in a URL is refused as an invalid request.
    key = demo_key(operator_key, departments[0][0])
    return (
        f'curl -H "Authorization: Bearer {key}" "{base}/api/v1/catalog/topics?q={quote(TRY_QUERY)}"'
    )


def calendar_notice(
    settings: Settings, today: dt.date, schedule: OfficialSchedule | None = None
) -> str | None:
    """What review deadlines will do once the official holiday schedule runs out, when that
    is near (or past); None while it is far."""
    years = (schedule or OfficialSchedule.from_package()).years
    last = dt.date(years.stop - 1, 12, 31)
    if today + dt.timedelta(days=CALENDAR_NOTICE_DAYS) <= last:
        return None
    year = years.stop
    fix = (
        f"upgrade chinese-calendar once {year}'s schedule is published, "
        "or list its days in EXCHANGE_HOLIDAYS/EXCHANGE_WORKDAYS"
    )
    if settings.calendar_uncovered == "weekdays":
        return (
            f"holidays known to {last}; later deadlines count Monday-Friday plus "
            f"EXCHANGE_HOLIDAYS ({year}'s Spring Festival unknown): {fix}"
        )
    return (
        f"holidays known to {last}; later review deadlines are refused "
        f"(503 calendar_not_covered): {fix}"
    )


@dataclass(frozen=True)
class Peer:
    """The other level's platform, when both run together (``exchange up --federation``)."""

    settings: Settings
    operator_key: str
    #: where its process writes what it prints (its own banner, its errors)
    log: Path | None = None


def build(
    settings: Settings,
    operator_key: str,
    *,
    generated: bool,
    from_env: bool,
    peer: Peer | None = None,
) -> Banner:
    base = settings.base_url
    departments = demo_departments(settings)
    rows = [
        (
            "Platform",
            "provincial platform (省级)" if settings.level == "province" else "city (市级)",
        ),
        ("Portal", f"{base}/"),
        ("API docs", f"{base}/docs"),
        ("Health", f"{base}/healthz"),
    ]
    if settings.mock_departments:
        rows.append(("Mock departments", f"{base}/departments/<code>"))
    rows.append(("Database", make_url(settings.database_url).render_as_string(hide_password=True)))
    note = operator_key_note(settings, generated=generated, from_env=from_env)
    rows.append(("Operator key", f"{operator_key} ({note})"))
    for code, label in departments:
        rows.append((f"Demo key {code}", f"{demo_key(operator_key, code)}  {label}"))
    if settings.peer_url:
        rows.append(("Federated with", f"{settings.peer_url}  (signed calls both ways)"))
    if peer is not None:
        other = peer.settings
        rows.append(("Province portal", f"{other.base_url}/"))
        rows.append(
            ("Province database", make_url(other.database_url).render_as_string(hide_password=True))
        )
        rows.append(("Province operator", peer.operator_key))
        if peer.log is not None:
            rows.append(("Province log", str(peer.log)))
        for code, label in demo_departments(other):
            rows.append((f"Demo key {code}", f"{demo_key(peer.operator_key, code)}  {label}"))
    rows.append(
        (
            "Provider auth",
            "departments answer only the broker's signed calls  "
            "(a unit's credential: exchange provider-credential <code>)",
        )
    )
    notice = calendar_notice(settings, dt.datetime.now(BEIJING).date())
    if notice:
        rows.append(("Working days", notice))
    rows.append(("Demo", "exchange demo   (in another terminal: the household check story)"))
    rows.append(("Load test", "exchange load   (a compressed day of 37,484,000 records)"))
    return Banner(
        rows=rows,
        portal_link=portal_link(base, operator_key, departments),
        try_command=try_command(base, operator_key, departments),
    )


def show(banner: Banner, console: Console) -> None:
    table = Table.grid(padding=(0, 2))
    for label, text in banner.rows:
        table.add_row(label, text)
    console.print(
        Panel(table, title="exchange — 政务信息共享平台 simulator", expand=False), markup=False
    )
    console.print("Portal with the demo keys:", style="bold", markup=False)
    console.print(banner.portal_link, soft_wrap=True, markup=False, highlight=False)
    console.print("Try:", style="bold", markup=False)
    console.print(banner.try_command, soft_wrap=True, markup=False, highlight=False)
