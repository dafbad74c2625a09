"""Concurrent small lookups of one provider endpoint, gathered into one provider call.

The provider's answer is split back into each call's share (:func:`split_lookup`); an
answer that cannot be attributed with certainty is not shared.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

import orjson

from exchange.broker.answers import LookupAnswer, parse_lookup, split_lookup
from exchange.broker.upstream import Upstream

log = logging.getLogger(__name__)


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
