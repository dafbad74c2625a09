"""Conflicts between a library's sources (校核纠错): listed (the operator every one, a
department those it is a source of) and resolved."""

from __future__ import annotations

from exchange.authn import Principal
from exchange.context import AppContext
from exchange.db.engine import Database
from exchange.db.pagination import page
from exchange.errors import Conflict, NotFound
from exchange.libraries.models import LibraryConflict
from exchange.libraries.plan import LIBRARIES


class ConflictDesk:
    """The conflicts of :class:`~exchange.libraries.service.LibraryService`."""

    ctx: AppContext
    db: Database

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
        conds = [LibraryConflict.library == library]
        if not principal.is_operator:
            conds.append(
                (LibraryConflict.provider == principal.code)
                | (LibraryConflict.other_provider == principal.code)
            )
        if status is not None:
            conds.append(LibraryConflict.status == status)
        if kind is not None:
            conds.append(LibraryConflict.kind == kind)
        if subject is not None:
            conds.append(LibraryConflict.subject == subject)
        with self.db.sessions() as session:
            total, items = page(
                session, LibraryConflict, LibraryConflict.id, conds, offset=offset, limit=limit
            )
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
