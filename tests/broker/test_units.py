"""Broker parts on their own: the export filter, the lean HTTP/1.1 client, an abandoned
export's audit entry, and the fast dispatch handing everything else to FastAPI."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR, OPERATOR_KEY

from exchange.audit.entry import Entry
from exchange.authz.policy import Decision
from exchange.broker._h1 import ConnectionFailed, H1Pool, KeepingConn
from exchange.broker.call import BrokerCall
from exchange.broker.errors import ProviderBadResponse
from exchange.broker.filtering import _filter_lines, checked_lines
from exchange.broker.metrics import BrokerMetrics
from exchange.broker.pipeline import ABANDONED
from exchange.broker.quota import QuotaHolds
from exchange.broker.routes import Route
from exchange.broker.service import Broker

WANTED = ("id_number", "name")

# -- the export filter -----------------------------------------------------------------


def test_filter_keeps_only_granted_items_whatever_the_provider_sends() -> None:
    body = (
        b'{"id_number":"1","name":"\xe5\x88\x98","ethnicity":"x","nested":{"a":[1,2]}}\n'
        b"\n"  # a blank line is skipped
        b'{"name":"b","extra":null}\n'
        b'{"id_number":"3","name":"c\\n\\"quoted\\""}'
    )
    out, count = _filter_lines("gaj", body, WANTED)
    assert count == 3
    assert out.split(b"\n") == [
        b'{"id_number":"1","name":"\xe5\x88\x98"}',
        b'{"name":"b"}',
        b'{"id_number":"3","name":"c\\n\\"quoted\\""}',
        b"",
    ]


@pytest.mark.parametrize(
    "body",
    [b"[1,2]", b'"text"', b'{"id_number":"1"', b"not json", b'{"id_number": 1}, 5'],
)
def test_filter_refuses_anything_but_objects(body: bytes) -> None:
    with pytest.raises(ProviderBadResponse):
        _filter_lines("gaj", body, WANTED)


def test_filter_handles_item_names_that_are_not_identifiers() -> None:
    out, count = _filter_lines("x", b'{"class":1,"a-b":2,"c":3}', ("a-b", "class"))
    assert (out, count) == (b'{"a-b":2,"class":1}\n', 1)


def test_lines_of_granted_items_only_are_forwarded_as_they_came() -> None:
    # What a department sends when asked for the granted fields: any order, any spacing,
    # an item missing; the bytes go on untouched (with their last newline) and are counted.
    data = (
        b'{"name":"\xe5\x88\x98","id_number":"1"}\n'
        b"\n"
        b'{ "id_number" : "2" }\n'
        b'{"id_number":"3","name":"c\\n\\"quoted\\", \\"ethnicity\\": 1"}\n'
    )
    out, count = checked_lines("gaj", data, len(data) - 1, WANTED)
    assert (out, count) == (data, 3)
    # A batch cut short of its buffer's end: only the checked lines leave.
    tail = data + b'{"id_number":"4"'
    assert checked_lines("gaj", tail, len(data) - 1, WANTED) == (data, 3)


def test_a_line_with_an_item_outside_the_grant_is_filtered_not_forwarded() -> None:
    # A provider that ignored ``fields`` or overshares: the batch goes through the filter.
    data = b'{"id_number":"1","name":"a"}\n{"id_number":"2","internal_remark":"x"}\n'
    out, count = checked_lines("gaj", data, len(data) - 1, WANTED)
    assert count == 2
    assert out == b'{"id_number":"1","name":"a"}\n{"id_number":"2"}\n'


@pytest.mark.parametrize("body", [b"[1,2]", b'{"id_number":"1"', b"not json", b"{}, 5"])
def test_checked_lines_refuse_anything_but_objects(body: bytes) -> None:
    with pytest.raises(ProviderBadResponse):
        checked_lines("gaj", body + b"\n", len(body), WANTED)


# -- the lean HTTP/1.1 client ------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    """A loopback server running ``handler`` per connection; every connection and handler
    is closed before the loop ends (no stray transports for the collector to find)."""
    tasks: list[asyncio.Task[None]] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            await writer.wait_closed()

    srv = await asyncio.start_server(tracked, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/departments/gaj/topics/t/query"
    finally:
        srv.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await srv.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


def test_posts_reuse_a_kept_alive_connection() -> None:
    connections = 0
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                request = await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            assert request is not None
            seen.append(request)
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{"a":1}')
            await writer.drain()

    async def run() -> list[tuple[int, bytes]]:
        async with server(handler) as url:
            pool = H1Pool(4)
            target = pool.target(url)
            assert target is not None
            answers = [
                await pool.post(
                    target, b'{"keys":["1"]}', b"X-Request-Id: r\r\n", budget=2, connect_budget=1
                )
                for _ in range(3)
            ]
            pool.close()
            return answers

    answers = asyncio.run(run())
    assert answers == [(200, b'{"a":1}')] * 3
    assert connections == 1
    assert seen[0].startswith(b"POST /departments/gaj/topics/t/query HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"X-Request-Id: r\r\n" in seen[0]
    assert seen[0].endswith(b'\r\n\r\n{"keys":["1"]}')


def test_a_keeping_pool_hands_back_each_answers_exchange_headers() -> None:
    """The federation's peer calls read a signed answer's headers: each call gets its own
    answer's, never the previous one's on the same kept-alive connection."""
    answers = [
        b"HTTP/1.1 200 OK\r\nX-Exchange-Signature: s1\r\nX-Exchange-Answer-To: r1\r\n"
        b"X-Other: no\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n{}",
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            await read_request(reader)
            writer.write(answer)
            await writer.drain()

    async def run() -> list[tuple[int, dict[str, str]]]:
        async with server(handler) as url:
            pool = H1Pool(1, KeepingConn)
            target = pool.target(url)
            assert target is not None
            out = []
            for _ in answers:
                kept: dict[str, str] = {}
                status, _ = await pool.post(
                    target, b"{}", b"", budget=2, connect_budget=1, kept=kept
                )
                out.append((status, kept))
            pool.close()
            return out

    assert asyncio.run(run()) == [
        (200, {"x-exchange-signature": "s1", "x-exchange-answer-to": "r1"}),
        (403, {}),
    ]


def test_a_connection_closed_while_idle_is_replaced_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        # Chunked answer, then close: the client's kept connection goes stale.
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        await writer.drain()

    async def run() -> list[tuple[int, bytes]]:
        async with server(handler) as url:
            pool = H1Pool(4)
            target = pool.target(url)
            assert target is not None
            first = await pool.post(target, b"{}", b"", budget=2, connect_budget=1)
            await asyncio.sleep(0.05)  # the server's close reaches the client
            second = await pool.post(target, b"{}", b"", budget=2, connect_budget=1)
            pool.close()
            return [first, second]

    assert asyncio.run(run()) == [(200, b"abc"), (200, b"abc")]


def test_timeouts_and_refusals_raise() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def run() -> None:
        pool = H1Pool(2)
        async with server(silent) as url:
            target = pool.target(url)
            assert target is not None
            with pytest.raises(TimeoutError):
                await pool.post(target, b"{}", b"", budget=0.2, connect_budget=0.2)
        refused = pool.target(url)
        assert refused is not None
        with pytest.raises(ConnectionFailed):
            await pool.post(refused, b"{}", b"", budget=1, connect_budget=0.5)
        pool.close()

    asyncio.run(run())


def test_a_later_call_on_a_kept_connection_times_out_at_its_own_deadline() -> None:
    """The connection's one timer, armed for the first call's deadline and left running,
    expires the second call (a longer budget, never answered) at the second's deadline,
    not the first's, and a call answered in time is not expired by it."""

    async def answers_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await read_request(reader)
        await asyncio.sleep(5)  # the second call is never answered

    async def run() -> None:
        pool = H1Pool(1)
        async with server(answers_once) as url:
            target = pool.target(url)
            assert target is not None
            loop = asyncio.get_running_loop()
            assert await pool.post(target, b"{}", b"", budget=1, connect_budget=1) == (
                200,
                b"ok",
            )
            started = loop.time()
            with pytest.raises(TimeoutError):
                await pool.post(target, b"{}", b"", budget=2, connect_budget=1)
            # Not at the first call's deadline (≤ 1 s after it started): at its own.
            assert loop.time() - started >= 2
        pool.close()

    asyncio.run(run())


