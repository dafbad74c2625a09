"""Submitting, announcing, searching and counting double-publicity records: the face the
router, ingest, lists and the benchmarks import.

Every query is in the modules behind it (the router only authenticates, scopes and
audits): :mod:`.submission`, :mod:`.notices`, :mod:`.reading`, :mod:`.statistics`, with
the deadlines in :mod:`.deadlines`. Lists are in :mod:`exchange.credit.lists`.
"""

from __future__ import annotations

from exchange.credit.deadlines import Deadlines
from exchange.credit.notices import announce
from exchange.credit.reading import (
    list_submitted,
    mask_id,
    penalties_of,
    public_out,
    published_after,
    search_public,
    submitted_out,
)
from exchange.credit.statistics import stats
from exchange.credit.submission import (
    AUTHORITY_KINDS,
    CATEGORY_SEPARATOR,
    require_authority,
    submit,
)

__all__ = [
    "AUTHORITY_KINDS",
    "CATEGORY_SEPARATOR",
    "Deadlines",
    "announce",
    "list_submitted",
    "mask_id",
    "penalties_of",
    "public_out",
    "published_after",
    "require_authority",
    "search_public",
    "stats",
    "submit",
    "submitted_out",
]
