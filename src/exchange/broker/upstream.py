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
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import orjson
import yarl

from exchange.broker._h1 import ConnectionFailed, H1Pool
from exchange.broker.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from exchange.provider_auth import ProviderSigner

log = logging.getLogger(__name__)

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


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``reset`` seconds lets one trial
    call through (half-open) and closes on its success, re-opens on its failure.

    While open, calls fail at once with 503 instead of piling onto a provider that is down
    and holding the caller for a full timeout.
    """

    def __init__(self, threshold: int, reset: float) -> None:
        self.threshold = threshold
        self.reset = reset
        self.state = BreakerState.closed
        self.failures = 0
        self.opened_at = 0.0
        self._trial = False

    def allow(self, now: float) -> bool:
        if self.state is BreakerState.closed:
            return True
        if self.state is BreakerState.open:
            if now - self.opened_at < self.reset:
                return False
            self.state = BreakerState.half_open
            self._trial = False
        if self._trial:
            return False  # one trial at a time while half-open
        self._trial = True
        return True

    def retry_after(self, now: float) -> float:
        return max(0.0, self.reset - (now - self.opened_at))

    def success(self) -> None:
        self.state = BreakerState.closed
        self.failures = 0
        self._trial = False

    def failure(self, now: float) -> None:
        self.failures += 1
        self._trial = False
        if self.state is BreakerState.half_open or self.failures >= self.threshold:
            self.state = BreakerState.open
            self.opened_at = now


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

    async def _backoff(self, attempt: int) -> None:
        base = self.config.backoff * (2**attempt)
        await asyncio.sleep(
            base * (0.5 + random.random())
        )  # jitter spreads retries of many callers

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
            except TimeoutError:
                breaker.failure(time.monotonic())
                raise ProviderTimeout(
                    provider,
                    f"provider {provider!r} did not answer within "
                    f"{self.config.timeout_for(provider):g} s",
                ) from None
            except (aiohttp.ClientError, ConnectionFailed) as exc:
                breaker.failure(time.monotonic())
                if attempt < self.config.retries:
                    attempt += 1
                    await self._backoff(attempt)
                    continue
                raise ProviderUnavailable(
                    provider, f"provider {provider!r} is unreachable: {type(exc).__name__}"
                ) from None
            if status == 200:
                breaker.success()
                return payload
            if status >= 500:
                breaker.failure(time.monotonic())
                if status in RETRYABLE_STATUS and attempt < self.config.retries:
                    attempt += 1
                    await self._backoff(attempt)
                    continue
                raise ProviderUnavailable(
                    provider,
                    f"provider {provider!r} failed with HTTP {status} ({_describe_error(payload)})",
                    upstream_status=status,
                )
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
            except TimeoutError:
                breaker.failure(time.monotonic())
                raise ProviderTimeout(
                    provider,
                    f"provider {provider!r} did not start its export within "
                    f"{self.config.timeout_for(provider):g} s",
                ) from None
            except aiohttp.ClientError as exc:
                breaker.failure(time.monotonic())
                if attempt < self.config.retries:
                    attempt += 1
                    await self._backoff(attempt)
                    continue
                raise ProviderUnavailable(
                    provider, f"provider {provider!r} is unreachable: {type(exc).__name__}"
                ) from None
            if resp.status != 200:
                payload = await resp.read()
                resp.release()
                if resp.status >= 500:
                    breaker.failure(time.monotonic())
                    if resp.status in RETRYABLE_STATUS and attempt < self.config.retries:
                        attempt += 1
                        await self._backoff(attempt)
                        continue
                    raise ProviderUnavailable(
                        provider,
                        f"provider {provider!r} failed with HTTP {resp.status} "
                        f"({_describe_error(payload)})",
                        upstream_status=resp.status,
                    )
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


@dataclass(slots=True)
class LookupAnswer:
    """A provider's lookup answer, or the share of it that belongs to one call."""

    records: list[Any]
    not_found: list[Any]
    invalid: list[Any] | None = None


def parse_lookup(provider: str, raw: bytes) -> LookupAnswer:
    """``{"records": [...], "not_found": [...], "invalid": [...]}`` or ``provider.bad_response``."""
    try:
        answer = orjson.loads(raw)
        records = answer["records"]
        not_found = answer.get("not_found", [])
        invalid = answer.get("invalid")
        if not isinstance(records, list) or not isinstance(not_found, list):
            raise TypeError("records and not_found must be lists")
        if invalid is not None and not isinstance(invalid, list):
            raise TypeError("invalid must be a list")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ProviderBadResponse(
            provider, f"provider {provider!r} sent a malformed answer: {exc}"
        ) from None
    return LookupAnswer(records, not_found, invalid)


