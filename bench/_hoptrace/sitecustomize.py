"""Tracepoints for bench/hop_trace.py, loaded into both exchanges through PYTHONPATH.

Does nothing unless HOP_TRACE names a file prefix. Then it wraps the steps of a lookup
(socket reads and writes, the lean handlers, the broker's query and audit, the
federation's forward, peer call, answer check and signing) to record
``(point, perf_counter_ns, port, size)``; SIGUSR2 writes them to
``<HOP_TRACE>-<EXCHANGE_PORT>-<pid>.tsv``. ``perf_counter_ns`` is CLOCK_MONOTONIC, one
clock for both processes. Measuring only: a few µs per point.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Callable
from typing import Any

if os.environ.get("HOP_TRACE"):
    _events: list[tuple[str, int, int, int]] = []
    _now = time.perf_counter_ns

    def _dump(*_: object) -> None:
        name = f"{os.environ['HOP_TRACE']}-{os.environ.get('EXCHANGE_PORT', 'x')}-{os.getpid()}"
        with open(f"{name}.tsv", "w") as out:
            out.writelines("\t".join(map(str, e)) + "\n" for e in _events)

    signal.signal(signal.SIGUSR2, _dump)

    def _port(transport: Any, which: str) -> int:
        info = transport.get_extra_info(which) if transport is not None else None
        return int(info[1]) if info else 0

    def _wrap_async(owner: Any, name: str, label: str) -> None:
        orig = getattr(owner, name)

        @functools.wraps(orig)
        async def traced(*args: Any, **kwargs: Any) -> Any:
            _events.append((label + "0", _now(), 0, 0))
            try:
                return await orig(*args, **kwargs)
            finally:
                _events.append((label + "1", _now(), 0, 0))

        setattr(owner, name, traced)

    def _wrap(owner: Any, name: str, label: str) -> None:
        orig: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(orig)
        def traced(*args: Any, **kwargs: Any) -> Any:
            _events.append((label + "0", _now(), 0, 0))
            try:
                return orig(*args, **kwargs)
            finally:
                _events.append((label + "1", _now(), 0, 0))

        setattr(owner, name, traced)

    from uvicorn.protocols.http import httptools_impl

    from exchange import serving
    from exchange.broker import _h1, batching, pipeline, router, service
    from exchange.federation import lookup, peer, runtime

    _server_read = httptools_impl.HttpToolsProtocol.data_received

    def data_received(self: Any, data: bytes) -> None:
        _events.append(("in", _now(), self.client[1] if self.client else 0, len(data)))
        _server_read(self, data)

    httptools_impl.HttpToolsProtocol.data_received = data_received  # type: ignore[method-assign]

    _flush = serving.CoalescingTransport.flush

    def flush(self: Any) -> None:
        size = sum(map(len, self._pending))
        _flush(self)
        if size:
            _events.append(("out", _now(), _port(self._transport, "peername"), size))

    serving.CoalescingTransport.flush = flush  # type: ignore[method-assign]

    # A lone answer leaves at once, not at the turn's end (serve_lean): without this point
    # a call's answer was never seen leaving, and the steps were cut across calls.
    _write_now = serving.CoalescingTransport.write_now

    def write_now(self: Any, data: bytes) -> None:
        gathered = bool(self._pending)  # then flush() records the answer itself
        _write_now(self, data)
        if data and not gathered:
            _events.append(("out", _now(), _port(self._transport, "peername"), len(data)))

    serving.CoalescingTransport.write_now = write_now  # type: ignore[method-assign]

    _client_send = _h1._Conn.send

    def send(self: Any, *args: Any) -> Any:
        started = _now()
        waiter = _client_send(self, *args)
        _events.append(("csend", started, _port(self.transport, "sockname"), _now() - started))
        return waiter

    _h1._Conn.send = send  # type: ignore[method-assign, assignment]

    _client_read = _h1._Conn.data_received

    def client_read(self: Any, data: bytes) -> None:
        _events.append(("crecv", _now(), _port(self.transport, "sockname"), len(data)))
        _client_read(self, data)

    _h1._Conn.data_received = client_read  # type: ignore[method-assign]

    _complete = _h1._Conn.on_message_complete

    def on_message_complete(self: Any) -> None:
        _complete(self)
        _events.append(("cdone", _now(), _port(self.transport, "sockname"), 0))

    _h1._Conn.on_message_complete = on_message_complete  # type: ignore[method-assign]

    _wrap_async(router.ExchangeDispatch, "lean", "dispatch")
    _wrap_async(service.Broker, "query", "query")
    _wrap_async(pipeline.Pipeline, "_finish", "finish")
    _wrap(serving, "write_answer", "write_answer")
    _wrap_async(runtime.Federation, "forward", "forward")
    _wrap_async(peer.PeerClient, "call", "peercall")
    _wrap(peer.PeerClient, "_verified", "verified")
    _wrap_async(lookup.FederationDispatch, "lean", "fdispatch")
    _wrap_async(lookup, "answer_query", "answer_query")
    _wrap(runtime.Federation, "sign_answer", "sign_answer")
    _wrap(runtime.Federation, "verify", "fverify")
    _wrap_async(batching.LookupBatcher, "lookup", "upstream")
