"""Calls to providers: one pooled aiohttp session, per-provider timeouts, retries, breakers.

aiohttp rather than httpx, by measurement on the 2-core bench machine: plain
``httpx.AsyncClient`` capped a broker worker near 650 req/s with p99 > 400 ms whatever its
pool size; aiohttp reached ~5,300 req/s (see ``bench/results/broker.md``). Lookups to
``http://`` providers go through the leaner :mod:`exchange.broker._h1` client, which
costs a fraction of aiohttp's CPU per call; exports stream through aiohttp.

Retries apply only to calls that are safe to repeat (the broker's lookups and exports are
reads) and only to failures that happen before the provider could have answered: refused
or reset connections and 502/503 answers. A timeout is not retried: the caller has already
waited the provider's whole budget.

Every call is signed for its provider (:mod:`exchange.provider_auth`), each attempt anew:
a provider refuses a call it has seen before, and a retry is a new call. The signer of a
provider is built once (the HMAC state of its constant prefix); a signature costs ~2 µs.
Providers that want mutual TLS get it over ``https://`` with ``client_cert``/``client_key``.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import aiohttp
import orjson
import yarl

from exchange.broker._h1 import ConnectionFailed, H1Pool
from exchange.broker.breaker import CircuitBreaker
from exchange.broker.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from exchange.provider_auth import ProviderSigner

RETRYABLE_STATUS = frozenset({502, 503})


@dataclass(frozen=True)
class UpstreamConfig:
    """How the broker treats providers; ``timeouts`` overrides ``timeout`` per department."""

    timeout: float = 5.0
    connect_timeout: float = 1.0
    timeouts: Mapping[str, float] = field(default_factory=dict)
    retries: int = 2
    backoff: float = 0.05
    breaker_failures: int = 5
    breaker_reset: float = 10.0
    pool_size: int = 512
    #: mTLS to ``https://`` providers: the broker's client certificate and key (PEM files)
    client_cert: str | None = None
    client_key: str | None = None
    #: CA bundle trusted for ``https://`` providers (None: the system's)
    ca_file: str | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``https://`` providers, or None for aiohttp's default."""
        if self.client_cert is None and self.ca_file is None:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.client_cert is not None:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context

    def timeout_for(self, provider: str) -> float:
        return self.timeouts.get(provider, self.timeout)


def _describe_error(body: bytes) -> str:
    try:
        error = orjson.loads(body)["error"]
        return f"{error['code']}: {error['message']}"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