def split_lookup(
    answer: LookupAnswer, key_item: str, calls: list[list[str]]
) -> list[LookupAnswer] | None:
    """Each call's share of one provider answer to the union of their keys, or None when
    the answer cannot be attributed with certainty.

    A record belongs to the calls that asked for the value of its key item. Certainty
    means: every record is an object whose key item is one of the keys asked for, every
    ``invalid`` entry names a key, and every key asked for is accounted for (records,
    ``not_found`` or ``invalid``). A provider that normalises keys (``x`` → ``X``), leaves
    the key item out, or answers with keys nobody asked for fails one of these, and then
    nothing is split: a record must never reach a call that did not ask for it.
    """
    asked = {key for keys in calls for key in keys}
    by_key: dict[str, list[Any]] = {}
    for record in answer.records:
        if not isinstance(record, dict):
            return None
        key = record.get(key_item)
        if not isinstance(key, str) or key not in asked:
            return None
        by_key.setdefault(key, []).append(record)
    missing = {key for key in answer.not_found if isinstance(key, str)}
    invalid: dict[str, list[Any]] = {}
    for entry in answer.invalid or ():
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            return None
        invalid.setdefault(entry["key"], []).append(entry)
    if any(key not in by_key and key not in missing and key not in invalid for key in asked):
        return None
    shares = []
    for keys in calls:
        share = LookupAnswer([], [], [] if answer.invalid is not None else None)
        for key in keys:
            share.records.extend(by_key.get(key, ()))
            if key in missing:
                share.not_found.append(key)
            if share.invalid is not None:
                share.invalid.extend(invalid.get(key, ()))
        shares.append(share)
    return shares


def _wake(leader: asyncio.Future[None]) -> None:
    if not leader.done():
        leader.set_result(None)


class _Batch:
    """Lookups of one endpoint gathered while its first call waits; that call leads."""

    __slots__ = ("calls", "futures", "keys", "seen")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.seen: set[str] = set()
        self.calls: list[list[str]] = []
        self.futures: list[asyncio.Future[LookupAnswer | None]] = []

    def add(self, keys: list[str]) -> None:
        self.calls.append(keys)
        for key in keys:
            if key not in self.seen:
                self.seen.add(key)
                self.keys.append(key)


@dataclass(slots=True)
class BatcherStats:
    #: provider calls that carried the lookups of more than one broker call
    shared: int = 0
    #: broker calls answered from a shared provider call
    coalesced: int = 0
    #: shared answers that could not be attributed (each call then asked alone)
    unsplittable: int = 0


