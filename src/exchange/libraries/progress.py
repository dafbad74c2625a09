"""The libraries' progress and statistics: per library its sources (gathering progress
and counts), totals and conflicts by kind."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from exchange.db.engine import Database
from exchange.libraries.models import LibraryConflict, LibrarySource
from exchange.libraries.plan import LIBRARIES


class LibraryProgress:
    """:meth:`overview` of :class:`~exchange.libraries.service.LibraryService`."""

    db: Database

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
                    "removed": sum(s["removed"] for s in sources),
                    "conflicts": {
                        "open": sum(v.get("open", 0) for v in by_kind.values()),
                        "resolved": sum(v.get("resolved", 0) for v in by_kind.values()),
                        "by_kind": by_kind,
                    },
                }
            )
        return out


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
        "removed": s.removed,
        "pass_removed": s.pass_removed,
        "passes": s.passes,
        "application_id": s.application_id,
        "last_error": s.last_error,
        "refreshed_at": s.refreshed_at,
        "subscription_id": s.subscription_id,
        "event_cursor": s.event_cursor,
        "events_applied": s.events_applied,
    }
