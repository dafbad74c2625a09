"""Export chunks as an export streams them: cached, derived once however many callers
want one, spliced with the city's changes, cut to the fields a grant allows.

An export is served in chunks of :data:`EXPORT_CHUNK` source rows, each serialised once
(NDJSON lines and the lines joined) and kept in a :class:`ChunkCache` under a byte budget.
:class:`ExportChunks` decides where a cold chunk is derived (a thread here, or the worker
processes of :mod:`exchange.departments.exporter` ahead of the page being sent) and
shares each derivation between every caller that wants it meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from concurrent.futures.process import BrokenProcessPool
from functools import partial

import orjson

from exchange.departments import noise
from exchange.departments.blocks import Block
from exchange.departments.city import City
from exchange.departments.exporter import (
    ExportWorkers,
    build_chunk,
    project,
    project_block,
    span_of,
)
from exchange.departments.overlay import Overlay, splice
from exchange.departments.served import Topic

__all__ = [
    "EXPORT_CACHE_BYTES",
    "EXPORT_CHUNK",
    "Chunk",
    "ChunkCache",
    "ExportChunks",
    "balanced",
]

EXPORT_CHUNK = 2048
EXPORT_CACHE_BYTES = 256 << 20
#: One serialised export chunk: its source rows and their NDJSON as one block.
Chunk = Block
#: (department, topic, first row, overlay version, fields: () for all of the topic's)
ChunkKey = tuple[str, str, int, int, tuple[str, ...]]
#: (department, topic, first row, fields: () for all of the topic's) of a derivation
DerivingKey = tuple[str, str, int, tuple[str, ...]]


class ChunkCache:
    """Serialized export chunks, least recently used evicted past a byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self.items: OrderedDict[ChunkKey, Chunk] = OrderedDict()

    def get(self, key: ChunkKey) -> Chunk | None:
        hit = self.items.get(key)
        if hit is not None:
            self.items.move_to_end(key)
        return hit

    def put(self, key: ChunkKey, value: Chunk) -> None:
        # Counted twice: a chunk's lines may be cut out of its block too (a page that
        # starts inside it, a splice).
        size = len(value.blob) * 2
        if size > self.budget:
            return
        self.items[key] = value
        self.used += size
        while self.used > self.budget:
            _, old = self.items.popitem(last=False)
            self.used -= len(old.blob) * 2

    def drop(self, code: str, slug: str) -> None:
        """Forget every chunk of one topic (its records changed: noise was set)."""
        for key in [k for k in self.items if k[0] == code and k[1] == slug]:
            self.used -= len(self.items.pop(key).blob) * 2


