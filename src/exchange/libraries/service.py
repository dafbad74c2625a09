"""Serving the libraries: assembled records by key, progress and statistics, conflicts.

A department asks for a person (ID number) or an enterprise (credit code) and gets each
element the library holds, with the department that is its source and when that source's
record was last refreshed. What it may see is what the sources' catalog entries and its
own grants say (the library never widens a source's sharing):

- an element whose source item is unconditional (无条件共享: the basic elements) is served
  to every department;
- a conditional element only to a department holding a current grant on the source topic
  for that item (its daily quota counted as for the topic itself), or to the source itself.

Elements withheld are named in the answer, so the department knows what to apply for.
Every lookup, answered or refused, is an audit entry like any exchange.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select

from exchange.audit.entry import Entry
from exchange.audit.writer import AuditWriter
from exchange.authz.cache import GrantCache
from exchange.context import AppContext
from exchange.departments import ids
from exchange.errors import Conflict, NotFound, NotPermitted, ValidationFailed
from exchange.libraries.models import LibraryConflict, LibrarySource
from exchange.libraries.plan import LIBRARIES
from exchange.members.service import Principal

__all__ = ["MAX_KEYS", "LibraryService", "Resolution"]

MAX_KEYS = 100
#: how long a process serves from its copy of the sources before reading them again
PLAN_TTL = 2.0
Resolution = str
RESOLUTIONS = ("corrected", "source_confirmed", "dismissed")
AUDIT_KIND = "library"


@dataclass(frozen=True, slots=True)
class _Element:
    position: int
    element: str
    field: str
    unconditional: bool


@dataclass(frozen=True, slots=True)
class _Source:
    id: int
    library: str
    resource_code: str
    provider: str
    topic_name: str
    elements: tuple[_Element, ...]


def _key_problem(library: str, key: str) -> str | None:
    if library == "person":
        return ids.id_number_problem(key)
    return ids.credit_code_problem(key)


def _iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


class LibraryService:
    """Lookups and views over the libraries, one per app (``ctx.parts["library_service"]``)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.unit = ctx.settings.library_unit
        self._plans: dict[str, tuple[_Source, ...]] = {}
        self._loaded = 0.0
        self._local = threading.local()
        self._sql = (
            "SELECT source_id, vals, refreshed FROM library_record "
            "WHERE subject = {p} AND source_id IN ({ids})"
        )

    # -- the served plan -----------------------------------------------------------------

    def invalidate(self) -> None:
        self._loaded = 0.0

    def _sources(self, library: str) -> tuple[_Source, ...]:
        now = time.monotonic()
        if now - self._loaded > PLAN_TTL:
            plans: dict[str, list[_Source]] = {code: [] for code in LIBRARIES}
            with self.db.sessions() as session:
                rows = session.scalars(
                    select(LibrarySource)
                    .where(LibrarySource.role == "source", LibrarySource.state != "withdrawn")
                    .order_by(LibrarySource.id)
                ).all()
            for row in rows:
                elements = tuple(
                    _Element(i, element, field, sharing == "unconditional")
                    for i, (field, element, is_source, sharing) in enumerate(row.fields)
                    if is_source
                )
                plans.setdefault(row.library, []).append(
                    _Source(
                        row.id,
                        row.library,
                        row.resource_code,
                        row.provider,
                        row.topic_name,
                        elements,
                    )
                )
            self._plans = {k: tuple(v) for k, v in plans.items()}
            self._loaded = now
        return self._plans.get(library, ())

    def _connection(self) -> Any:
        """A raw DB-API connection per thread: a lookup is one indexed query, and the ORM
        (or a pooled checkout per call) would cost several times the query itself."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.db.engine.raw_connection()
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- lookups -------------------------------------------------------------------------

    def _visible(
        self, consumer: str, sources: tuple[_Source, ...]
    ) -> tuple[dict[int, list[_Element]], list[str], dict[int, int]]:
        """Per source the elements ``consumer`` may see, the elements withheld, and the
        grants whose quota the answer counts against (grant id by source id)."""
        cache: GrantCache = self.ctx.parts["authz"]
        visible: dict[int, list[_Element]] = {}
        withheld: list[str] = []
        grants: dict[int, int] = {}
        for src in sources:
            own = src.provider == consumer
            decision = None
            shown: list[_Element] = []
            for el in src.elements:
                if el.unconditional or own:
                    shown.append(el)
                    continue
                if decision is None:
                    decision = cache.check(consumer, src.resource_code, None)
                if decision.allowed and el.field in decision.items:
                    shown.append(el)
                    if decision.grant_id is not None and decision.remaining_quota is not None:
                        grants[src.id] = decision.grant_id
                else:
                    withheld.append(el.element)
            if shown:
                visible[src.id] = shown
        return visible, withheld, grants

    def lookup(self, principal: Principal, library: str, keys: list[str]) -> dict[str, Any]:
        """The assembled records of ``keys``; see the module docstring."""
        if principal.is_operator:
            raise NotPermitted(
                "the operator key cannot read the libraries: call with a department's key",
                code="not_a_department",
            )
        if library not in LIBRARIES:
            raise NotFound(f"no library {library!r} (person, enterprise)", code="library_not_found")
        if not 1 <= len(keys) <= MAX_KEYS:
            raise ValidationFailed(
                f"keys: between 1 and {MAX_KEYS} keys per call", field="keys", code="batch_size"
            )
        sources = self._sources(library)
        by_id = {s.id: s for s in sources}
        visible, withheld, grants = self._visible(principal.code, sources)
        records: list[dict[str, Any]] = []
        not_found: list[str] = []
        invalid: list[dict[str, str]] = []
        ids_sql = ",".join(str(i) for i in visible) or "NULL"
        sql = self._sql.format(p="?" if self.db.is_sqlite else "%s", ids=ids_sql)
        conn = self._connection()
        counted: dict[int, int] = {}
        cur = conn.cursor()
        try:
            for key in keys:
                problem = _key_problem(library, key)
                if problem is not None:
                    invalid.append({"key": key, "message": problem})
                    continue
                cur.execute(sql, (key,))
                rows = cur.fetchall()
                if not rows:
                    not_found.append(key)
                    continue
                elements: dict[str, Any] = {}
                for source_id, vals, refreshed in rows:
                    src = by_id.get(source_id)
                    if src is None:
                        continue
                    values = orjson.loads(vals)
                    meta = {
                        "provider": src.provider,
                        "resource_code": src.resource_code,
                        "topic": src.topic_name,
                        "refreshed_at": _iso(refreshed),
                    }
                    for el in visible.get(source_id, ()):
                        elements[el.element] = {"value": values[el.position], **meta}
                    if source_id in grants:
                        counted[source_id] = counted.get(source_id, 0) + 1
                records.append({"key": key, "elements": elements})
        finally:
            cur.close()
            if not self.db.is_sqlite:
                conn.rollback()  # end the read transaction: the next sees new gathering
        cache: GrantCache = self.ctx.parts["authz"]
        for source_id, n in counted.items():
            cache.consume(grants[source_id], n)
        return {
            "library": library,
            "records": records,
            "not_found": not_found,
            "invalid": invalid,
            "withheld": sorted(set(withheld)),
        }

    def audit_entry(
        self,
        request_id: str,
        consumer: str,
        library: str,
        answer: dict[str, Any] | None,
        outcome: str,
        status: int,
        started: float,
    ) -> Entry:
        items: list[str] = []
        records = 0
        if answer is not None:
            records = len(answer["records"])
            seen: set[str] = set()
            for rec in answer["records"]:
                seen.update(rec["elements"])
            items = sorted(seen)
        return Entry(
            request_id=request_id or uuid.uuid4().hex,
            at=self.ctx.clock.now(),
            kind=AUDIT_KIND,
            consumer=consumer[:32],
            provider=self.unit,
            resource_code=f"lib/{library}"[:16],
            items=items,
            case=None,
            records=records,
            outcome=outcome[:48],
            status=status,
            latency_us=int((time.perf_counter() - started) * 1_000_000),
        )

    async def audit(self, entry: Entry) -> None:
        writer: AuditWriter = self.ctx.parts["audit"]
        await writer.record(entry)

    # -- statistics ----------------------------------------------------------------------

    def overview(self, library: str | None = None) -> list[dict[str, Any]]:
        """Per library: sources with progress and counts, totals, conflicts by kind."""
        with self.db.sessions() as session:
            rows = session.scalars(select(LibrarySource).order_by(LibrarySource.id)).all()
            conflicts = session.execute(
                select(
                    LibraryConflict.library,
                    LibraryConflict.kind,
                    LibraryConflict.status,
                    func.count(),
                ).group_by(LibraryConflict.library, LibraryConflict.kind, LibraryConflict.status)
            ).all()
        out = []
        for code, lib in LIBRARIES.items():
            if library is not None and code != library:
                continue
            sources = [source_out(s) for s in rows if s.library == code]
            by_kind: dict[str, dict[str, int]] = {}
            for lib_code, kind, status, n in conflicts:
                if lib_code == code:
                    by_kind.setdefault(kind, {})[status] = n
            out.append(
                {
                    "library": code,
                    "name": lib.name,
                    "key": lib.key_name,
                    "sources": sources,
                    "gathered": sum(s["gathered"] for s in sources),
                    "conflicts": {
                        "open": sum(v.get("open", 0) for v in by_kind.values()),
                        "resolved": sum(v.get("resolved", 0) for v in by_kind.values()),
                        "by_kind": by_kind,
                    },
                }
            )
        return out

    # -- conflicts -----------------------------------------------------------------------

    def conflicts(
        self,
        principal: Principal,
        library: str,
        *,
        status: str | None,
        kind: str | None,
        subject: str | None,
        offset: int,
        limit: int,
    ) -> tuple[list[LibraryConflict], int]:
        """Conflicts of ``library``: every one for the operator, a department's own (it is
        one of the two sources) for a department."""
        if library not in LIBRARIES:
            raise NotFound(f"no library {library!r} (person, enterprise)", code="library_not_found")
        query = select(LibraryConflict).where(LibraryConflict.library == library)
        if not principal.is_operator:
            query = query.where(
                (LibraryConflict.provider == principal.code)
                | (LibraryConflict.other_provider == principal.code)
            )
        if status is not None:
            query = query.where(LibraryConflict.status == status)
        if kind is not None:
            query = query.where(LibraryConflict.kind == kind)
        if subject is not None:
            query = query.where(LibraryConflict.subject == subject)
        with self.db.sessions() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            items = session.scalars(
                query.order_by(LibraryConflict.id).offset(offset).limit(limit)
            ).all()
        return list(items), total

    def resolve(
        self, principal: Principal, conflict_id: int, resolution: str, note: str | None
    ) -> LibraryConflict:
        """Close a conflict: the operator, or either source department (校核纠错)."""
        with self.db.session() as session:
            row = session.get(LibraryConflict, conflict_id)
            if row is None or (
                not principal.is_operator
                and principal.code not in (row.provider, row.other_provider)
            ):
                raise NotFound(f"no conflict {conflict_id}", code="conflict_not_found")
            if row.status != "open":
                raise Conflict(
                    f"conflict {conflict_id} is already {row.status}", code="conflict_closed"
                )
            row.status = "resolved"
            row.resolution = resolution
            row.note = note
            row.resolved_by = principal.code
            row.resolved_at = self.ctx.clock.now()
            session.flush()
            return row


def source_out(s: LibrarySource) -> dict[str, Any]:
    return {
        "id": s.id,
        "resource_code": s.resource_code,
        "provider": s.provider,
        "topic": s.topic_name,
        "role": s.role,
        "state": s.state,
        "elements": [f[1] for f in s.fields if f[2]],
        "checked_elements": [f[1] for f in s.fields if not f[2]],
        "watermark": s.watermark,
        "total_rows": s.total_rows,
        "gathered": s.gathered,
        "pass_gathered": s.pass_gathered,
        "passes": s.passes,
        "application_id": s.application_id,
        "last_error": s.last_error,
        "refreshed_at": s.refreshed_at,
        "subscription_id": s.subscription_id,
        "event_cursor": s.event_cursor,
        "events_applied": s.events_applied,
    }
