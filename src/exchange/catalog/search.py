"""In-memory keyword index over the catalog, kept current through the change feed.

Why not SQL ``LIKE``: a leading-wildcard scan reads every row on every search (tens of ms at
37,000 topics on SQLite) and PostgreSQL's full-text parser does not split Chinese. The index
keeps each topic's lowercased search text in one string and scans it with ``str.find`` (C
speed, any script: 户籍 matches 户籍登记信息); filters are precomputed id sets. It follows
the change feed from its cursor when the catalog announced a change (in any process, see
:mod:`exchange.db.freshness`), and reloads whole when a department changed (a provider's
name is part of each document); otherwise a search never touches the database.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.catalog.models import Change, Topic
from exchange.catalog.service import last_cursor, topic_document
from exchange.db.freshness import Freshness
from exchange.members.models import Department

FILTERS = (
    "category",
    "classification",
    "group",
    "provider",
    "sharing_type",
    "status",
    "resource_type",
)


@dataclass(slots=True)
class _Entry:
    id: int
    resource_code: str
    name: str
    text: str
    values: dict[str, str]
    doc: bytes  # the topic's JSON document, rendered once per version


class CatalogIndex:
    """Keyword search with filters; thread-safe; rebuilt by ``sync`` after changes."""

    def __init__(self, freshness: Freshness | None = None) -> None:
        # Generations: a sync clears only the staleness it saw, so an announcement that
        # arrives while it reads is not lost.
        self._wanted = 1
        self._synced = 0
        self._entries: dict[int, _Entry] = {}
        self._cursor = -1
        self._lock = threading.RLock()
        self._order: list[_Entry] = []
        self._blob = ""
        self._starts: list[int] = []
        self._name_blob = ""
        self._name_starts: list[int] = []
        self._by_value: dict[str, dict[str, set[int]]] = {f: {} for f in FILTERS}

        if freshness is not None:
            freshness.subscribe("catalog", self.mark_stale)
            freshness.subscribe("departments", self.reset)

    @property
    def size(self) -> int:
        return len(self._entries)

    @property
    def fresh(self) -> bool:
        """True when nothing changed since the last sync: a search may then run without
        touching the database."""
        return self._synced == self._wanted

    def mark_stale(self) -> None:
        """The catalog changed: the next search follows the feed first."""
        self._wanted += 1

    def reset(self) -> None:
        """Reload everything on the next sync (a provider's name is part of each document)."""
        with self._lock:
            self._cursor = -1
            self._wanted += 1

    def sync(self, session: Session) -> None:
        """Bring the index up to the change feed's last cursor."""
        wanted = self._wanted
        head = last_cursor(session)
        if head == self._cursor >= 0:
            self._synced = wanted
            return
        with self._lock:
            if self._cursor < 0:
                rows: Iterable[Topic] = session.scalars(select(Topic))
                self._entries.clear()
            else:
                ids = set(
                    session.scalars(select(Change.topic_id).where(Change.cursor > self._cursor))
                )
                rows = session.scalars(select(Topic).where(Topic.id.in_(ids))) if ids else []
            depts = {d.code: d for d in session.scalars(select(Department))}
            for topic in rows:
                self._entries[topic.id] = _Entry(
                    id=topic.id,
                    resource_code=topic.resource_code,
                    name=topic.name.lower(),
                    text=topic.search_text,
                    values={
                        "category": topic.category,
                        "classification": topic.classification,
                        "group": topic.group,
                        "provider": topic.provider,
                        "sharing_type": topic.sharing_type,
                        "status": topic.status,
                        "resource_type": topic.resource_type,
                    },
                    doc=orjson.dumps(topic_document(topic, depts.get(topic.provider))),
                )
            # Rebuilt here, in the caller's thread (the endpoint syncs in the thread pool),
            # so a search on the event loop never pays for a rebuild.
            self._rebuild()
            self._cursor = head
            self._synced = wanted

    def _rebuild(self) -> None:
        self._order = sorted(self._entries.values(), key=lambda e: e.resource_code)
        starts: list[int] = []
        pos = 0
        for entry in self._order:
            starts.append(pos)
            pos += len(entry.text) + 1
        self._starts = starts
        # NUL cannot occur in search text, so no match spans two topics.
        self._blob = "\0".join(e.text for e in self._order)
        self._name_blob = "\0".join(e.name for e in self._order)
        name_starts: list[int] = []
        pos = 0
        for entry in self._order:
            name_starts.append(pos)
            pos += len(entry.name) + 1
        self._name_starts = name_starts
        by_value: dict[str, dict[str, set[int]]] = {f: defaultdict(set) for f in FILTERS}
        for i, entry in enumerate(self._order):
            for f, v in entry.values.items():
                by_value[f][v].add(i)
        self._by_value = by_value

    def _matching(self, term: str, *, names: bool = False) -> set[int]:
        found: set[int] = set()
        if names:
            blob, starts = self._name_blob, self._name_starts
        else:
            blob, starts = self._blob, self._starts
        pos = blob.find(term)
        while pos >= 0:
            i = bisect.bisect_right(starts, pos) - 1
            found.add(i)
            nxt = starts[i + 1] if i + 1 < len(starts) else len(blob)
            pos = blob.find(term, nxt)
        return found

    def search(
        self,
        q: str | None,
        filters: dict[str, str | None],
        *,
        category_prefix: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[int, list[bytes]]:
        """(total matches, JSON documents of the page), best first: name matches rank first.

        Serving the page from documents rendered at sync time keeps the database off the
        search path entirely (fetching and re-rendering 20 topics cost more than the search).
        """
        with self._lock:
            chosen = [
                self._by_value[f].get(value, set())
                for f, value in filters.items()
                if value is not None
            ]
            if category_prefix:
                chosen.append(
                    {
                        i
                        for i, e in enumerate(self._order)
                        if e.values["category"].startswith(category_prefix)
                    }
                )
            # Smallest set first; the index's own sets are never mutated, only intersected.
            chosen.sort(key=len)
            candidates: set[int] | None = chosen[0].intersection(*chosen[1:]) if chosen else None
            terms = [t for t in (q or "").lower().split() if t]
            for term in terms:
                hits = self._matching(term)
                candidates = hits if candidates is None else candidates & hits
                if not candidates:
                    break
            if candidates is None:
                candidates = set(range(len(self._order)))
            order = self._order
            total = len(candidates)
            if not terms:
                first = sorted(candidates)[offset : offset + limit]
                return total, [order[i].doc for i in first]
            # Rank by how many terms the name contains, then by resource code (the order of
            # self._order), sorting only the buckets the requested page reaches. Few
            # candidates: test their names one by one; many: one scan of the names is cheaper.
            score: dict[int, int] = defaultdict(int)
            if len(candidates) * 8 < len(order):
                for i in candidates:
                    name = order[i].name
                    n = sum(1 for t in terms if t in name)
                    if n:
                        score[i] = n
            else:
                for term in terms:
                    for i in self._matching(term, names=True):
                        if i in candidates:
                            score[i] += 1
            buckets: dict[int, list[int]] = defaultdict(list)
            for i, n in score.items():
                buckets[n].append(i)
            rest = candidates.difference(score)
            page: list[int] = []
            want = offset + limit
            taken = 0
            for n in range(len(terms), -1, -1):
                bucket = rest if n == 0 else buckets.get(n, ())
                size = len(bucket)
                if taken + size > offset and taken < want:
                    ordered = sorted(bucket)
                    page.extend(ordered[max(0, offset - taken) : want - taken])
                taken += size
                if taken >= want:
                    break
            return total, [order[i].doc for i in page]
