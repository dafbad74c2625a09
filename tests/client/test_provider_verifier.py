"""The provider's side of the exchange's signature, as the SDK offers it: a pure verifier
and an ASGI middleware (the wire format is in ``exchange.provider_auth``)."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
from typing import Any

import httpx
import pytest

from exchange.client import (
    ExchangeSignatureMiddleware,
    ProviderSigner,
    ProviderVerifier,
    SignatureError,
)
from exchange.provider_auth import ReplayCache, derive_provider_secret, signed_message

SECRET = derive_provider_secret("master", "swj")
PATH = b"/departments/swj/topics/tax-paid/query"
BODY = b'{"keys":["91440101MA59XXXX1X"]}'
NOW = 1_764_000_000


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signed(
    method: str = "POST",
    path: bytes = PATH,
    body: bytes = BODY,
    rid: str = "rid-1",
    *,
    t: int = NOW,
    nonce: str = "00aa11bb22cc33dd",
    secret: str = SECRET,
    audience: str = "swj",
) -> dict[str, str]:
    sig = ProviderSigner(secret, audience).sign(method, path, body, rid, timestamp=t, nonce=nonce)
    return {"x-exchange-signature": sig, "x-request-id": rid}


def refused(verifier: ProviderVerifier, *args: Any) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        verifier.verify(*args)
    return info.value


def test_the_signature_is_the_documented_hmac() -> None:
    header = signed()["x-exchange-signature"]
    message = signed_message("swj", "POST", PATH, str(NOW), "00aa11bb22cc33dd", "rid-1", BODY)
    assert message.split(b"\n")[-1] == hashlib.sha256(BODY).hexdigest().encode()
    expected = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},n=00aa11bb22cc33dd,v1={expected}"


def test_a_signed_call_verifies_once() -> None:
    verifier = ProviderVerifier(SECRET, "swj", clock=Clock())
    call = verifier.verify("POST", PATH, BODY, signed())
    assert (call.request_id, call.timestamp, call.nonce) == ("rid-1", NOW, "00aa11bb22cc33dd")
    assert refused(verifier, "POST", PATH, BODY, signed()).code == "signature_replayed"
    # The same request id with a fresh nonce is a new call (a retry): accepted.
    verifier.verify("POST", PATH, BODY, signed(nonce="ffee"))


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("POST", PATH, b'{"keys":["other"]}', signed()),  # body altered
        ("POST", b"/departments/swj/topics/tax-registration/query", BODY, signed()),  # path
        ("GET", PATH, BODY, signed()),  # method
        ("POST", PATH, BODY, {**signed(), "x-request-id": "rid-2"}),  # request id
        ("POST", PATH, BODY, signed(audience="gaj", secret=derive_provider_secret("m", "gaj"))),
        ("POST", PATH, BODY, signed(secret=derive_provider_secret("other master", "swj"))),
        (
            "POST",
            PATH,
            BODY,
            {
                **signed(),
                "x-exchange-signature": signed()["x-exchange-signature"].replace(
                    f"t={NOW}", f"t={NOW + 1}"
                ),
            },
        ),
    ],
    ids=["body", "path", "method", "request-id", "audience", "master", "timestamp"],
)
def test_anything_altered_is_refused(
    method: str, path: bytes, body: bytes, headers: dict[str, str]
) -> None:
    error = refused(ProviderVerifier(SECRET, "swj", clock=Clock()), method, path, body, headers)
    assert (error.status, error.code) == (401, "signature_invalid")


def test_the_query_string_is_signed() -> None:
    export = b"/departments/swj/topics/tax-paid/export?offset=0&limit=10"
    verifier = ProviderVerifier(SECRET, "swj", clock=Clock())
    headers = signed("GET", export, b"")
    error = refused(verifier, "GET", export.replace(b"limit=10", b"limit=99"), b"", headers)
    assert error.code == "signature_invalid"
    verifier.verify("GET", export.decode(), b"", headers)


@pytest.mark.parametrize("skew", [-31, 31, -3600])
def test_outside_the_window_is_refused(skew: int) -> None:
    verifier = ProviderVerifier(SECRET, "swj", window=30, clock=Clock(NOW + skew))
    assert refused(verifier, "POST", PATH, BODY, signed()).code == "signature_expired"


def test_inside_the_window_is_accepted() -> None:
    ProviderVerifier(SECRET, "swj", window=30, clock=Clock(NOW + 29)).verify(
        "POST", PATH, BODY, signed()
    )


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "signature_required"),
        ({"authorization": "Bearer exk_mzj_abc"}, 403, "exchange_only"),
        ({"x-exchange-signature": "v1=abc", "x-request-id": "r"}, 401, "signature_malformed"),
        ({"x-exchange-signature": "t=x,n=1,v1=" + "0" * 64}, 401, "signature_malformed"),
        ({"x-exchange-signature": signed()["x-exchange-signature"]}, 401, "signature_invalid"),
    ],
    ids=["nothing", "api-key", "no-fields", "bad-time", "no-request-id"],
)
def test_unsigned_calls_are_refused_clearly(
    headers: dict[str, str], status: int, code: str
) -> None:
    error = refused(ProviderVerifier(SECRET, "swj", clock=Clock()), "POST", PATH, BODY, headers)
    assert (error.status, error.code) == (status, code)
    assert error.message


def test_the_replay_cache_forgets_only_what_the_window_refuses() -> None:
    cache = ReplayCache(window=30, max_entries=1000)
    assert cache.add("a", NOW, NOW)
    assert not cache.add("a", NOW, NOW + 30)  # still inside the window: still a replay
    assert cache.add("b", NOW + 31, NOW + 31)  # "a" is out of the window: forgotten
    assert len(cache) == 1


def test_a_full_replay_cache_refuses_old_calls_rather_than_forget_them() -> None:
    cache = ReplayCache(window=30, max_entries=2)
    assert cache.add("a", NOW, NOW)
    assert cache.add("b", NOW + 1, NOW + 1)
    assert cache.add("c", NOW + 2, NOW + 2)  # "a" evicted: calls of NOW are refused now
    assert cache.floor == NOW
    assert not cache.add("a", NOW, NOW + 2)  # the evicted nonce cannot come back
    assert not cache.add("z", NOW, NOW + 2)
    assert not cache.add("b", NOW + 1, NOW + 2)  # and "b" is still remembered


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    message = await receive()
    call = scope["state"]["exchange_call"]
    body = message["body"] + b"|" + call.request_id.encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.anyio
async def test_the_middleware_passes_signed_calls_and_refuses_the_rest() -> None:
    app = ExchangeSignatureMiddleware(_echo, secret=SECRET, audience="swj", prefix="/departments")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://swj.test") as client:
        ok = await client.post(PATH.decode(), content=BODY, headers=signed(t=_now()))
        assert ok.status_code == 200
        assert ok.content == BODY + b"|rid-1"
        again = await client.post(PATH.decode(), content=BODY, headers=signed(t=_now()))
        assert again.status_code == 401
        assert again.json()["error"]["code"] == "signature_replayed"
        assert again.json()["error"]["request_id"] == "rid-1"
        keyed = await client.post(
            PATH.decode(), content=BODY, headers={"Authorization": "Bearer exk_operator_x"}
        )
        assert keyed.status_code == 403
        assert set(keyed.json()) == {"error"}
        assert keyed.json()["error"]["code"] == "exchange_only"
        altered = await client.post(
            PATH.decode(), content=b'{"keys":[]}', headers=signed(t=_now(), nonce="77")
        )
        assert altered.json()["error"]["code"] == "signature_invalid"


def _now() -> int:
    import time

    return int(time.time())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_the_sdk_imports_no_server_framework() -> None:
    code = (
        "import sys, exchange.client\n"
        "bad = [m for m in ('fastapi', 'sqlalchemy', 'starlette') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
