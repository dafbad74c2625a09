"""The catalog's refusals other packages catch by type."""

from __future__ import annotations

from exchange.errors import Conflict, NotFound

__all__ = ["SourceConflict", "TopicNotFound", "TopicRetired"]


class TopicNotFound(NotFound):
    code = "topic_not_found"


class SourceConflict(Conflict):
    code = "source_conflict"


class TopicRetired(Conflict):
    code = "topic_retired"