class LookupBatcher:
    """Concurrent small lookups of one provider endpoint, sent as one provider call.

    Under load many consumers look up single records of the same topic at once (the
    platform's counter services). While other lookups are in flight, the first call of a
    loop turn waits one turn; the calls that arrive for the same endpoint meanwhile join
    it, and one provider call carries their keys (at most ``max_keys``). While
    ``max_inflight`` provider calls of the endpoint are already under way, the batch stays
    open until one of them ends (at most ``max_wait`` seconds): lookups spread over many
    topics rarely meet in one turn, but they do within a provider's round trip (under
    lookups spread over 14 topics almost every provider call carried one lookup, and the
    department spent as much per broker lookup as per direct one). Each call gets
    its share of the answer (:func:`split_lookup`) and is checked, filtered, counted and
    audited on its own as before. A provider call costs the broker a request, a socket
    write and read and a parse, and costs the provider about as much, whatever the number
    of keys: most of both sides' CPU per single lookup (bench/results/broker.md). A call
    alone in its turn is sent as it is.

    Calls of more than ``max_call_keys`` keys are sent alone (they are batches already).
    A topic needs a single key item (``is_key`` in the catalog) to be shared. An answer
    that cannot be attributed with certainty is not used: each call asks again alone, and
    the endpoint is not shared again for ``cooldown`` seconds.
    """

    def __init__(
        self,
        upstream: Upstream,
        *,
        max_keys: int = 1000,
        max_call_keys: int = 100,
        cooldown: float = 600.0,
        max_inflight: int = 1,
        max_wait: float = 0.005,
    ) -> None:
        self.upstream = upstream
        self.max_keys = max_keys
        self.max_call_keys = max_call_keys
        self.cooldown = cooldown
        self.max_inflight = max_inflight
        self.max_wait = max_wait
        self.stats = BatcherStats()
        self._open: dict[str, _Batch] = {}
        self._unshared: dict[str, float] = {}
        #: lookups in this batcher now (waiting for a turn, a share or a provider)
        self._active = 0
        #: endpoint → provider calls under way (every one: alone, led or shared); an
        #: entry exists only while its count is above zero, so the dict stays as small
        #: as the endpoints being called at once
        self._inflight: dict[str, int] = {}
        #: endpoint → leaders of open batches waiting for one of those calls to end
        self._slots: dict[str, deque[asyncio.Future[None]]] = {}

    def _sending(self, url: str) -> None:
        inflight = self._inflight
        inflight[url] = inflight.get(url, 0) + 1

    def _sent(self, url: str) -> None:
        """A provider call of ``url`` ended: wake the first leader waiting for it."""
        inflight = self._inflight
        left = inflight[url] - 1
        if left:
            inflight[url] = left
        else:
            del inflight[url]
        waiting = self._slots.get(url)
        if waiting:
            leader = waiting.popleft()
            if not waiting:
                del self._slots[url]
            _wake(leader)

    async def _slot(self, url: str) -> None:
        """Wait until a provider call of ``url`` ends, or ``max_wait`` seconds."""
        loop = asyncio.get_running_loop()
        leader: asyncio.Future[None] = loop.create_future()
        self._slots.setdefault(url, deque()).append(leader)
        timer = loop.call_later(self.max_wait, _wake, leader)
        try:
            await leader
        finally:
            timer.cancel()
            # Woken by the timer or cancelled: no longer waiting for a call to end.
            waiting = self._slots.get(url)
            if waiting is not None and leader in waiting:
                waiting.remove(leader)
                if not waiting:
                    del self._slots[url]

    async def _alone(self, provider: str, url: str, keys: list[str], rid: str) -> LookupAnswer:
        self._sending(url)
        try:
            raw = await self.upstream.post_json(provider, url, orjson.dumps({"keys": keys}), rid)
        finally:
            self._sent(url)
        return parse_lookup(provider, raw)

    async def lookup(
        self, provider: str, url: str, keys: list[str], request_id: str, key_item: str | None
    ) -> LookupAnswer:
        """The provider's answer for ``keys`` (this call's share of it when shared)."""
        self._active += 1
        try:
            if (
                key_item is None
                or len(keys) > self.max_call_keys
                # An idle broker sends at once: waiting a turn for company that is unlikely
                # to come would only add latency.
                or self._active == 1
                or self._cooling(url)
            ):
                # Inline rather than through _alone: one coroutine less on every lookup.
                self._sending(url)
                try:
                    raw = await self.upstream.post_json(
                        provider, url, orjson.dumps({"keys": keys}), request_id
                    )
                finally:
                    self._sent(url)
                return parse_lookup(provider, raw)
            return await self._shared(provider, url, keys, request_id, key_item)
        finally:
            self._active -= 1

    async def _shared(
        self, provider: str, url: str, keys: list[str], request_id: str, key_item: str
    ) -> LookupAnswer:
        batch = self._open.get(url)
        if batch is not None and len(batch.keys) + len(keys) <= self.max_keys:
            future: asyncio.Future[LookupAnswer | None] = asyncio.get_running_loop().create_future()
            batch.add(keys)
            batch.futures.append(future)
            share = await future
            if share is None:  # the shared call could not be used: ask alone
                return await self._alone(provider, url, keys, request_id)
            return share
        batch = self._open[url] = _Batch()
        batch.add(keys)
        try:
            await asyncio.sleep(0)  # one loop turn: the calls read with this one join it
            if self._inflight.get(url, 0) >= self.max_inflight:
                # Open until a call of this endpoint ends: lookups arriving meanwhile join.
                await self._slot(url)
        except BaseException:
            # Cancelled while gathering: those that joined ask alone.
            for future in batch.futures:
                if not future.done():
                    future.set_result(None)
            raise
        finally:
            if self._open.get(url) is batch:
                del self._open[url]
        if not batch.futures:
            return await self._alone(provider, url, keys, request_id)
        return await self._lead(provider, url, batch, request_id, key_item)

    async def _lead(
        self, provider: str, url: str, batch: _Batch, request_id: str, key_item: str
    ) -> LookupAnswer:
        followers = batch.futures
        try:
            self._sending(url)
            try:
                raw = await self.upstream.post_json(
                    provider, url, orjson.dumps({"keys": batch.keys}), request_id
                )
            finally:
                self._sent(url)
            answer = parse_lookup(provider, raw)
        except Exception as exc:
            # The provider's failure is every call's: each reports and audits it.
            for future in followers:
                if not future.done():
                    future.set_exception(exc)
            raise
        except BaseException:
            # This call was cancelled; the others ask alone.
            for future in followers:
                if not future.done():
                    future.set_result(None)
            raise
        shares = split_lookup(answer, key_item, batch.calls)
        if shares is None:
            self.stats.unsplittable += 1
            self._unshared[url] = time.monotonic() + self.cooldown
            log.warning(
                "lookups of %s are no longer shared for %.0f s: an answer to %d keys could "
                "not be attributed to its %d calls by the key item %r",
                url,
                self.cooldown,
                len(batch.keys),
                len(batch.calls),
                key_item,
            )
            for future in followers:
                if not future.done():
                    future.set_result(None)
            return await self._alone(provider, url, batch.calls[0], request_id)
        self.stats.shared += 1
        self.stats.coalesced += len(batch.calls)
        for future, share in zip(followers, shares[1:], strict=True):
            if not future.done():
                future.set_result(share)
        return shares[0]

    def _cooling(self, url: str) -> bool:
        until = self._unshared.get(url)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._unshared[url]
        return False