class Upstream:
    """The broker's client for provider APIs. Open it with :meth:`start` inside a running
    event loop (the app's lifespan) and close it with :meth:`close`."""

    def __init__(
        self,
        config: UpstreamConfig | None = None,
        *,
        credentials: Callable[[str], str] | None = None,
    ) -> None:
        """``credentials(provider)`` is the provider's credential the broker signs its
        calls with; None sends unsigned calls (only tests of this class do)."""
        self.config = config or UpstreamConfig()
        self._credentials = credentials
        self._signers: dict[str, ProviderSigner] = {}
        self._paths: dict[str, bytes] = {}
        self._session: aiohttp.ClientSession | None = None
        self._h1: H1Pool | None = None
        self.breakers: dict[str, CircuitBreaker] = {}
        self._timeouts: dict[str, aiohttp.ClientTimeout] = {}

    async def start(self) -> None:
        if self._session is not None:
            return
        self._h1 = H1Pool(self.config.pool_size)
        connector = aiohttp.TCPConnector(
            limit=self.config.pool_size,
            limit_per_host=self.config.pool_size,
            ttl_dns_cache=300,
            keepalive_timeout=30,
            ssl=self.config.ssl_context() or True,
        )
        # No cookie jar and no automatic decompression: the broker relays data, it keeps
        # no state between calls of different consumers.
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            # Exports arrive in MB/s: a 64 KiB buffer (the default) paused the socket and
            # handed the filter many small chunks, each costing a loop turn and a send.
            read_bufsize=1 << 20,
            json_serialize=lambda v: orjson.dumps(v).decode(),
        )

    async def close(self) -> None:
        if self._h1 is not None:
            self._h1.close()
            self._h1 = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Upstream.start() was not called (app lifespan not running)")
        return self._session

    def breaker(self, provider: str) -> CircuitBreaker:
        found = self.breakers.get(provider)
        if found is None:
            found = self.breakers[provider] = CircuitBreaker(
                self.config.breaker_failures, self.config.breaker_reset
            )
        return found

    def signer(self, provider: str) -> ProviderSigner | None:
        """The provider's signer, built on its first call."""
        found = self._signers.get(provider)
        if found is None and self._credentials is not None:
            found = self._signers[provider] = ProviderSigner(self._credentials(provider), provider)
        return found

    def _path(self, url: str) -> bytes:
        """The path and query of ``url`` as sent (what the signature covers)."""
        found = self._paths.get(url)
        if found is None:
            parts = urlsplit(url)
            found = ((parts.path or "/") + (f"?{parts.query}" if parts.query else "")).encode()
            if len(self._paths) > 10_000:
                self._paths.clear()
            self._paths[url] = found
        return found

    def _timeout(self, provider: str, *, streaming: bool) -> aiohttp.ClientTimeout:
        key = f"{provider}\0{streaming}"
        found = self._timeouts.get(key)
        if found is None:
            seconds = self.config.timeout_for(provider)
            connect = min(seconds, self.config.connect_timeout)
            # A stream may run for minutes; its budget applies to each read, not the whole.
            found = (
                aiohttp.ClientTimeout(total=None, connect=connect, sock_read=seconds)
                if streaming
                else aiohttp.ClientTimeout(total=seconds, connect=connect)
            )
            self._timeouts[key] = found
        return found

    def _gate(self, provider: str) -> CircuitBreaker:
        breaker = self.breaker(provider)
        now = time.monotonic()
        if not breaker.allow(now):
            raise ProviderUnavailable(
                provider,
                f"provider {provider!r} is failing; the broker stopped calling it for "
                f"{breaker.retry_after(now):.1f} s (circuit open)",
                status_code=503,
                circuit="open",
            )
        return breaker

    async def _retry(
        self,
        provider: str,
        breaker: CircuitBreaker,
        attempt: int,
        failure: BaseException | int,
        payload: bytes = b"",
        *,
        doing: str = "answer",
    ) -> int:
        """The retry rule of every call, in one place: a failed attempt (an exception, or
        an HTTP status of 500 and above with its ``payload``) counts on the provider's
        breaker; when it may be repeated, wait out the backoff and return the next
        attempt's number, otherwise raise the caller's ``provider.*`` error.

        Called only once an attempt has failed: a call that succeeds pays nothing for it.
        """
        breaker.failure(time.monotonic())
        if isinstance(failure, TimeoutError):
            raise ProviderTimeout(
                provider,
                f"provider {provider!r} did not {doing} within "
                f"{self.config.timeout_for(provider):g} s",
            ) from None
        retryable = not isinstance(failure, int) or failure in RETRYABLE_STATUS
        if retryable and attempt < self.config.retries:
            attempt += 1
            base = self.config.backoff * (2**attempt)
            # jitter spreads retries of many callers
            await asyncio.sleep(base * (0.5 + random.random()))
            return attempt
        if not isinstance(failure, int):
            raise ProviderUnavailable(
                provider, f"provider {provider!r} is unreachable: {type(failure).__name__}"
            ) from None
        raise ProviderUnavailable(
            provider,
            f"provider {provider!r} failed with HTTP {failure} ({_describe_error(payload)})",
            upstream_status=failure,
        )

    async def post_json(self, provider: str, url: str, body: bytes, request_id: str) -> bytes:
        """POST ``body`` and return the 200 answer's bytes, or raise a ``provider.*`` error."""
        timeout = self._timeout(provider, streaming=False)
        target = self._h1.target(url) if self._h1 is not None else None
        rid = request_id.encode("latin-1", "replace")
        signer = self.signer(provider)
        path = target.path if target is not None else self._path(url)
        attempt = 0
        while True:
            breaker = self._gate(provider)
            # Signed per attempt: the provider refuses a nonce it has seen.
            signature = None if signer is None else signer.sign("POST", path, body, request_id)
            lean_headers = b"Content-Type: application/json\r\nX-Request-Id: %s\r\n" % rid
            if signature is not None:
                lean_headers += b"X-Exchange-Signature: %s\r\n" % signature.encode()
            try:
                if target is not None and self._h1 is not None:
                    status, payload = await self._h1.post(
                        target,
                        body,
                        lean_headers,
                        budget=self.config.timeout_for(provider),
                        connect_budget=min(
                            self.config.timeout_for(provider), self.config.connect_timeout
                        ),
                    )
                else:
                    headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
                    if signature is not None:
                        headers["X-Exchange-Signature"] = signature
                    async with self.session.post(
                        yarl.URL(url, encoded=True), data=body, headers=headers, timeout=timeout
                    ) as resp:
                        payload = await resp.read()
                        status = resp.status
            except (TimeoutError, aiohttp.ClientError, ConnectionFailed) as exc:
                attempt = await self._retry(provider, breaker, attempt, exc)
                continue
            if status == 200:
                breaker.success()
                return payload
            if status >= 500:
                attempt = await self._retry(provider, breaker, attempt, status, payload)
                continue
            # A 4xx to a well-formed broker request means the provider's API is not what
            # the catalog says it is: the provider's side.
            breaker.success()
            raise ProviderBadResponse(
                provider,
                f"provider {provider!r} refused the call with HTTP {status} "
                f"({_describe_error(payload)})",
                upstream_status=status,
            )

    @asynccontextmanager
    async def stream(
        self, provider: str, url: str, params: Mapping[str, str], request_id: str
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET a streamed answer; yields the response once its status is 200."""
        timeout = self._timeout(provider, streaming=True)
        # The query is encoded here, once, and sent as signed (yarl would re-encode it).
        full = f"{url}?{urlencode(params)}" if params else url
        path = self._path(full)
        signer = self.signer(provider)
        attempt = 0
        while True:
            breaker = self._gate(provider)
            headers = {"X-Request-Id": request_id}
            if signer is not None:
                headers["X-Exchange-Signature"] = signer.sign("GET", path, b"", request_id)
            try:
                resp = await self.session.get(
                    yarl.URL(full, encoded=True), headers=headers, timeout=timeout
                )
            except (TimeoutError, aiohttp.ClientError) as exc:
                attempt = await self._retry(
                    provider, breaker, attempt, exc, doing="start its export"
                )
                continue
            if resp.status != 200:
                payload = await resp.read()
                resp.release()
                if resp.status >= 500:
                    attempt = await self._retry(provider, breaker, attempt, resp.status, payload)
                    continue
                # The provider answered (as a lookup's 4xx counts): it is up.
                breaker.success()
                raise ProviderBadResponse(
                    provider,
                    f"provider {provider!r} refused the export with HTTP {resp.status} "
                    f"({_describe_error(payload)})",
                    upstream_status=resp.status,
                )
            try:
                yield resp
            except (TimeoutError, aiohttp.ClientError, ProviderError):
                breaker.failure(time.monotonic())
                raise
            else:
                breaker.success()
            finally:
                resp.release()
            return
