"""First-start seeding: member units, their demo keys, and the catalog of a profile."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.authn import OPERATOR, Principal
from exchange.catalog import service as catalog_service
from exchange.catalog.models import Topic
from exchange.clock import Clock
from exchange.config import Settings
from exchange.db.engine import Database
from exchange.licences import service as licences_service
from exchange.licences.content import expand as expand_licence_types
from exchange.licences.content import load as load_licence_catalog
from exchange.members import service as members_service
from exchange.members.models import Department
from exchange.security import demo_key

Progress = Callable[[str, int, int], None]

#: ``departments_url`` of the mock departments served by the exchange process itself
BUILTIN = "/departments"
# What seeding stored before the built-in departments' URL was relative: the address of
# the first start, e.g. http://127.0.0.1:8000/departments/gaj.
_LOOPBACK_URL = re.compile(
    r"^http://(?:127\.0\.0\.1|localhost|0\.0\.0\.0|\[::1\])(?::\d+)?/departments/([a-z0-9_-]+)$"
)


@dataclass(frozen=True)
class SeedReport:
    departments: int
    topics: int
    seeded: bool


def _quiet(_stage: str, _done: int, _total: int) -> None:
    return None


def adopt_builtin(db: Database, served: Collection[str]) -> int:
    """Make served departments stored with an absolute loopback URL of the built-in mock
    departments (a database seeded before URLs were relative) relative again; returns how
    many. A unit whose URL the operator or the unit pointed elsewhere is left alone."""
    changed = 0
    with db.session() as session:
        for dept in session.scalars(select(Department).where(Department.code.in_(served))):
            found = _LOOPBACK_URL.match(dept.base_url or "")
            if found is not None and found.group(1) == dept.code:
                dept.base_url = f"{BUILTIN}/{dept.code}"
                changed += 1
    return changed


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return bool(session.scalar(select(func.count(Department.code))))


def _seed_credit(session: Session, settings: Settings, clock: Clock) -> None:
    """Double publicity's starting state: the profile's counts and the list users' grants."""
    from exchange.authz.calendar import WorkingCalendar
    from exchange.credit import baseline

    baseline.seed_counts(session, settings.seed)
    baseline.seed_list_grants(
        session,
        now=clock.now(),
        today=clock.today(),
        calendar=WorkingCalendar.from_settings(
            settings.holidays, settings.workdays, uncovered=settings.calendar_uncovered
        ),
        review_days=settings.review_days,
    )


def seed(
    db: Database,
    settings: Settings,
    operator_key: str,
    clock: Clock,
    *,
    served: Collection[str] = (),
    departments_url: str | None = None,
    progress: Progress = _quiet,
) -> SeedReport:
    """Load ``catalog/`` into an empty database; a no-op when units already exist.

    ``served`` names the departments whose mock API runs at ``departments_url/{code}``;
    they are registered with that base URL so the broker can route to them at once. With
    :data:`BUILTIN` (the mock departments inside ``exchange up``) the URL is relative: the
    broker resolves it against the running process, whatever port it was restarted on.
    """
    from exchange.catalog.content import load_core_topics, load_units
    from exchange.catalog.generate import generate_catalog

    if is_seeded(db):
        with db.sessions() as session:
            return SeedReport(
                departments=session.scalar(select(func.count(Department.code))) or 0,
                topics=session.scalar(select(func.count(Topic.id))) or 0,
                seeded=False,
            )
    units = load_units(settings.catalog_dir)
    core = load_core_topics(settings.catalog_dir)
    topics = generate_catalog(settings.catalog_profile, units, core, settings.seed)
    operator = Principal(OPERATOR)
    now = clock.now()
    with db.session() as session:
        for i, unit in enumerate(units, 1):
            if unit.code in served and departments_url and unit.base_url is None:
                unit = unit.model_copy(update={"base_url": f"{departments_url}/{unit.code}"})
            members_service.create_department(
                session, unit, api_key=demo_key(operator_key, unit.code)
            )
            progress("departments", i, len(units))
        session.flush()
        for i, spec in enumerate(topics, 1):
            catalog_service.register(session, spec, operator, now, check_related=False)
            if i % 50 == 0 or i == len(topics):
                progress("topics", i, len(topics))
        session.flush()
        _seed_credit(session, settings, clock)
        if settings.level == "city":
            # The city's electronic licence system's type catalog (its issuers are units
            # above); the provincial platform of this simulator keeps no licence library.
            licence_types = licences_service.load_types(
                session, expand_licence_types(load_licence_catalog(settings.catalog_dir))
            )
            progress("licence types", licence_types, licence_types)
    return SeedReport(departments=len(units), topics=len(topics), seeded=True)
