"""This platform's side of the connection to its peer, as every part of the federation's
run time shares it: the settings and credentials, the counters, the published topics (from
memory), the peer's refusals read as errors and the federation's audit entries. The parts
(:mod:`~exchange.federation.providing`, :mod:`~exchange.federation.receiving`) and the whole
(:class:`exchange.federation.runtime.Federation`) build on :class:`Connection`.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from sqlalchemy import select

from exchange.audit.entry import Entry
from exchange.broker.errors import ProviderBadResponse
from exchange.context import AppContext
from exchange.db.threads import run_joined
from exchange.errors import ExchangeError
from exchange.federation.models import Publication
from exchange.federation.peer import PeerClient
from exchange.federation.trust import signer_for, verifier_for
from exchange.provider_auth import derive_provider_secret

#: where a platform answers its peer
PREFIX = "/api/v1/federation"
SYNC_SECONDS = 2.0
FEED_PAGE = 500
#: export rows per provision page: large pages amortise the signed call and the commit
DEFAULT_PAGE = 20_000
MAX_PAGE = 100_000


class Connection:
    """This platform's side of the connection to its peer."""

    def __init__(self, ctx: AppContext) -> None:
        settings = ctx.settings
        self.ctx = ctx
        self.db = ctx.db
        self.level = settings.level
        self.own_code = settings.own_code
        self.peer_code = settings.peer_code
        self.peer_url = (settings.peer_url or "").rstrip("/")
        self.peer_level = "city" if settings.level == "province" else "province"
        #: export rows asked per page of bulk provision
        self.page_size = min(settings.federation_page, MAX_PAGE)
        master = ctx.provider_secret
        #: what this platform signs its calls to the peer with (it issued it to the peer)
        self.client = PeerClient(
            self.peer_url or "http://unset.invalid",
            credential=derive_provider_secret(master, self.peer_code),
            own_code=self.own_code,
            peer_code=self.peer_code,
        )
        credential = settings.peer_credential
        self._inbound = (
            verifier_for(credential, self.own_code, window=settings.provider_window)
            if credential
            else None
        )
        self._answers = signer_for(credential, self.peer_code) if credential else None
        #: grants the peer revoked on this platform's topics (their calls are refused)
        self.revoked: set[int] = set()
        self._kick = asyncio.Event()
        self._pulling = asyncio.Lock()
        self._syncing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        #: the feed's sync run beside a pull that went on past its slice
        self._beside: asyncio.Task[None] | None = None
        self.last_sync_error: str | None = None
        self.synced_at: float | None = None
        #: resource codes published to the peer (None: to be loaded); dropped whenever the
        #: catalog announces a change, which publishing and withdrawing do
        self._published: frozenset[str] | None = None
        ctx.db.freshness.subscribe("catalog", self._forget_published)
        #: records provided to the peer per published topic, not yet added to the table
        self._provided: dict[str, int] = {}
        self._flushing: dict[str, int] = {}
        #: records provided to the peer since this process started, cumulative (/metrics)
        self.provided_total = 0
        #: records the peer provided in bulk and this process stored (/metrics)
        self.received_total = 0
        #: the last failure of each provision (local resource code), None once it works
        self.provision_errors: dict[str, str | None] = {}
        #: failing provisions (local resource code): (failures in a row, next try, monotonic)
        self._retry: dict[str, tuple[int, float]] = {}
        #: provisions (local resource code) whose last pull ended on its time slice, not
        #: caught up: the background task goes on at once rather than after a tick
        self.provisions_behind: set[str] = set()
        #: stored provision pages older than this (seconds) are folded (0: never)
        self.retention = settings.federation_retention
        self.prune_pages = settings.federation_prune_pages
        self.prune_every = settings.federation_prune_every
        self._next_prune = 0.0

    @property
    def connected(self) -> bool:
        return bool(self.peer_url)

    def _forget_published(self) -> None:
        self._published = None

    async def is_published(self, resource_code: str) -> bool:
        """Whether a topic is published to the peer (from memory; loaded once per change)."""
        return resource_code in await self.published()

    def published_now(self) -> frozenset[str] | None:
        """The topics published to the peer when held in memory, else None (then
        :meth:`published` loads them)."""
        return self._published

    async def published(self) -> frozenset[str]:
        """The resource codes published to the peer (loaded once per catalog change)."""
        published = self._published
        if published is None:
            published = self._published = await run_joined(self._load_published)
        return published

    def _load_published(self) -> frozenset[str]:
        with self.db.sessions() as session:
            return frozenset(session.scalars(select(Publication.resource_code)))

    def _peer_error(self, provider: str, status: int, body: bytes) -> ExchangeError:
        try:
            error = orjson.loads(body)["error"]
            peer_code = str(error["code"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return ProviderBadResponse(
                provider,
                f"the {self.peer_level} platform answered HTTP {status} outside the error model",
                platform=self.peer_level,
            )
        # Provider-side here whatever it was there (the peer platform is this call's
        # provider); the peer's own code, side and request id travel in the detail.
        code = peer_code if peer_code.startswith("provider.") else "provider.peer_refused"
        return ExchangeError(
            f"the {self.peer_level} platform refused: {error.get('message', '')}",
            code=code,
            status_code=status if status < 500 else 502,
            detail={
                "side": "provider",
                "provider": provider,
                "platform": self.peer_level,
                "peer": {
                    "code": peer_code,
                    "side": (error.get("detail") or {}).get("side"),
                    "request_id": error.get("request_id"),
                    "detail": error.get("detail"),
                },
            },
        )

    def audit_entry(
        self,
        *,
        request_id: str,
        correlation_id: str | None,
        consumer: str,
        provider: str | None,
        resource_code: str | None,
        items: list[str],
        case: str | None,
        records: int,
        outcome: str,
        status: int,
        started: float,
    ) -> Entry:
        return Entry(
            request_id=request_id,
            at=self.ctx.clock.now(),
            kind="federation",
            consumer=consumer,
            provider=provider,
            resource_code=resource_code,
            items=items,
            case=case[:200] if case else None,
            records=records,
            outcome=outcome,
            status=status,
            latency_us=int((time.perf_counter() - started) * 1_000_000),
            correlation_id=correlation_id,
        )
