"""The upstream client's one retry rule, on both ways of calling a provider: lookups (POST
through the lean HTTP/1.1 pool) and exports (a GET streamed through aiohttp).

Over real HTTP on loopback: what is retried (refused connections, 502 and 503), what is not
(500, 4xx, a timeout), that each attempt is signed anew, and what the breaker counts; and the
breaker's own rules (one trial at a time while half-open, never stuck on a lost trial).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exchange.broker.breaker import BreakerState, CircuitBreaker
from exchange.broker.errors import ProviderBadResponse, ProviderTimeout, ProviderUnavailable
from exchange.broker.upstream import Upstream, UpstreamConfig

PROVIDER = "gaj"
LOOKUP_ANSWER = b'{"records": [], "not_found": ["A"]}'
EXPORT_ANSWER = b'{"id_number": "A"}\n'
WAYS = ("lookup", "export")


class Provider:
    """Answers each call with the next step of its script (a status, or "slow"), then 200."""

    def __init__(self, *script: int | str) -> None:
        self.script = list(script)
        self.signatures: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.signatures.append(request.headers.get("X-Exchange-Signature", ""))
        step = self.script.pop(0) if self.script else 200
        if step == "slow":
            await asyncio.sleep(2)
            step = 200
        if step == 200:
            return web.Response(body=LOOKUP_ANSWER if request.method == "POST" else EXPORT_ANSWER)
        return web.json_response(
            {"error": {"code": "down", "message": "the provider says no"}}, status=int(step)
        )


def _upstream(**config: Any) -> Upstream:
    options: dict[str, Any] = {"retries": 2, "backoff": 0.001, "timeout": 2.0, **config}
    return Upstream(UpstreamConfig(**options), credentials=lambda provider: "a credential")


async def _call(upstream: Upstream, way: str, base: str) -> bytes:
    if way == "lookup":
        return await upstream.post_json(PROVIDER, f"{base}/query", b'{"keys": ["A"]}', "rid-1")
    async with upstream.stream(PROVIDER, f"{base}/export", {"offset": "0"}, "rid-1") as resp:
        return await resp.read()


def _run(
    provider: Provider, test: Callable[[Upstream, str], Awaitable[None]], **config: Any
) -> None:
    async def run() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", provider.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        upstream = _upstream(**config)
        await upstream.start()
        try:
            await test(upstream, str(server.make_url("")).rstrip("/"))
        finally:
            await upstream.close()
            await server.close()

    asyncio.run(run())


@pytest.mark.parametrize("way", WAYS)
def test_a_502_or_503_is_retried_and_each_attempt_signed_anew(way: str) -> None:
    provider = Provider(503, 502)

    async def test(upstream: Upstream, base: str) -> None:
        answer = await _call(upstream, way, base)
        assert answer == (LOOKUP_ANSWER if way == "lookup" else EXPORT_ANSWER)
        assert upstream.breaker(PROVIDER).state is BreakerState.closed
        assert upstream.breaker(PROVIDER).failures == 0

    _run(provider, test)
    assert len(provider.signatures) == 3
    assert len(set(provider.signatures)) == 3
    assert all(provider.signatures)


@pytest.mark.parametrize("way", WAYS)
def test_retries_stop_at_the_configured_number_and_name_the_status(way: str) -> None:
    provider = Provider(503, 503, 503, 503)

    async def test(upstream: Upstream, base: str) -> None:
        with pytest.raises(ProviderUnavailable) as caught:
            await _call(upstream, way, base)
        assert caught.value.detail["upstream_status"] == 503
        assert "HTTP 503 (down: the provider says no)" in caught.value.message
        assert upstream.breaker(PROVIDER).failures == 3

    _run(provider, test)
    assert len(provider.signatures) == 3


@pytest.mark.parametrize("way", WAYS)
def test_a_500_is_not_retried(way: str) -> None:
    provider = Provider(500)

    async def test(upstream: Upstream, base: str) -> None:
        with pytest.raises(ProviderUnavailable) as caught:
            await _call(upstream, way, base)
        assert caught.value.detail["upstream_status"] == 500
        assert upstream.breaker(PROVIDER).failures == 1

    _run(provider, test)
    assert len(provider.signatures) == 1


@pytest.mark.parametrize(
    ("way", "refused"), [("lookup", "refused the call"), ("export", "refused the export")]
)
def test_a_4xx_is_the_providers_side_and_not_retried(way: str, refused: str) -> None:
    provider = Provider(404)

    async def test(upstream: Upstream, base: str) -> None:
        with pytest.raises(ProviderBadResponse) as caught:
            await _call(upstream, way, base)
        assert refused in caught.value.message
        assert caught.value.detail["upstream_status"] == 404
        assert upstream.breaker(PROVIDER).failures == 0

    _run(provider, test)
    assert len(provider.signatures) == 1


@pytest.mark.parametrize(
    ("way", "late"), [("lookup", "did not answer"), ("export", "did not start its export")]
)
def test_a_timeout_is_not_retried(way: str, late: str) -> None:
    provider = Provider("slow")

    async def test(upstream: Upstream, base: str) -> None:
        with pytest.raises(ProviderTimeout) as caught:
            await _call(upstream, way, base)
        assert f"{late} within 0.2 s" in caught.value.message
        assert upstream.breaker(PROVIDER).failures == 1

    _run(provider, test, timeout=0.2)
    assert len(provider.signatures) == 1


@pytest.mark.parametrize("way", WAYS)
def test_a_refused_connection_is_retried_then_reported_unreachable(way: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def run() -> None:
        upstream = _upstream()
        await upstream.start()
        try:
            with pytest.raises(ProviderUnavailable) as caught:
                await _call(upstream, way, f"http://127.0.0.1:{port}")
            assert "is unreachable" in caught.value.message
            assert upstream.breaker(PROVIDER).failures == 3  # the first try and 2 retries
        finally:
            await upstream.close()

    asyncio.run(run())


@pytest.mark.parametrize("way", WAYS)
def test_a_4xx_answered_to_the_half_open_trial_closes_the_breaker(way: str) -> None:
    # The provider answered: it is up. An export's 4xx once left the trial taken, and the
    # half-open breaker refused that provider's calls from then on.
    provider = Provider(404)

    async def test(upstream: Upstream, base: str) -> None:
        breaker = upstream.breaker(PROVIDER)
        breaker.state, breaker.failures = BreakerState.open, 5
        breaker.opened_at = time.monotonic() - 3600  # long past its reset: the next is a trial
        with pytest.raises(ProviderBadResponse):
            await _call(upstream, way, base)
        assert breaker.state is BreakerState.closed
        assert await _call(upstream, way, base)

    _run(provider, test)
    assert len(provider.signatures) == 2


def test_the_half_open_breaker_lets_one_trial_through_at_a_time() -> None:
    breaker = CircuitBreaker(threshold=2, reset=10.0)
    breaker.failure(100.0)
    assert breaker.allow(101.0)  # one failure of two: still closed
    breaker.failure(101.0)
    assert breaker.state is BreakerState.open
    assert not breaker.allow(105.0)  # open until its reset has passed
    assert breaker.allow(112.0)  # the trial
    assert breaker.state is BreakerState.half_open
    assert not breaker.allow(113.0)  # a second caller waits for the trial's outcome
    breaker.failure(114.0)
    assert breaker.state is BreakerState.open
    assert not breaker.allow(120.0)
    assert breaker.allow(125.0)
    breaker.success()
    assert breaker.state is BreakerState.closed
    assert breaker.allow(125.5)


def test_a_trial_whose_outcome_never_comes_does_not_hold_the_breaker_shut() -> None:
    # Its caller was cancelled, or its client dropped an export mid-stream: no success and
    # no failure is ever reported for it.
    breaker = CircuitBreaker(threshold=1, reset=10.0)
    breaker.failure(0.0)
    assert breaker.allow(10.0)  # the trial, then silence
    assert not breaker.allow(19.0)
    assert breaker.allow(20.5)  # a reset's time without news: another trial
    assert not breaker.allow(21.0)
