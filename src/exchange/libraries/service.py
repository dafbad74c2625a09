"""Serving the libraries: assembled records by key, progress and statistics, conflicts.

A department asks for a person (ID number) or an enterprise (credit code) and gets each
element the library holds, with the department that is its source and when that source's
record was last refreshed. What it may see is what the sources' catalog entries and its
own grants say (the library never widens a source's sharing):

- an element whose source item is unconditional (无条件共享: the basic elements) is served
  to every government department (政务部门, :data:`~exchange.members.schemas.GOVERNMENT_KINDS`);
- a conditional element only to a department holding a current grant on the source topic
  for that item (its daily quota counted as for the topic itself), or to the source itself;
- a member unit that is not a government department (a bank, an insurer, a utility) sees
  no element without a grant, unconditional ones included: unconditional sharing is "any
  government department may use it", and its applications for them wait for the
  provider's review (``not_government``, as :mod:`exchange.authz.service` decides).

Elements withheld are named in the answer with the reason (``conditional`` or
``not_government``), so the unit knows what to apply for.
Every lookup, answered or refused, is an audit entry like any exchange.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from sqlalchemy import select

from exchange import ids
from exchange.authn import Principal
from exchange.context import AppContext
from exchange.errors import NotFound, NotPermitted, ValidationFailed
from exchange.libraries.auditing import LookupAudit
from exchange.libraries.conflicts import ConflictDesk
from exchange.libraries.models import LibrarySource
from exchange.libraries.plan import LIBRARIES
from exchange.libraries.progress import LibraryProgress
from exchange.libraries.reading import Held, RecordReads, read_sql
from exchange.libraries.store import CHANGED
from exchange.libraries.visibility import (
    CONDITIONAL,
    NOT_GOVERNMENT,
    ConsumerView,
    GuardedSource,
    PlannedSource,
    SourceElement,
)
from exchange.members.models import Department
from exchange.members.schemas import GOVERNMENT_KINDS

__all__ = ["MAX_KEYS", "LibraryService"]

MAX_KEYS = 100
#: how long a process serves from its copy of the sources before reading them again
PLAN_TTL = 2.0


def _key_problem(library: str, key: str) -> str | None:
    if library == "person":
        return ids.id_number_problem(key)
    return ids.credit_code_problem(key)


def _iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


#: refreshed epoch → ISO text: a pass stamps a whole page with one time, so few are live
_ISO_CACHE = 4096


class LibraryService(LookupAudit, LibraryProgress, ConflictDesk, RecordReads):
    """Lookups and views over the libraries, one per app (``ctx.library_service``)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.unit = ctx.settings.library_unit
        self._plans: dict[str, tuple[PlannedSource, ...]] = {}
        self._views: dict[tuple[str, str], ConsumerView] = {}
        self._meta: dict[int, dict[str, str]] = {}
        self._isos: dict[int, str] = {}
        self._loaded = 0.0
        self._generation = 0
        self._local = threading.local()
        #: library → subject → its records from every source (source order), the most
        #: recently read subjects first out; dropped whenever records change anywhere
        self._rows: dict[str, dict[str, tuple[Held, ...]]] = {}
        self._cache_size = ctx.settings.library_cache_subjects
        self.db.freshness.subscribe(CHANGED, self._records_changed)
        # A unit's kind decides what it sees without a grant: views follow its changes.
        self.db.freshness.subscribe("departments", self._departments_changed)
        self._sql = read_sql(self.db.is_sqlite)

    # -- the served plan -----------------------------------------------------------------

    def invalidate(self) -> None:
        """Read the plan and (SQLite) a new snapshot of the records at the next lookup."""
        self._loaded = 0.0
        self._records_changed()

    def _records_changed(self) -> None:
        """Records were gathered (in any process): forget the ones held in memory, and let
        no read that began before this store what it read (the generation moves)."""
        self._generation += 1
        self._rows = {}

    def _sources(self, library: str) -> tuple[PlannedSource, ...]:
        now = time.monotonic()
        if now - self._loaded > PLAN_TTL:
            plans: dict[str, list[PlannedSource]] = {code: [] for code in LIBRARIES}
            with self.db.sessions() as session:
                rows = session.scalars(
                    select(LibrarySource)
                    .where(LibrarySource.role == "source", LibrarySource.state != "withdrawn")
                    .order_by(LibrarySource.id)
                ).all()
            for row in rows:
                elements = tuple(
                    SourceElement(i, element, field, sharing == "unconditional")
                    for i, (field, element, is_source, sharing) in enumerate(row.fields)
                    if is_source
                )
                plans.setdefault(row.library, []).append(
                    PlannedSource(
                        row.id,
                        row.library,
                        row.resource_code,
                        row.provider,
                        row.topic_name,
                        elements,
                    )
                )
            fresh = {k: tuple(v) for k, v in plans.items()}
            if fresh != self._plans:
                # Views and answer fragments are derived from the plan: rebuilt with it.
                self._plans = fresh
                self._views = {}
                self._rows = {}
                self._meta = {
                    s.id: {
                        "provider": s.provider,
                        "resource_code": s.resource_code,
                        "topic": s.topic_name,
                    }
                    for srcs in fresh.values()
                    for s in srcs
                }
            self._loaded = now
        return self._plans.get(library, ())

    def close(self) -> None:
        self.db.freshness.unsubscribe("departments", self._departments_changed)
        self.db.freshness.unsubscribe(CHANGED, self._records_changed)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- lookups -------------------------------------------------------------------------

    def _view(
        self, library: str, consumer: str, sources: tuple[PlannedSource, ...]
    ) -> ConsumerView:
        view = self._views.get((library, consumer))
        if view is None:
            government = self._government(consumer)
            free: dict[int, tuple[SourceElement, ...]] = {}
            guarded: list[GuardedSource] = []
            reasons: dict[str, str] = {}
            for src in sources:
                if src.provider == consumer or (
                    government and all(e.unconditional for e in src.elements)
                ):
                    free[src.id] = src.elements
                    continue
                shown = tuple(e for e in src.elements if e.unconditional and government)
                held = tuple(e for e in src.elements if e not in shown)
                for e in held:
                    reasons[e.element] = NOT_GOVERNMENT if e.unconditional else CONDITIONAL
                guarded.append(GuardedSource(src, held, shown, {}))
            view = self._views[(library, consumer)] = ConsumerView(free, tuple(guarded), reasons)
        return view

    def _government(self, consumer: str) -> bool:
        """Whether ``consumer`` is a government department (its kind, read once per view:
        a change of departments drops the views)."""
        with self.db.sessions() as session:
            kind = session.scalar(select(Department.kind).where(Department.code == consumer))
        return kind in GOVERNMENT_KINDS

    def _departments_changed(self) -> None:
        self._views = {}

    def _visible(
        self, library: str, consumer: str, sources: tuple[PlannedSource, ...]
    ) -> tuple[dict[int, tuple[SourceElement, ...]], list[str], dict[int, int], dict[str, str]]:
        """Per source the elements ``consumer`` may see, the elements withheld, the grants
        whose quota the answer counts against (grant id by source id), and why an element
        is withheld (element → reason). Only the
        sources with conditional elements are checked, each once, against the grant cache
        (validity, quota and retirement are of this moment, so never remembered)."""
        view = self._view(library, consumer, sources)
        if not view.guarded:
            return view.free, [], {}, view.reasons
        cache = self.ctx.grants
        visible = dict(view.free)
        withheld: list[str] = []
        grants: dict[int, int] = {}
        for g in view.guarded:
            src = g.source
            # Most guarded sources are ones the consumer never applied for: refused
            # without working out the time, the quota and the decision.
            decision = (
                cache.check(consumer, src.resource_code, None)
                if cache.holds(consumer, src.resource_code)
                else None
            )
            if decision is not None and decision.allowed:
                shown, held = g.split(decision.items)
                gid = decision.grant_id
                quota = decision.remaining_quota is not None
                if gid is not None and quota and len(shown) > len(g.free):
                    grants[src.id] = gid  # a granted element is served: count it
            else:
                shown, held = g.free, tuple(e.element for e in g.conditional)
            if shown:
                visible[src.id] = shown
            withheld.extend(held)
        return visible, withheld, grants, view.reasons

    def _refreshed_at(self, epoch: int) -> str:
        iso = self._isos.get(epoch)
        if iso is None:
            if len(self._isos) >= _ISO_CACHE:
                self._isos.clear()
            iso = self._isos[epoch] = _iso(epoch)
        return iso

    def lookup(self, principal: Principal, library: str, keys: list[str]) -> dict[str, Any]:
        """The assembled records of ``keys``; see the module docstring.

        The records of a subject read lately are in memory (``library_cache_subjects``);
        the others are read in one query for the whole batch. A key is checked for form
        only when no source the consumer sees holds it, to tell a malformed key from an
        unknown one (a key the library holds came from its source as a well-formed one).
        """
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
        visible, withheld, grants, reasons = self._visible(library, principal.code, sources)
        asked = list(dict.fromkeys(keys))
        held: dict[str, tuple[Held, ...]] = {}
        if visible:
            cached = self._rows.setdefault(library, {}) if self._cache_size else None
            missing = asked
            if cached is not None:
                missing = []
                for key in asked:
                    rows = cached.get(key)
                    if rows is None:
                        missing.append(key)
                    else:
                        held[key] = rows
            if missing:
                generation = self._generation
                # What is kept in memory holds every source, whoever asked first.
                ids = visible if cached is None else [s.id for s in sources]
                found = self._read(missing, ids)
                held.update(found)
                if cached is not None and generation == self._generation:
                    for key in missing:
                        cached[key] = found.get(key, ())
                    for _ in range(len(cached) - self._cache_size):
                        del cached[next(iter(cached))]
        records: list[dict[str, Any]] = []
        not_found: list[str] = []
        invalid: list[dict[str, str]] = []
        counted: dict[int, int] = {}
        metas = self._meta
        for key in keys:
            elements: dict[str, Any] = {}
            seen = False
            for source_id, values, refreshed in held.get(key, ()):
                shown = visible.get(source_id)
                if shown is None:
                    continue
                seen = True
                at = self._refreshed_at(refreshed)
                meta = metas[source_id]
                for el in shown:
                    value = values[el.position]
                    elements[el.element] = {"value": value, **meta, "refreshed_at": at}
                if source_id in grants:
                    counted[source_id] = counted.get(source_id, 0) + 1
            if seen:
                records.append({"key": key, "elements": elements})
                continue
            # No source the consumer may see holds the key.
            problem = _key_problem(library, key)
            if problem is not None:
                invalid.append({"key": key, "message": problem})
            elif visible:
                # (A unit that may see no element is not told whom the library holds.)
                not_found.append(key)
        if counted:
            cache = self.ctx.grants
            for source_id, n in counted.items():
                cache.consume(grants[source_id], n)
        withheld_out = sorted(set(withheld))
        return {
            "library": library,
            "records": records,
            "not_found": not_found,
            "invalid": invalid,
            "withheld": withheld_out,
            "withheld_reasons": {e: reasons[e] for e in withheld_out},
        }
