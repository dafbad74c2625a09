"""Where a topic's data lives: the :class:`Route` of a resource code and the cache of them.

The broker asks the catalog and the department registry once per topic, then holds the
answer in memory until either announces a change (:mod:`exchange.db.freshness`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from exchange.catalog.models import Topic
from exchange.db.engine import Database
from exchange.members.models import Department

#: unit kinds that are the peer platform (their mounted topics are asked of the peer)
FEDERATED_KINDS = frozenset({"city_platform", "provincial"})


def key_item(items: Any) -> str | None:
    """A topic's one ``is_key`` item among its catalog ``items`` (None with none, several,
    or no list of items): what lets concurrent lookups share a provider call."""
    keys = [i.get("field") for i in items if i.get("is_key")] if isinstance(items, list) else []
    return keys[0] if len(keys) == 1 and isinstance(keys[0], str) else None


@dataclass(frozen=True, slots=True)
class Route:
    """Where a topic's data lives, as the catalog and the department registry say."""

    resource_code: str
    provider: str
    base_url: str | None
    api_path: str
    resource_type: str
    status: str
    #: base URL and API path joined once (urljoin per call was ~30 µs of a lookup's CPU)
    endpoint: str = ""
    #: the topic's one ``is_key`` item (None with none or several): what lets concurrent
    #: lookups share a provider call (:class:`LookupBatcher`)
    key_item: str | None = None
    #: provided by the peer platform (a mounted topic): asked through the federation
    federated: bool = False
    #: item → data type, the topic's items as the catalog lists them (for verification)
    item_types: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: items the provider lets any member verify without a grant (``verifiable``)
    verifiable: frozenset[str] = frozenset()

    def url(self, action: str) -> str:
        assert self.base_url is not None
        return self.endpoint + action


#: "not in the route cache" (None there means "no such topic")
NOT_CACHED: Any = object()

#: Routes a :class:`RouteCache` holds: past it, the cache starts again empty (the catalog
#: has ~3,722 topics; only codes that do not exist could fill it).
ROUTE_CACHE = 50_000


class RouteCache:
    """resource code → :class:`Route`, held until the catalog or a department changes.

    It follows the ``catalog`` and ``departments`` announcements
    (:mod:`exchange.db.freshness`): a retired topic or a department's new base URL is seen
    by the next call in every process once the change has answered. Concurrent misses of
    one code share one background load (a blocking load per waiting call used to start a
    thundering herd of thread-pool queries); a load that began before an announcement is
    neither stored nor handed to calls that start after it.
    """

    def __init__(self, db: Database, *, self_url: str | None = None) -> None:
        """``self_url``: this process's own address, for the relative base URLs of the
        mock departments it serves itself (None when it serves none)."""
        self._db = db
        self._self_url = self_url
        self._routes: dict[str, Route | None] = {}
        self._loading: dict[str, asyncio.Future[Route | None]] = {}
        self._generation = 0
        for topic in ("catalog", "departments"):
            db.freshness.subscribe(topic, self.invalidate)

    def invalidate(self) -> None:
        """Forget every route (and every load in flight): called after a change commits."""
        self._generation += 1
        self._routes = {}
        self._loading = {}

    def __len__(self) -> int:
        return len(self._routes)

    def cached(self, code: str, default: Any) -> Any:
        """The route held for ``code`` (None: no such topic), or ``default`` when none is
        held: then :meth:`get` loads it."""
        return self._routes.get(code, default)

    async def get(self, front: str, seq: str) -> Route | None:
        code = f"{front}/{seq}"
        routes = self._routes
        if code in routes:
            return routes[code]
        loading = self._loading.get(code) or self._start_load(code, front, seq)
        return await asyncio.shield(loading)

    def _start_load(self, code: str, front: str, seq: str) -> asyncio.Future[Route | None]:
        future = asyncio.ensure_future(self._reload(code, front, seq, self._generation))
        self._loading[code] = future
        return future

    async def _reload(self, code: str, front: str, seq: str, generation: int) -> Route | None:
        me = asyncio.current_task()
        try:
            route = await run_in_threadpool(self._load, front, seq)
        finally:
            if self._loading.get(code) is me:
                del self._loading[code]
        if generation == self._generation:
            if len(self._routes) >= ROUTE_CACHE:
                self._routes = {}
            self._routes[code] = route
        return route

    def _load(self, front: str, seq: str) -> Route | None:
        with self._db.sessions() as session:
            row = session.execute(
                select(Topic, Department.base_url, Department.kind)
                .join(Department, Department.code == Topic.provider)
                .where(Topic.category == front, Topic.sequence == seq)
            ).first()
        if row is None:
            return None
        topic, base_url, kind = row
        if base_url and base_url.startswith("/"):
            # A built-in mock department: it lives in this process, on the port it runs on
            # now (a stored absolute URL kept the port of the first start).
            base_url = None if self._self_url is None else self._self_url + base_url
        api_path = topic.data.get("api_path") or (f"/topics/{topic.slug}" if topic.slug else "")
        return Route(
            resource_code=topic.resource_code,
            provider=topic.provider,
            base_url=base_url,
            api_path=api_path,
            resource_type=topic.resource_type,
            status=topic.status,
            endpoint=(
                urljoin(base_url.rstrip("/") + "/", api_path.lstrip("/")) if base_url else ""
            ),
            key_item=key_item(topic.data.get("items", [])),
            federated=kind in FEDERATED_KINDS and api_path.startswith("/topics/"),
            item_types={
                i["field"]: str(i.get("data_type") or "string")
                for i in topic.data.get("items", [])
                if isinstance(i.get("field"), str)
            },
            verifiable=frozenset(
                i["field"]
                for i in topic.data.get("items", [])
                if i.get("verifiable") and isinstance(i.get("field"), str)
            ),
        )