def balanced(starts: list[int], span: int, workers: int) -> list[list[int]]:
    """Consecutive chunks in calls of at most ``span`` chunks, as many calls as a multiple
    of ``workers`` when there are chunks enough, and of sizes that differ by one at most:
    the workers then end together. 10 chunks in calls of up to 4 for two workers were
    4, 4, 2 (one worker derived 6 while the other, done at 4, waited); now 3, 3, 2, 2."""
    count = -(-len(starts) // span)
    if count > 1 and count % workers:
        evened = -(-count // workers) * workers
        if evened <= len(starts):
            count = evened
    size, extra = divmod(len(starts), max(count, 1))
    out: list[list[int]] = []
    at = 0
    for k in range(count):
        take = size + (k < extra)
        out.append(starts[at : at + take])
        at += take
    return out


class ExportChunks:
    """The chunks of every served topic: cached, derived on demand, spliced, projected."""

    def __init__(
        self, city: City, overlay: Overlay, workers: ExportWorkers, budget: int = EXPORT_CACHE_BYTES
    ) -> None:
        self.city = city
        self.overlay = overlay
        #: processes deriving cold chunks (started with the departments, if any)
        self.workers = workers
        self.cache = ChunkCache(budget)
        #: cold chunks being derived, by (department, topic, first row, fields: () for the
        #: whole chunk): callers that want one meanwhile wait for that derivation instead
        #: of starting their own
        self.deriving: dict[DerivingKey, asyncio.Future[Chunk]] = {}

    def forget(self, code: str, slug: str) -> None:
        """Drop a topic's chunks: its records changed (its noise was set)."""
        self.cache.drop(code, slug)
        for key in [k for k in self.deriving if k[:2] == (code, slug)]:
            # Derived with the old noise: finishes for its waiters, never cached.
            del self.deriving[key]

    def build_chunk(self, topic: Topic, start: int, fields: tuple[str, ...] = ()) -> Chunk:
        """Derive and serialise source rows [start, start + EXPORT_CHUNK) of a topic here
        (each record cut to ``fields``, all of the topic's when empty)."""
        return build_chunk(
            self.city,
            topic.gen.name,
            fields or topic.fields,
            topic.profile.noise_rate,
            noise.salt_of(topic.dept.code, topic.defn.slug),
            start,
            start + EXPORT_CHUNK,
        )

    async def _build_elsewhere(
        self, topic: Topic, starts: list[int], fields: tuple[str, ...] = ()
    ) -> list[Chunk]:
        """Consecutive chunks derived at once by a worker process (when they run), each
        record cut to ``fields`` (all of the topic's when empty)."""
        try:
            built = await self.workers.build(
                topic.gen.name,
                fields or topic.fields,
                topic.profile.noise_rate,
                noise.salt_of(topic.dept.code, topic.defn.slug),
                starts[0],
                len(starts),
                EXPORT_CHUNK,
            )
        except BrokenProcessPool:
            # A worker died (killed, out of memory; ExportWorkers logs it and starts new
            # ones after a while): this span is derived here.
            return await asyncio.to_thread(
                lambda: [self.build_chunk(topic, s, fields) for s in starts]
            )
        return built

    async def projected(self, topic: Topic, start: int, fields: tuple[str, ...]) -> Chunk:
        """A chunk with each record cut to ``fields`` (an export's ``fields`` parameter).

        Cached beside the whole chunk: the exchange asks for the granted items of a topic
        the same way every time, so later exports of that grant stream the cut chunk as
        they would the whole one. A cold chunk no change touched is derived already cut,
        in a worker process when they run (:meth:`derive_ahead` starts it ahead of the
        page); otherwise the cut is made here from the whole chunk's lines.
        """
        code, slug = topic.dept.code, topic.defn.slug
        version = self.overlay.chunk_version(topic.gen.name, start)
        key = (code, slug, start, version, fields)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        if not version and (
            (code, slug, start, fields) in self.deriving
            or (self._cut_elsewhere(fields) and self.cache.get((code, slug, start, 0, ())) is None)
        ):
            return await self._derive(topic, start, fields)
        whole = await self.chunk(topic, start)
        cut = project_block(whole, fields)
        self.cache.put(key, cut)
        return cut

    async def chunk(self, topic: Topic, start: int) -> Chunk:
        """The chunk of ``topic`` from source row ``start``, with the city's changes."""
        code, slug, overlay = topic.dept.code, topic.defn.slug, self.overlay
        # Version 0 is the chunk as derived; each change to one of its rows makes a new
        # version, spliced once from the derived chunk and cached like it (older versions
        # age out of the cache).
        version = overlay.chunk_version(topic.gen.name, start)
        if version:
            hit = self.cache.get((code, slug, start, version, ()))
            if hit is not None:
                return hit
        base = self.cache.get((code, slug, start, 0, ()))
        if base is None:
            base = await self._derive(topic, start)
        if not version:
            return base
        changed = overlay.changed_rows(topic.gen.name, start) or {}
        dumps, fields = orjson.dumps, topic.fields
        rows, lines = splice(
            base.row_list, base.lines, changed, lambda rec: dumps(project(rec, fields)) + b"\n"
        )
        spliced = Block.of_lines(rows, lines)
        self.cache.put((code, slug, start, version, ()), spliced)
        return spliced

    def _cut_elsewhere(self, fields: tuple[str, ...]) -> bool:
        """Whether a cold chunk cut to ``fields`` is derived cut, in a worker process.

        Cutting a derived chunk's lines costs the departments' event loop ~1-3 µs a record
        (:func:`project_block`); a worker derives the cut lines directly (the table writes
        only those columns) at no cost to this process but reading the smaller chunk, and
        caching only the cut chunk leaves the cache room for a whole grant's export (a
        million household records cut to five items fit the default budget; the whole
        records, four times their size, did not, so each export derived them again).
        """
        return bool(fields) and self.workers.running

    async def _derive(self, topic: Topic, start: int, fields: tuple[str, ...] = ()) -> Chunk:
        """A cold chunk, derived once however many callers want it at the same time.

        From a fresh exchange a load test's users ask for the same popular pages at once;
        each derived the chunk itself, so N callers cost N derivations (all holding the
        GIL) and every one of them answered N times later. Deriving takes a while: a thread
        keeps the event loop answering. A caller that goes away does not cancel the
        derivation the others wait for (``shield``).
        """
        return await asyncio.shield(self._deriving_of(topic, start, fields))

    def _deriving_of(
        self, topic: Topic, start: int, fields: tuple[str, ...] = ()
    ) -> asyncio.Future[Chunk]:
        """The derivation of a cold chunk (cut to ``fields``) under way, started now if none
        is."""
        key = (topic.dept.code, topic.defn.slug, start, fields)
        pending = self.deriving.get(key)
        if pending is None:
            if self.workers.running:
                self._derive_span(topic, [start], fields)
                return self.deriving[key]
            pending = asyncio.ensure_future(
                asyncio.to_thread(self.build_chunk, topic, start, fields)
            )
            self.deriving[key] = pending
            pending.add_done_callback(lambda done: self._derived(key, done))
        return pending

    def derive_ahead(
        self, topic: Topic, start: int, stop: int, fields: tuple[str, ...] = ()
    ) -> None:
        """Start deriving the cold chunks of ``[start, stop)`` that nobody derives yet, so
        worker processes make them while the current one is sent: consecutive ones
        together, up to :func:`span_of` the topic's table a worker call, in calls shared
        evenly between the workers (:func:`balanced`). For an export cut to ``fields``, a
        chunk no change touched is derived cut (see :meth:`projected`)."""
        code, slug = topic.dept.code, topic.defn.slug
        cut = self._cut_elsewhere(fields)
        run: list[int] = []
        run_fields: tuple[str, ...] = ()
        runs: list[tuple[list[int], tuple[str, ...]]] = []
        for at in range(start, stop, EXPORT_CHUNK):
            whole = self.cache.get((code, slug, at, 0, ())) is not None
            want: tuple[str, ...] = ()
            if cut and not whole and not self.overlay.chunk_version(topic.gen.name, at):
                want = fields
                if self.cache.get((code, slug, at, 0, fields)) is not None:
                    continue
            elif whole:
                continue
            if (code, slug, at, want) in self.deriving:
                continue
            if run and (at != run[-1] + EXPORT_CHUNK or want != run_fields):
                runs.append((run, run_fields))
                run = []
            run.append(at)
            run_fields = want
        if run:
            runs.append((run, run_fields))
        span, workers = span_of(topic.gen.name), max(1, self.workers.count)
        for starts, want in runs:
            for group in balanced(starts, span, workers):
                self._derive_span(topic, group, want)

    def _derive_span(self, topic: Topic, starts: list[int], fields: tuple[str, ...] = ()) -> None:
        """One worker call for consecutive cold chunks (cut to ``fields``); each chunk's own
        future (what its callers wait for, and what caches it) settles when the call ends."""
        code, slug = topic.dept.code, topic.defn.slug
        loop = asyncio.get_running_loop()
        waiting: list[asyncio.Future[Chunk]] = []
        for at in starts:
            key = (code, slug, at, fields)
            future: asyncio.Future[Chunk] = loop.create_future()
            self.deriving[key] = future
            future.add_done_callback(partial(self._derived, key))
            waiting.append(future)

        def settle(done: asyncio.Future[list[Chunk]]) -> None:
            failed = None if done.cancelled() else done.exception()
            for k, future in enumerate(waiting):
                if future.done():
                    continue
                if done.cancelled():
                    future.cancel()
                elif failed is not None:
                    future.set_exception(failed)
                else:
                    future.set_result(done.result()[k])

        built = self._build_elsewhere(topic, starts, fields)
        asyncio.ensure_future(built).add_done_callback(settle)

    def _derived(self, key: DerivingKey, done: asyncio.Future[Chunk]) -> None:
        if self.deriving.get(key) is not done:
            return  # forgotten meanwhile (the topic's noise changed): not cached
        del self.deriving[key]
        # Retrieved here, so a failure nobody waited for is not logged as never retrieved
        # (the waiters, if any, raise it themselves).
        if done.cancelled() or done.exception() is not None:
            return
        code, slug, start, fields = key
        # A derived chunk is version 0: the chunk before any change to its rows.
        self.cache.put((code, slug, start, 0, fields), done.result())
