"""What one running exchange holds, and the FastAPI dependencies that hand it to routers.

Every service of an app is one typed attribute of :class:`AppContext`, assigned where the
app is assembled (:mod:`exchange.app`). Those every part has (grant cache, working
calendar, catalog index) are always there; the others exist only in a process serving the
part that builds them (the broker's, mostly) and are typed ``X | None``: a route reaches
them through :func:`present`, which answers 503 in a part that does not run them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, TypeVar

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from exchange.authn import Authenticator, Principal
from exchange.clock import Clock
from exchange.config import Settings
from exchange.db.engine import Database
from exchange.errors import Unavailable

if TYPE_CHECKING:
    # Types only: each of these modules builds on this one.
    from exchange.audit.trust import Trust
    from exchange.audit.writer import AuditWriter
    from exchange.authz.cache import GrantCache
    from exchange.authz.calendar import WorkingCalendar
    from exchange.broker.service import Broker
    from exchange.broker.upstream import UpstreamConfig
    from exchange.catalog.search import CatalogIndex
    from exchange.credit.lists import Ratings
    from exchange.departments.app import DepartmentsApp
    from exchange.distribution.runtime import Runtime as DistributionRuntime
    from exchange.federation.runtime import Federation
    from exchange.libraries.gather import Gatherer
    from exchange.libraries.service import LibraryService
    from exchange.licences.gate import Gate as LicenceGate
    from exchange.licences.signing import LicenceSigner
    from exchange.memory import MemoryBounds

T = TypeVar("T")


@dataclass(eq=False)
class AppContext:
    """Built once per app (``exchange.app.build_context``); no module-level singletons."""

    settings: Settings
    db: Database
    clock: Clock
    auth: Authenticator
    #: the operator's key and the secret providers' credentials derive from (resolved
    #: from the settings or the state directory, :mod:`exchange.security`)
    operator_key: str
    provider_secret: str
    #: the grant cache every part checks grants and counts quota through
    grants: GrantCache
    #: working days, for review and objection deadlines
    calendar: WorkingCalendar
    #: the catalog's search index
    catalog_index: CatalogIndex
    #: the parts of the exchange this process serves (``exchange.app.PARTS``)
    serving: tuple[str, ...] = ()
    # -- present only in a process serving the part that builds them ------------------
    #: the audit's signing key and journal (broker and authz parts)
    trust: Trust | None = None
    #: the audit writer (broker part)
    audit: AuditWriter | None = None
    #: overrides the broker's upstream timeouts, retries and breaker (tests), read once
    #: when the broker is built
    broker_config: UpstreamConfig | None = None
    broker: Broker | None = None
    licence_signer: LicenceSigner | None = None
    licence_gate: LicenceGate | None = None
    #: the tax ratings behind the credit lists
    credit_ratings: Ratings | None = None
    distribution: DistributionRuntime | None = None
    #: the base information libraries' gathering and their lookups
    libraries: Gatherer | None = None
    library_service: LibraryService | None = None
    federation: Federation | None = None
    #: the mock departments, inside this process (``exchange up``)
    departments: DepartmentsApp | None = None
    #: the bounded structures of this process (``exchange.bounds``)
    memory: MemoryBounds | None = None
    # -- remembered answers: each fixed for the life of the app ------------------------
    #: the catalog topic a credit-list query needs a grant on
    credit_lists_topic: str | None = None
    #: the date of the licence profile's starting state
    licence_as_of: dt.date | None = None


def present(part: T | None, message: str, *, code: str = "unavailable") -> T:
    """``part``, or 503 ``code`` when this process does not run it (a part served alone)."""
    if part is None:
        raise Unavailable(message, code=code)
    return part


def ctx_of(request: Request) -> AppContext:
    """The context of the app serving ``request`` (for code outside dependencies)."""
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_ctx(request: Request) -> AppContext:
    # async: it only reads memory, so FastAPI runs it on the loop, not the threadpool.
    return ctx_of(request)


def get_session(ctx: Annotated[AppContext, Depends(get_ctx)]) -> Iterator[Session]:
    with ctx.db.session() as session:
        yield session


def get_principal(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    authorization: Annotated[
        str | None, Header(description="Bearer <API key>", include_in_schema=False)
    ] = None,
) -> Principal:
    # Sync: a key not in the authenticator's cache is looked up in the database.
    return ctx.auth.authenticate(authorization)


async def get_operator(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    principal.require_operator()
    return principal


Ctx = Annotated[AppContext, Depends(get_ctx)]
# scope="function": the session commits when the endpoint returns, before the response is
# sent, so a 201 is never seen before its rows are (the default closes after sending).
DbSession = Annotated[Session, Depends(get_session, scope="function")]
Caller = Annotated[Principal, Depends(get_principal)]
Operator = Annotated[Principal, Depends(get_operator)]
