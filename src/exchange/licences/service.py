"""The licence system's rules, the face the router, the seed and the gate import: the type
catalog (:mod:`.type_catalog`), issuing and revoking (:mod:`.issuing`), reading
(:mod:`.reading`), the signed status list (:mod:`.status_list`), counting
(:mod:`.statistics`).

Every function takes the session and the platform time it acts at; the router decides who
is calling and audits.
"""

from __future__ import annotations

from exchange.licences.issuing import MAX_TEXT, check_content, issue, revoke
from exchange.licences.reading import (
    LicenceNotFound,
    get_licence,
    holder_licences,
    list_licences,
    status_of,
    to_out,
    topic_record,
)
from exchange.licences.statistics import TOP_TYPES, stats
from exchange.licences.status_list import status_document
from exchange.licences.type_catalog import (
    LicenceTypeNotFound,
    get_type,
    list_types,
    load_types,
)

__all__ = [
    "MAX_TEXT",
    "TOP_TYPES",
    "LicenceNotFound",
    "LicenceTypeNotFound",
    "check_content",
    "get_licence",
    "get_type",
    "holder_licences",
    "issue",
    "list_licences",
    "list_types",
    "load_types",
    "revoke",
    "stats",
    "status_document",
    "status_of",
    "to_out",
    "topic_record",
]
