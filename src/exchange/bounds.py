"""The inventory of what an exchange process keeps in memory with a bound, declared in its
:class:`~exchange.memory.MemoryBounds` (``/metrics``: size, bound, budget of each).

Bytes per entry were measured with ``tracemalloc`` on entries like the ones the running
exchange holds (default city, 13-item topics; 2026-12-01): a budget is the bound times
that size, rounded up. Bounded by construction and not declared: the broker's metric
label sets (kinds × the fixed list of outcome codes, providers × departments), the
upstream's per-provider signers, breakers and idle connections (one per department), and
the copies of tables (grants, catalog index), which grow with the data, not the traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exchange.audit.journal import RESIDENT_BYTES
from exchange.audit.writer import MAX_BACKLOG
from exchange.broker.service import ROUTE_CACHE
from exchange.db.engine import SQLITE_CACHE_KIB
from exchange.libraries.store import WRITE_CACHE_KIB, wide_caches
from exchange.memory import MemoryBounds

if TYPE_CHECKING:
    from exchange.context import AppContext
    from exchange.departments.app import DepartmentsApp

#: measured bytes per entry (tracemalloc), with headroom
ROUTE_BYTES = 2_000  # a route of a 13-item topic: 1,935
AUDIT_ENTRY_BYTES = 1_024  # a lookup's canonical form waiting for its commit: 366
RATING_BYTES = 100  # a credit code's tax rating: 74
NONCE_BYTES = 250  # a provider call's nonce in a replay cache: 243
PERSON_BYTES = 700  # a person of the synthetic city: 678
ENTERPRISE_BYTES = 1_700  # an enterprise of the synthetic city: 1,659


def declare(ctx: AppContext) -> MemoryBounds:
    """Declare the bounded structures of the parts built on ``ctx`` (call once they are
    built, once per app); returns them, kept as ``ctx.memory``."""
    bounds = MemoryBounds()
    engine = ctx.db.engine
    if engine.dialect.name == "sqlite":
        pool: Any = engine.pool
        most = pool.size() + max(getattr(pool, "_max_overflow", 0), 0)
        bounds.declare(
            "sqlite.page_cache",
            f"SQLite page cache, {SQLITE_CACHE_KIB} KiB per open connection",
            size=lambda: pool.checkedin() + pool.checkedout(),
            limit=most,
            entry_bytes=SQLITE_CACHE_KIB * 1024,
        )
    if ctx.libraries is not None and engine.dialect.name == "sqlite":
        bounds.declare(
            "libraries.write_cache",
            f"SQLite page cache of a connection writing a gathered page, {WRITE_CACHE_KIB} "
            "KiB while it writes (one page at a time)",
            size=wide_caches,
            limit=1,
            entry_bytes=WRITE_CACHE_KIB * 1024,
        )
    broker = ctx.broker
    if broker is not None:
        routes = broker.routes
        bounds.declare(
            "broker.routes",
            "resource code → provider route (emptied when full)",
            size=lambda: len(routes),
            limit=ROUTE_CACHE,
            entry_bytes=ROUTE_BYTES,
        )
    audit = ctx.audit
    if audit is not None:
        bounds.declare(
            "audit.backlog",
            "audit entries acknowledged, not yet committed (callers wait past it)",
            size=lambda: audit.backlog,
            limit=MAX_BACKLOG,
            entry_bytes=AUDIT_ENTRY_BYTES,
        )
        if audit.has_journal:
            bounds.declare(
                "audit.journal",
                "the journal segment's written pages still mapped into the process",
                size=lambda: min(RESIDENT_BYTES, audit.journal_mapped),
                limit=RESIDENT_BYTES,
            )
    ratings = ctx.credit_ratings
    if ratings is not None:
        bounds.declare(
            "credit.ratings",
            "credit code → tax rating (least recently used dropped)",
            size=lambda: len(ratings),
            limit=ratings.size,
            entry_bytes=RATING_BYTES,
        )
    departments = ctx.departments
    if departments is not None:
        _declare_departments(bounds, departments)
    return bounds


def _declare_departments(bounds: MemoryBounds, departments: DepartmentsApp) -> None:
    """The mock departments inside this process (``exchange up``): the city's record
    caches, the export chunk cache and the nonces of every department's replay cache."""
    city = departments.city
    people: Any = city.person  # functools.lru_cache wrappers (see City.__init__)
    firms: Any = city.enterprise
    for name, cached, per in (
        ("departments.city.people", people, PERSON_BYTES),
        ("departments.city.enterprises", firms, ENTERPRISE_BYTES),
    ):
        _declare_lru(bounds, name, cached, per)
    chunks = departments.exports.cache
    bounds.declare(
        "departments.export_chunks",
        "serialised export chunks (least recently used dropped past the byte budget)",
        size=lambda: chunks.used,
        limit=chunks.budget,
    )
    verifiers = list(departments.verifiers.values())
    bounds.declare(
        "departments.nonces",
        "provider-call nonces within the signature window, every department",
        size=lambda: sum(len(v.replays) for v in verifiers),
        limit=sum(v.replays.max_entries for v in verifiers),
        entry_bytes=NONCE_BYTES,
    )


def _declare_lru(bounds: MemoryBounds, name: str, cached: Any, per: int) -> None:
    bounds.declare(
        name,
        "records of the synthetic city derived once (least recently used dropped)",
        size=lambda: int(cached.cache_info().currsize),
        limit=int(cached.cache_info().maxsize),
        entry_bytes=per,
    )
