"""The lean dispatches' shared answer scaffolding (:mod:`exchange.serving`): request ids,
JSON answers and error answers, as the broker's, the libraries' and the federation's lean
paths write them."""

from __future__ import annotations

import re

import orjson

from exchange.errors import ExchangeError
from exchange.serving import RequestIds, error_answer, json_answer


def test_request_ids_are_32_hex_characters_and_never_repeat() -> None:
    ids = RequestIds()
    made = [ids() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in made)
    assert len(set(made)) == len(made)
    # Each dispatch draws its own random prefix: two never hand out the same id.
    other = RequestIds()
    assert other()[:20] != made[0][:20]
    assert made[1] != other()


def test_a_json_answer_carries_its_length_request_id_and_correlation_id() -> None:
    status, headers, body = json_answer(200, b'{"a":1}', "rid1", "theirs")
    assert (status, body) == (200, b'{"a":1}')
    assert headers == [
        (b"content-type", b"application/json"),
        (b"content-length", b"7"),
        (b"x-request-id", b"rid1"),
        (b"x-correlation-id", b"theirs"),
    ]
    _, without, _ = json_answer(200, b"{}", "rid2", None)
    assert [name for name, _ in without] == [b"content-type", b"content-length", b"x-request-id"]


def test_an_error_answer_is_the_one_model_with_the_errors_own_headers() -> None:
    exc = ExchangeError(
        "slow down",
        code="client.quota_exceeded",
        status_code=429,
        detail={"limit": 5},
        headers={"Retry-After": "30"},
    )
    status, headers, body = error_answer("rid3", None, exc)
    assert status == 429
    assert orjson.loads(body) == {
        "error": {
            "code": "client.quota_exceeded",
            "message": "slow down",
            "request_id": "rid3",
            "detail": {"limit": 5},
        }
    }
    assert (b"content-length", b"%d" % len(body)) in headers
    assert (b"x-request-id", b"rid3") in headers
    assert (b"retry-after", b"30") in headers
    assert not any(name == b"x-correlation-id" for name, _ in headers)
