"""The portal's gateway over real HTTP on loopback: routing by path, brokers in turn, a
refused broker skipped, bodies and headers passed both ways, streamed answers streamed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import orjson
import pytest
from tests.e2e.harness import free_port, serve

from exchange.web.gateway import Gateway, PartUrls

pytestmark = pytest.mark.e2e

BIG = 3 * 1024 * 1024  # an "export" several of the gateway's 64 KiB chunks long


def upstream(name: str) -> Any:
    """An ASGI app that says who it is and what it got; ``/…/export`` streams ``BIG`` bytes."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"].endswith("/export"):
            headers = [(b"content-type", b"application/x-ndjson")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for _ in range(BIG // 65536):
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        seen = {
            "part": name,
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "body": body.decode(),
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        }
        out = orjson.dumps(seen)
        headers = [(b"content-type", b"application/json"), (b"x-served-by", name.encode())]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    return app


async def portal_page(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].removeprefix("lifespan.")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"the portal"})


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens: refused
    with ExitStack() as stack:
        b1 = stack.enter_context(serve(upstream("broker-1")))
        b2 = stack.enter_context(serve(upstream("broker-2")))
        catalog = stack.enter_context(serve(upstream("catalog")))
        urls = PartUrls(
            {"broker": [b1, nobody, b2], "catalog": [catalog], "authz": [nobody], "departments": []}
        )
        yield stack.enter_context(serve(Gateway(portal_page, urls)))


def test_paths_go_to_their_part_with_method_query_body_and_headers(gateway: str) -> None:
    resp = httpx.post(
        f"{gateway}/api/v1/catalog/topics?q=%E6%88%B7%E7%B1%8D&limit=5",
        json={"a": 1},
        headers={"Authorization": "Bearer k", "X-Request-Id": "rid-1"},
    )
    assert resp.status_code == 201
    seen = resp.json()
    assert seen["part"] == "catalog"
    assert seen["method"] == "POST"
    assert seen["path"] == "/api/v1/catalog/topics"
    assert seen["query"] == "q=%E6%88%B7%E7%B1%8D&limit=5"
    assert orjson.loads(seen["body"]) == {"a": 1}
    assert seen["headers"]["authorization"] == "Bearer k"
    assert seen["headers"]["x-request-id"] == "rid-1"
    assert resp.headers["x-served-by"] == "catalog"
    # The portal's own paths stay with the portal.
    assert httpx.get(f"{gateway}/").text == "the portal"


def test_the_target_is_forwarded_byte_for_byte(gateway: str) -> None:
    # The broker signs the path and query of its calls to a department: a gateway that
    # requoted them (%2C → ",") broke every signed export with fields= under --workers.
    target = "/api/v1/catalog/topics?fields=name%2Ccredit_code&q=a%2Fb&x=%7E"
    resp = httpx.get(f"{gateway}{target}")
    assert resp.status_code == 201
    assert resp.json()["query"] == "fields=name%2Ccredit_code&q=a%2Fb&x=%7E"


def test_brokers_take_calls_in_turn_and_a_refused_one_is_skipped(gateway: str) -> None:
    with httpx.Client(base_url=gateway) as client:
        served = [
            client.post("/api/v1/exchange/101001001/000001/query", json={}).json()["part"]
            for _ in range(12)
        ]
    # Three URLs in turn, the dead one's turns taken by the next: never an error.
    assert set(served) == {"broker-1", "broker-2"}
    assert served.count("broker-2") == 8
    assert served.count("broker-1") == 4


def test_a_streamed_answer_arrives_whole(gateway: str) -> None:
    with httpx.stream("GET", f"{gateway}/api/v1/exchange/101001001/000001/export") as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/x-ndjson"
        size = sum(len(chunk) for chunk in resp.iter_bytes())
    assert size == BIG // 65536 * 65536


def test_a_part_nobody_answers_for_is_a_503_in_the_error_shape(gateway: str) -> None:
    resp = httpx.get(f"{gateway}/api/v1/grants", headers={"X-Request-Id": "rid-2"})
    assert resp.status_code == 503
    error = resp.json()["error"]
    assert error["code"] == "gateway.unavailable"
    assert error["request_id"] == resp.headers["x-request-id"]
    assert error["detail"] == {"side": "gateway", "part": "authz"}


def test_a_part_not_configured_stays_with_the_app(gateway: str) -> None:
    resp = httpx.get(f"{gateway}/departments/gaj")
    assert resp.status_code == 200
    assert resp.text == "the portal"
