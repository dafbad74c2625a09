"""The two clients are derived from one description of each call (``Calls``): the same
methods, the builders' typed signatures (no ``**filters: Any``), the same requests sent.
Runs against ``httpx.MockTransport``: what goes on the wire is the point, not a server."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from exchange.client import AsyncExchangeClient, ExchangeClient, ExportInterrupted
from exchange.client._calls import Calls

BUILDERS = sorted(
    name
    for name, value in vars(Calls).items()
    if isinstance(value, staticmethod) and name != "export_params"
)
PAGE = {"total": 0, "offset": 0, "limit": 5, "items": []}


def test_every_builder_is_a_method_of_both_clients_with_its_signature() -> None:
    for name in BUILDERS:
        build = getattr(Calls, name)
        expected = list(inspect.signature(build).parameters.values())
        for cls in (ExchangeClient, AsyncExchangeClient):
            method = getattr(cls, name)
            params = list(inspect.signature(method).parameters.values())
            assert params[0].name == "self", (cls, name)
            assert [(p.name, p.kind, p.default) for p in params[1:]] == [
                (p.name, p.kind, p.default) for p in expected
            ], (cls, name)
            assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in params), name
            assert method.__doc__ == build.__doc__, (cls, name)
            assert method.__qualname__ == f"{cls.__name__}.{name}"
        assert inspect.iscoroutinefunction(getattr(AsyncExchangeClient, name))


def test_both_clients_have_the_same_public_methods() -> None:
    def public(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}

    # Closing differs by name only: close() blocks, aclose() is awaited.
    assert public(ExchangeClient) - {"close"} == public(AsyncExchangeClient) - {"aclose"}


def recorder(
    seen: list[httpx.Request], answer: Callable[[httpx.Request], httpx.Response]
) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return handle


def test_typed_keywords_reach_the_wire_the_same_from_both_clients() -> None:
    seen: list[httpx.Request] = []
    handle = recorder(seen, lambda _r: httpx.Response(200, json=PAGE))
    with ExchangeClient("http://x", "k", transport=httpx.MockTransport(handle)) as sync:
        page = sync.search_topics("户籍", provider="gaj", limit=5)
        sync.list_grants(topic="101001001/000001", status="active")

    async def run() -> None:
        transport = httpx.MockTransport(handle)
        async with AsyncExchangeClient("http://x", "k", transport=transport) as client:
            await client.search_topics("户籍", provider="gaj", limit=5)
            await client.list_grants(topic="101001001/000001", status="active")

    asyncio.run(run())
    assert page.total == 0
    sent = [(r.method, r.url.path, dict(r.url.params)) for r in seen]
    assert sent[:2] == sent[2:]
    assert sent[0] == (
        "GET",
        "/api/v1/catalog/topics",
        {"q": "户籍", "provider": "gaj", "offset": "0", "limit": "5"},
    )
    assert sent[1][2] == {
        "topic": "101001001/000001",
        "status": "active",
        "offset": "0",
        "limit": "50",
    }
    assert all(r.headers["authorization"] == "Bearer k" for r in seen)


def test_a_body_and_a_case_header_are_sent_the_same_from_both_clients() -> None:
    seen: list[httpx.Request] = []
    answer = {"request_id": "r1", "records": [], "not_found": ["k1"]}
    handle = recorder(seen, lambda _r: httpx.Response(200, json=answer))
    with ExchangeClient("http://x", "k", transport=httpx.MockTransport(handle)) as sync:
        sync.query("101001001/000001", ["k1"], items=["name"], case="低保 核查")

    async def run() -> None:
        transport = httpx.MockTransport(handle)
        async with AsyncExchangeClient("http://x", "k", transport=transport) as client:
            await client.query("101001001/000001", ["k1"], items=["name"], case="低保 核查")

    asyncio.run(run())
    assert [json.loads(r.content) for r in seen] == [{"keys": ["k1"], "items": ["name"]}] * 2
    assert {r.headers["x-exchange-case"] for r in seen} == {
        "%E4%BD%8E%E4%BF%9D%20%E6%A0%B8%E6%9F%A5"
    }
    assert {r.headers["content-type"] for r in seen} == {"application/json"}


def chunked(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_export_reassembles_records_across_chunks_in_both_clients(size: int) -> None:
    records = [{"n": i, "name": f"记录{i}"} for i in range(5)]
    body = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)

    def handle(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunked(body, size))

    async def ahandle(_request: httpx.Request) -> httpx.Response:
        async def stream() -> AsyncIterator[bytes]:
            for part in chunked(body, size):
                yield part

        return httpx.Response(200, content=stream())

    with ExchangeClient("http://x", transport=httpx.MockTransport(handle)) as sync:
        assert list(sync.export("t", limit=5)) == records

    async def run() -> list[dict[str, object]]:
        transport = httpx.MockTransport(ahandle)
        async with AsyncExchangeClient("http://x", transport=transport) as client:
            return [r async for r in client.export("t", limit=5)]

    assert asyncio.run(run()) == records


def test_an_export_ending_inside_a_record_says_how_many_arrived() -> None:
    body = b'{"n": 0}\n{"n": 1}\n{"n": 2'

    def handle(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    with ExchangeClient("http://x", transport=httpx.MockTransport(handle)) as sync:
        got: list[dict[str, object]] = []
        with pytest.raises(ExportInterrupted) as broke:
            got.extend(sync.export("t"))
    assert got == [{"n": 0}, {"n": 1}]
    assert broke.value.records == 2
