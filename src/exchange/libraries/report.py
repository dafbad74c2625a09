"""What one gathering pass did: per source (resource code) and in total."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

__all__ = ["PassReport"]


@dataclass
class PassReport:
    """What one pass gathered, per source (resource code) and in total."""

    full: bool
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    gathered: dict[str, int] = field(default_factory=dict)
    #: records removed as no longer at their source, by source: a source whose full pass
    #: read its export to the end (the sweep), 0 when nothing went
    removed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: change events applied, by source (incremental passes)
    events: dict[str, int] = field(default_factory=dict)
    #: conflicts seen by the quality check after the pass, by library
    conflicts: dict[str, int] = field(default_factory=dict)
    #: the whole pass, and of it the quality check after the gathering
    seconds: float = 0.0
    check_seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.gathered.values())

    @property
    def total_removed(self) -> int:
        return sum(self.removed.values())
