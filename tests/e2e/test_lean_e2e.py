"""The broker's lean path over real HTTP: lookups and verifications whose body arrives whole
are answered without ASGI messages, and answer exactly as the ordinary path does (the same
records, headers, error model and audit entries)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from tests.e2e.conftest import PATIENT_UPSTREAM, Exchange
from tests.e2e.harness import OPERATOR, apply, key_of, topic_code

from exchange.broker.router import ExchangeDispatch
from exchange.departments.city import City

# The rules under test, not the fault budgets (tests/e2e/conftest.py).
UPSTREAM = PATIENT_UPSTREAM

pytestmark = pytest.mark.e2e

CITY = City(2020, 2_000, 500)
HUKOU = "household-registration"


def _dispatch(ex: Exchange) -> ExchangeDispatch:
    found: ExchangeDispatch = ex.app.front.exchange
    return found


def _raw(ex: Exchange, path: str, body: bytes, headers: dict[str, str], *, split: bool) -> Any:
    """POST over a socket of its own: the body whole with the head, or (``split``) its
    second half sent after a pause, so the request starts before its body has arrived."""
    url = urlsplit(ex.url)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    request = head.encode() + body
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        if split:
            cut = len(request) - len(body) // 2
            sock.sendall(request[:cut])
            time.sleep(0.2)
            sock.sendall(request[cut:])
        else:
            sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            chunk = sock.recv(1 << 16)
            assert chunk, data
            data += chunk
    raw_head, _, payload = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    found = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, found, orjson.loads(payload)


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


def _audited(ex: Exchange, request_id: str) -> dict[str, Any]:
    page = ex.http.get(
        "/api/v1/audit/entries", params={"request_id": request_id}, headers=OPERATOR
    ).json()
    assert len(page["entries"]) == 1
    entry: dict[str, Any] = page["entries"][0]
    return entry


def test_lean_and_ordinary_paths_answer_alike(exchange: Exchange) -> None:
    code = topic_code(exchange.ctx, HUKOU)
    apply(exchange.http, "wjw", code, ["id_number", "name"])
    path = f"/api/v1/exchange/{code}/query"
    body = json.dumps({"keys": [CITY.id_number_of(5), CITY.id_number_of(6)]}).encode()
    headers = {**key_of("wjw"), "X-Request-Id": "caller-7", "Content-Type": "application/json"}
    served = _dispatch(exchange).lean_served

    lean = _raw(exchange, path, body, headers, split=False)
    assert _dispatch(exchange).lean_served == served + 1
    ordinary = _raw(exchange, path, body, headers, split=True)
    assert _dispatch(exchange).lean_served == served + 1  # the split body went the ASGI way

    for status, found, answer in (lean, ordinary):
        assert status == 200
        assert found["content-type"] == "application/json"
        assert found["x-request-id"] == answer["request_id"]
        assert found["x-correlation-id"] == "caller-7"
        assert [r["id_number"] for r in answer["records"]] == [
            CITY.id_number_of(5),
            CITY.id_number_of(6),
        ]
        assert all(set(r) == {"id_number", "name"} for r in answer["records"])
        entry = _audited(exchange, answer["request_id"])
        assert (entry["consumer"], entry["outcome"], entry["records"]) == ("wjw", "ok", 2)
        assert entry["correlation_id"] == "caller-7"
    assert lean[2]["request_id"] != ordinary[2]["request_id"]
    assert lean[2]["records"] == ordinary[2]["records"]


def test_lean_errors_keep_the_one_model_and_are_audited(exchange: Exchange) -> None:
    code = topic_code(exchange.ctx, HUKOU)
    path = f"/api/v1/exchange/{code}/query"
    served = _dispatch(exchange).lean_served
    body = json.dumps({"keys": [CITY.id_number_of(1)]}).encode()

    status, found, answer = _raw(
        exchange, path, body, {"Authorization": "Bearer exk_nobody"}, split=False
    )
    assert status == 401
    assert answer["error"]["code"] == "client.bad_key"
    assert answer["error"]["request_id"] == found["x-request-id"]

    # No grant: refused, named, audited.
    status, found, answer = _raw(exchange, path, body, key_of("czj"), split=False)
    assert status == 403
    assert answer["error"]["code"] == "client.no_grant"
    assert _audited(exchange, found["x-request-id"])["outcome"] == "client.no_grant"

    status, _, answer = _raw(exchange, path, b"{not json", key_of("czj"), split=False)
    assert status == 400
    assert answer["error"]["code"] == "client.bad_input"
    assert _dispatch(exchange).lean_served == served + 3


def test_verification_is_served_lean(exchange: Exchange) -> None:
    code = topic_code(exchange.ctx, HUKOU)
    person = CITY.person(9)
    served = _dispatch(exchange).lean_served
    body = json.dumps(
        {"key": person.id_number, "claims": {"name": person.name}}, ensure_ascii=False
    ).encode()
    status, found, answer = _raw(
        exchange, f"/api/v1/exchange/{code}/verify", body, key_of("icbc"), split=False
    )
    assert status == 200, answer
    assert answer["outcomes"] == {"name": "match"}
    assert _dispatch(exchange).lean_served == served + 1
    entry = _audited(exchange, found["x-request-id"])
    assert entry["kind"] == "verify"
    assert entry["verdicts"] == {"name": {"match": 1}}