def test_a_kept_connection_serves_calls_beyond_the_first_calls_budget() -> None:
    """Calls answered in time on one connection for longer than a call's budget: the
    timer left armed by earlier calls expires none of them."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def run() -> int:
        pool = H1Pool(1)
        calls = 0
        async with server(handler) as url:
            target = pool.target(url)
            assert target is not None
            loop = asyncio.get_running_loop()
            started = loop.time()
            while loop.time() - started < 2.5:
                assert await pool.post(target, b"{}", b"", budget=1, connect_budget=1) == (
                    200,
                    b"ok",
                )
                calls += 1
                await asyncio.sleep(0.05)
        pool.close()
        return calls

    assert asyncio.run(run()) > 1


def test_a_call_waiting_for_a_busy_pool_times_out_and_the_pool_recovers() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            await asyncio.sleep(0.5)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def run() -> None:
        pool = H1Pool(1)  # one connection: the second call waits for the first's
        async with server(slow) as url:
            target = pool.target(url)
            assert target is not None
            first = asyncio.ensure_future(pool.post(target, b"{}", b"", budget=5, connect_budget=1))
            await asyncio.sleep(0.05)
            with pytest.raises(TimeoutError):
                await pool.post(target, b"{}", b"", budget=0.2, connect_budget=0.2)
            assert await first == (200, b"ok")
            # The slot came back: a call with time enough gets the kept connection.
            assert await pool.post(target, b"{}", b"", budget=5, connect_budget=1) == (
                200,
                b"ok",
            )
        pool.close()

    asyncio.run(run())


def test_only_plain_http_targets() -> None:
    pool = H1Pool(1)
    assert pool.target("https://example.org/x") is None
    target = pool.target("http://h:81/a/b?x=1")
    assert target is not None
    assert (target.host, target.port, target.path, target.host_header) == (
        "h",
        81,
        b"/a/b?x=1",
        b"h:81",
    )


# -- an abandoned export is audited ------------------------------------------------------


class _Audit:
    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def submit(self, entry: Entry) -> None:
        self.entries.append(entry)

    async def record(self, entry: Entry) -> None:
        self.entries.append(entry)


class _Grants:
    def __init__(self) -> None:
        self.consumed: list[tuple[int, int]] = []

    def consume(self, grant_id: int, records: int) -> None:
        self.consumed.append((grant_id, records))


class _Clock:
    def now(self) -> dt.datetime:
        return dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


class _Content:
    async def iter_any(self) -> AsyncIterator[bytes]:
        line = b'{"id_number":"1","name":"a","secret":"s"}\n'
        while True:
            yield line * 10_000  # more than one filter batch each time


class _Response:
    content = _Content()


class _Upstream:
    exited: tuple[Any, ...] | None = None

    async def __aexit__(self, *exc: Any) -> None:
        self.exited = exc


def test_an_export_abandoned_mid_stream_is_audited_and_counted() -> None:
    audit, grants, upstream = _Audit(), _Grants(), _Upstream()
    broker = Broker.__new__(Broker)
    broker.audit = audit  # type: ignore[assignment]
    broker.clock = _Clock()  # type: ignore[assignment]
    broker.metrics = BrokerMetrics()
    broker.grants = grants  # type: ignore[assignment]
    broker.holds = QuotaHolds()
    call = BrokerCall(request_id="r1", kind="export", started=0.0, consumer="mzj", provider="gaj")
    route = Route("101001001/000001", "gaj", "http://x", "/t", "table", "published")
    decision = Decision(True, "granted", 7, frozenset(WANTED), None)

    async def run() -> int:
        stream = broker._relay(call, route, decision, _Response(), upstream)  # type: ignore[arg-type]
        first = await stream.__anext__()
        await stream.aclose()  # what the server does when the consumer goes away
        return first.count(b"\n")

    sent = asyncio.run(run())
    assert sent > 0
    assert [e.outcome for e in audit.entries] == [ABANDONED]
    assert audit.entries[0].records == sent
    assert grants.consumed == [(7, sent)]
    assert upstream.exited is not None
    assert upstream.exited[0] is GeneratorExit


# -- the fast dispatch and FastAPI ---------------------------------------------------------


def test_requests_the_fast_path_does_not_take_get_fastapis_answers(client: TestClient) -> None:
    wrong_method = client.post("/api/v1/exchange/101001001/000001/export", headers=OPERATOR)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    bad_code = client.post(
        "/api/v1/exchange/9x/000001/query", json={"keys": ["1"]}, headers=OPERATOR
    )
    assert bad_code.status_code in (404, 422)
    assert "error" in bad_code.json()
    taken = client.post(
        "/api/v1/exchange/101001001/000001/query",
        json={"keys": ["1"]},
        headers={**OPERATOR, "X-Request-Id": "mine-1"},
    )
    # The operator may not exchange data: the broker's own error model and request id.
    assert taken.status_code == 403
    assert taken.headers["x-correlation-id"] == "mine-1"
    rid = taken.headers["x-request-id"]
    assert rid != "mine-1"
    assert taken.json()["error"] == {
        "code": "client.not_a_department",
        "message": taken.json()["error"]["message"],
        "request_id": rid,
        "detail": {"side": "client"},
    }
    assert "/api/v1/exchange/{front}/{seq}/query" in client.get("/openapi.json").json()["paths"]


# -- where the built-in departments are reached ---------------------------------------------


@pytest.mark.parametrize("departments_url", [None, "http://127.0.0.1:9"])
def test_built_in_departments_are_called_where_the_settings_say(
    database_url: str, departments_url: str | None
) -> None:
    # Under ``exchange up --workers`` the departments run in a process of their own: the
    # broker calls it directly (builtin_departments_url) instead of its own port, whose
    # gateway would relay every provider call through a second worker.
    from sqlalchemy import select

    from exchange.app import build_context, create_app
    from exchange.catalog.models import Topic
    from exchange.config import Settings
    from exchange.seed import BUILTIN, seed

    settings = Settings(
        database_url=database_url,
        operator_key=OPERATOR_KEY,
        provider_secret="exms_test",
        catalog_profile="core",
        population=2_000,
        enterprises=500,
        port=8123,
        builtin_departments_url=departments_url,
    )
    ctx = build_context(settings)
    try:
        seed(ctx.db, settings, OPERATOR_KEY, ctx.clock, served=("gaj",), departments_url=BUILTIN)
        with ctx.db.sessions() as session:
            topic = session.scalars(select(Topic).where(Topic.provider == "gaj")).first()
        assert topic is not None
        create_app(settings, ctx=ctx)
        broker = ctx.broker
        assert broker is not None
        route = asyncio.run(broker.routes.get(topic.category, topic.sequence))
        assert route is not None
        expected = departments_url or "http://127.0.0.1:8123"
        assert route.base_url == f"{expected}/departments/gaj"
    finally:
        ctx.db.dispose()
