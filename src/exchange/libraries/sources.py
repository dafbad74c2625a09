"""The gathering's book of sources (``library_source``): kept in line with the catalog,
and each source's state through a pass (begun, done, waiting for its grant, failed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from exchange.catalog.models import Topic
from exchange.context import AppContext
from exchange.db.engine import Database
from exchange.libraries.models import LibrarySource
from exchange.libraries.plan import SourcePlan, plan_sources

__all__ = ["SourceBook"]


def _fields_of(plan: SourcePlan) -> list[list[Any]]:
    return [[f.field, f.element, f.is_source, f.sharing_type] for f in plan.fields]


class SourceBook:
    """The sources' rows, for :class:`~exchange.libraries.gather.Gatherer`."""

    ctx: AppContext
    db: Database
    unit: str

    def sync_plan(self) -> list[LibrarySource]:
        """Bring ``library_source`` in line with the catalog: new sources are added, a
        source's items follow the catalog, a source the catalog no longer offers is marked
        ``withdrawn`` (its records are kept until the operator drops them)."""
        with self.db.session() as session:
            topics = session.scalars(select(Topic)).all()
            plans = {
                (p.library, p.resource_code): p
                for p in plan_sources(topics, library_unit=self.unit)
            }
            rows = {(s.library, s.resource_code): s for s in session.scalars(select(LibrarySource))}
            for key, plan in plans.items():
                row = rows.get(key)
                if row is None:
                    row = LibrarySource(
                        library=plan.library,
                        resource_code=plan.resource_code,
                        provider=plan.provider,
                        topic_name=plan.topic_name,
                        role=plan.role,
                        key_field=plan.key_field,
                        fields=_fields_of(plan),
                        state="new",
                        watermark=0,
                        gathered=0,
                        pass_gathered=0,
                        passes=0,
                        changes=0,
                        checked_until=0,
                        generation=0,
                        swept_generation=0,
                        removed=0,
                        pass_removed=0,
                    )
                    session.add(row)
                    rows[key] = row
                elif row.fields != _fields_of(plan) or row.role != plan.role:
                    # The catalog changed the items: the stored arrays no longer match, so
                    # the source is read again from the start.
                    row.fields, row.role, row.key_field = (
                        _fields_of(plan),
                        plan.role,
                        plan.key_field,
                    )
                    row.watermark, row.state = 0, "new"
                    row.topic_name = plan.topic_name
                    # Its checks (which item is compared with which) changed too: the
                    # quality check looks at all its records again, not only the changed.
                    row.checked_until = 0
                elif row.state == "withdrawn":
                    row.state, row.checked_until = "new", 0
            for key, row in rows.items():
                if key not in plans and row.state != "withdrawn":
                    row.state = "withdrawn"
            session.flush()
            return sorted(rows.values(), key=lambda s: s.id)

    # -- a source's state through a pass (called in threads) -----------------------------

    def _start_pass(self, source_id: int) -> None:
        """A pass from offset 0 begins: a new generation, which its records will carry
        (:func:`~exchange.libraries.store.sweep` removes the older ones at its end)."""
        with self.db.session() as session:
            row = session.get(LibrarySource, source_id)
            if row is not None:
                row.state, row.watermark, row.pass_gathered = "gathering", 0, 0
                row.pass_started_at, row.last_error = self.ctx.clock.now(), None
                row.generation += 1
                row.pass_removed = 0

    def _set_state(
        self, source_id: int, state: str, error: str | None, application_id: int | None = None
    ) -> None:
        with self.db.session() as session:
            row = session.get(LibrarySource, source_id)
            if row is not None:
                row.state, row.last_error = state, error
                if application_id is not None:
                    row.application_id = application_id

    def _finish(self, source_id: int) -> None:
        with self.db.session() as session:
            row = session.get(LibrarySource, source_id)
            if row is not None:
                row.state, row.last_error = "done", None
                row.passes += 1
