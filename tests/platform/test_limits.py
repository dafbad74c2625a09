"""Limits every route meets: body size (413), body time (408), list sizes, NUL, 405 Allow."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.conftest import OPERATOR, OPERATOR_KEY
from tests.e2e.harness import serve

from exchange.app import build_context, create_app
from exchange.config import Settings

SMALL = 4096
EXCHANGE_QUERY = "/api/v1/exchange/101001001/000001/query"


@pytest.fixture
def small_client(settings: Settings) -> Iterator[TestClient]:
    """An exchange that accepts bodies of at most 4 KiB."""
    limited = settings.model_copy(update={"max_body_bytes": SMALL})
    app = create_app(limited, ctx=build_context(limited))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("url", ["/api/v1/departments", EXCHANGE_QUERY])
def test_a_body_declared_too_large_is_413_before_it_is_read(
    small_client: TestClient, url: str
) -> None:
    resp = small_client.post(
        url, content=b"{" + b" " * SMALL + b"}", headers=OPERATOR | {"X-Request-Id": "big-1"}
    )
    assert resp.status_code == 413, resp.text
    err = resp.json()["error"]
    assert err["code"] == "body_too_large"
    # the exchange assigns request ids itself, even before any route
    assert err["request_id"] == resp.headers["x-request-id"] != "big-1"
    assert err["detail"]["limit"] == SMALL
    assert resp.headers["connection"] == "close"


@pytest.mark.parametrize("url", ["/api/v1/departments", EXCHANGE_QUERY])
def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(
    small_client: TestClient, url: str
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"code": "'
        for _ in range(SMALL):
            yield b"x"
        yield b'"}'

    resp = small_client.post(url, content=chunks(), headers=OPERATOR)
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"]["code"] == "body_too_large"


def test_a_body_within_the_limit_is_served(small_client: TestClient) -> None:
    body = {"code": "ok-size", "name": "大小合适局", "kind": "municipal"}
    assert small_client.post("/api/v1/departments", json=body, headers=OPERATOR).status_code == 201


@pytest.mark.parametrize(
    ("method", "url", "allow"),
    [
        ("DELETE", "/api/v1/clock", "GET"),
        ("PUT", "/api/v1/departments", "GET, POST"),
        ("GET", EXCHANGE_QUERY, "POST"),
        ("POST", "/api/v1/exchange/101001001/000001/export", "GET"),
    ],
)
def test_a_wrong_method_is_405_with_allow(
    client: TestClient, method: str, url: str, allow: str
) -> None:
    resp = client.request(method, url, headers=OPERATOR)
    assert resp.status_code == 405, resp.text
    assert resp.json()["error"]["code"] == "method_not_allowed"
    assert resp.headers["allow"] == allow


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/audit/entries?limit=1001",
        "/api/v1/catalog/topics?limit=201",
        "/api/v1/catalog/changes?limit=1001",
        "/api/v1/grants?limit=501",
        "/api/v1/applications?limit=501",
    ],
)
def test_pages_are_bounded(client: TestClient, url: str) -> None:
    resp = client.get(url, headers=OPERATOR)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["detail"]["field"] == "limit"


def test_every_operation_has_a_tag_and_lists_each_tag_once(client: TestClient) -> None:
    """A router included into another takes the outer router's tags: a tag of its own as
    well would list the operation twice under it in the API reference."""
    schema = client.get("/openapi.json").json()
    tagged = 0
    for path, item in schema["paths"].items():
        for method, op in item.items():
            tags = op.get("tags", [])
            assert len(tags) == len(set(tags)), (method, path, tags)
            tagged += bool(tags)
    assert tagged > 30
    feed = schema["paths"]["/api/v1/subscriptions/{sub_id}/events"]["get"]
    assert feed["tags"] == ["distribution"]


def test_the_openapi_schema_documents_bearer_and_every_error(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert schema["security"] == [{"bearerAuth": []}]
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    seen = 0
    for path, item in schema["paths"].items():
        for method, op in item.items():
            seen += 1
            codes = set(op["responses"])
            public = op.get("security") == []
            expected = {"404", "413", "422", "503"} | (set() if public else {"401", "403"})
            if "requestBody" in op:
                expected |= {"400", "408"}
            if method in {"post", "patch", "put", "delete"}:
                expected.add("409")
            if path.startswith("/api/v1/exchange/"):
                expected.add("429")
            assert expected <= codes, (method, path, expected - codes)
            for code in expected:
                content = op["responses"][code]["content"]["application/json"]
                assert content["schema"] == error_ref, (method, path, code)
    assert seen > 30
    public = {
        p for p, item in schema["paths"].items() for op in item.values() if op.get("security") == []
    }
    # No bearer key: the health check, and the peer platform's calls, which are
    # authenticated by their signature instead (exchange.federation).
    signed = {
        "/api/v1/federation/feed",
        "/api/v1/federation/audit",
        "/api/v1/federation/revocations",
        "/api/v1/federation/topics/{front}/{seq}/query",
        "/api/v1/federation/topics/{front}/{seq}/records",
        "/api/v1/federation/applications",
        "/api/v1/federation/applications/states",
        "/api/v1/federation/applications/disputes",
    }
    assert public == {"/healthz"} | signed
    for path in signed:
        for op in schema["paths"][path].values():
            assert "401" in op["responses"], path


# --- slow bodies, over real HTTP --------------------------------------------------------------


@pytest.fixture
def slow_limited(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A served exchange that gives a client 0.5 s to send a whole body."""
    limited = settings.model_copy(update={"body_timeout": 0.5})
    app = create_app(limited, ctx=build_context(limited))
    with serve(app) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _trickle(
    address: tuple[str, int], path: str, *, declared: int, sent: bytes
) -> tuple[bytes, float]:
    """Send a head and part of a body, then wait: (everything the server sent, seconds
    until it closed the connection)."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=10) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
        )
        sock.sendall(head.encode() + sent)
        received = b""
        while chunk := sock.recv(65536):  # until the server closes (or 10 s pass: error)
            received += chunk
    return received, time.monotonic() - started


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["/api/v1/departments", EXCHANGE_QUERY])
def test_a_client_trickling_its_body_is_cut_off(slow_limited: tuple[str, int], path: str) -> None:
    received, seconds = _trickle(slow_limited, path, declared=1000, sent=b'{"code": "sl')
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout", received
    assert b'"code":"body_timeout"' in rest
    assert b"connection: close" in rest.lower()
    # cut off at the deadline, not when the socket's own 10 s timeout would have fired
    assert 0.4 < seconds < 5


@pytest.mark.e2e
def test_a_whole_body_in_time_is_served_over_http(slow_limited: tuple[str, int]) -> None:
    body = (
        b'{"code": "in-time", "name": "\xe5\x87\x86\xe6\x97\xb6\xe5\xb1\x80", "kind": "municipal"}'
    )
    with socket.create_connection(slow_limited, timeout=10) as sock:
        head = (
            f"POST /api/v1/departments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            f"{OPERATOR_KEY}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            "\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:10])
        sock.sendall(body[10:])
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 201 "), received


@pytest.mark.e2e
def test_a_lookup_body_sent_in_parts_is_read_whole(slow_limited: tuple[str, int]) -> None:
    """The broker's lookups read their body in their own task (no wrapped receive): a body
    arriving in two segments within the deadline is read whole and the call goes on (here
    to the operator-key refusal, which needs the parsed call), never a 408."""
    body = b'{"keys": ["440112198801253075"]}'
    with socket.create_connection(slow_limited, timeout=10) as sock:
        head = (
            f"POST {EXCHANGE_QUERY} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            f"{OPERATOR_KEY}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            "\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:7])
        sock.sendall(body[7:])
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 403 "), received
    assert b'"code":"client.not_a_department"' in received


def test_read_body_turns_its_own_deadline_into_408_and_lets_other_cancels_through() -> None:
    """``RequestLimits.read_body`` (the broker's lookups): the cohort's timer cancelling a
    wait for body bytes becomes 408 ``body_timeout``; anybody else's cancellation (a
    server shutting down) stays a cancellation; a whole body is returned joined."""
    import asyncio

    from exchange.errors import ExchangeError
    from exchange.limits import RequestLimits

    limits = RequestLimits(None, max_body=SMALL, body_timeout=0.05)

    async def never() -> dict[str, object]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def over_cap() -> Exception:
        return ValueError("over the route's cap")

    async def scenario() -> None:
        with pytest.raises(ExchangeError) as refused:
            await limits.read_body(never, 1000, over_cap)
        assert (refused.value.status_code, refused.value.code) == (408, "body_timeout")

        reader = asyncio.ensure_future(limits.read_body(never, 1000, over_cap))
        await asyncio.sleep(0)  # let it start waiting
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader

        parts = iter([b'{"keys"', b': ["1"]}'])

        async def two() -> dict[str, object]:
            chunk = next(parts)
            return {"type": "http.request", "body": chunk, "more_body": chunk != b': ["1"]}'}

        assert await limits.read_body(two, 1000, over_cap) == b'{"keys": ["1"]}'
        parts = iter([b"x" * 600, b"x" * 600])
        with pytest.raises(ValueError, match="cap"):
            await limits.read_body(two, 1000, over_cap)

    asyncio.run(scenario())
