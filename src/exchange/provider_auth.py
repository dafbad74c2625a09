"""How the exchange proves itself to a provider: an HMAC-SHA256 signature on every call.

A department's API must answer the exchange and nobody else: a department key, the
operator key or no key at all must not open it, or anyone could skip grants, item
filtering and the audit. The operator issues each provider a credential when the unit is
registered (:func:`derive_provider_secret`: an HMAC of the exchange's master secret, so
the database stores nothing secret). The broker signs every call it makes to a provider
with that credential; the provider checks the signature, the time and that it has not
seen the call before.

Version 1 of the wire format. The broker sends::

    X-Request-Id: <the exchange's request id of the call>
    X-Exchange-Signature: t=<unix seconds>,n=<nonce>,v1=<hex HMAC-SHA256>

and the HMAC, keyed with the provider's credential (its UTF-8 bytes), is taken over::

    exchange-v1 \\n <provider code> \\n <METHOD> \\n <path?query as sent> \\n <t> \\n <n>
    \\n <request id> \\n <hex SHA-256 of the body>

(lines joined with ``\\n``, no spaces). The provider's code is the audience: a call signed
for one department does not verify at another. The nonce makes every provider call
unique: a retry after a refused connection and the shared call of coalesced lookups reuse
a request id, so the replay cache remembers nonces, not request ids.

This module is stdlib-only: the broker, the mock departments and the SDK
(``exchange.client``) all use it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_WINDOW",
    "SIGNATURE_HEADER",
    "ProviderSigner",
    "ProviderVerifier",
    "ReplayCache",
    "SignatureError",
    "SignedCall",
    "derive_provider_secret",
    "parse_signature",
    "signed_message",
]

SIGNATURE_HEADER = "X-Exchange-Signature"
REQUEST_ID_HEADER = "X-Request-Id"
VERSION = b"exchange-v1"
#: seconds a signed call stays acceptable either side of the provider's clock
DEFAULT_WINDOW = 30
#: nonces remembered per provider: 30 s of ~8,700 provider calls a second
DEFAULT_MAX_SEEN = 262_144
_EMPTY_DIGEST = hashlib.sha256(b"").hexdigest().encode()


def derive_provider_secret(master: str, code: str) -> str:
    """The credential of provider ``code``, derived from the exchange's master secret.

    Derived rather than stored: the operator can hand it out again at any time, and a copy
    of the database holds nothing that signs calls. Rotating the master secret rotates
    every provider's credential at once.
    """
    mac = hmac.digest(master.encode(), b"provider-credential:" + code.encode(), "sha256")
    return f"exps_{code}_{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def signed_message(
    audience: str,
    method: str,
    target: str | bytes,
    timestamp: str,
    nonce: str,
    request_id: str,
    body: bytes,
) -> bytes:
    """The bytes the signature covers (see the module docstring)."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    digest = hashlib.sha256(body).hexdigest().encode() if body else _EMPTY_DIGEST
    return b"\n".join(
        (
            VERSION,
            audience.encode(),
            method.upper().encode(),
            target,
            timestamp.encode(),
            nonce.encode(),
            request_id.encode("latin-1"),
            digest,
        )
    )


class ProviderSigner:
    """The broker's side for one provider: the ``X-Exchange-Signature`` value of a call.

    The HMAC state after the constant prefix (version and audience) is computed once and
    copied per call. Nonces are a random per-signer prefix and a counter: unique is all
    they must be (the HMAC covers them), and a counter costs less than a system call.
    """

    __slots__ = ("_count", "_mac", "_nonce_prefix", "audience")

    def __init__(self, secret: str, audience: str) -> None:
        self.audience = audience
        self._mac = hmac.new(secret.encode(), VERSION + b"\n" + audience.encode() + b"\n", "sha256")
        self._nonce_prefix = os.urandom(6).hex()
        self._count = itertools.count(1)

    def mac(
        self, method: bytes, target: bytes, t: bytes, n: bytes, request_id: bytes, body: bytes
    ) -> str:
        """The hex HMAC of one call's fields (see the module docstring)."""
        digest = hashlib.sha256(body).hexdigest().encode() if body else _EMPTY_DIGEST
        mac = self._mac.copy()
        mac.update(b"\n".join((method, target, t, n, request_id, digest)))
        return mac.hexdigest()

    def sign(
        self,
        method: str,
        target: bytes,
        body: bytes,
        request_id: str,
        *,
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> str:
        t = str(int(time.time()) if timestamp is None else timestamp)
        n = f"{self._nonce_prefix}{next(self._count):x}" if nonce is None else nonce
        mac = self.mac(
            method.encode(), target, t.encode(), n.encode(), request_id.encode("latin-1"), body
        )
        return f"t={t},n={n},v1={mac}"


class SignatureError(Exception):
    """A call that did not come from the exchange, or not as signed.

    ``status`` is 401 (no valid signature) or 403 (an API key where only the exchange's
    signature opens the API); ``code`` is stable and machine-readable.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class SignedCall:
    """A verified call: who the exchange says it serves is in the request id."""

    request_id: str
    timestamp: int
    nonce: str


class ReplayCache:
    """Nonces seen within the time window, at most ``max_entries`` of them.

    Entries leave once their timestamp is outside the window (the time check refuses
    those calls anyway). When the cache is full, the oldest entry is dropped and calls
    signed at or before its second are refused from then on (``floor``): a full cache
    never lets a replay through, it refuses old calls instead.
    """

    __slots__ = ("_order", "_seen", "floor", "max_entries", "window")

    def __init__(self, window: float = DEFAULT_WINDOW, max_entries: int = DEFAULT_MAX_SEEN) -> None:
        self.window = window
        self.max_entries = max_entries
        self._seen: set[str] = set()
        self._order: deque[tuple[int, str]] = deque()
        self.floor = -1

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, nonce: str, timestamp: int, now: float) -> bool:
        """Remember ``nonce``; False when it was seen already or is at or below the floor."""
        order, seen = self._order, self._seen
        horizon = now - self.window
        while order and order[0][0] < horizon:
            seen.discard(order.popleft()[1])
        if timestamp <= self.floor or nonce in seen:
            return False
        while len(seen) >= self.max_entries:
            old_t, old_n = order.popleft()
            seen.discard(old_n)
            self.floor = max(self.floor, old_t)
            if timestamp <= self.floor:
                return False
        seen.add(nonce)
        order.append((timestamp, nonce))
        return True


def parse_signature(value: str) -> tuple[str, str, str]:
    """(t, n, v1) of an ``X-Exchange-Signature`` value; :class:`SignatureError`
    ``signature_malformed`` when it is not one."""
    try:
        return _signature_fields(value)
    except (KeyError, ValueError):
        raise SignatureError(
            401,
            "signature_malformed",
            f"{SIGNATURE_HEADER} must read t=<unix seconds>,n=<nonce>,v1=<64 hex digits>",
        ) from None


def _signature_fields(value: str) -> tuple[str, str, str]:
    parts = value.split(",")
    if (
        len(parts) == 3
        and parts[0].startswith("t=")
        and parts[1].startswith("n=")
        and parts[2].startswith("v1=")
    ):
        t, n, v1 = parts[0][2:], parts[1][2:], parts[2][3:]  # the broker's order
    else:
        fields: dict[str, str] = {}
        for part in parts:
            name, sep, content = part.strip().partition("=")
            if not sep:
                raise ValueError(part)
            fields[name] = content
        t, n, v1 = fields["t"], fields["n"], fields["v1"]
    if not (t.isdigit() and len(t) < 16 and 0 < len(n) <= 64 and n.isascii() and len(v1) == 64):
        raise ValueError(value)
    return t, n, v1


class ProviderVerifier:
    """The provider's side: accept a call only if the exchange signed it, for this
    provider, recently, once, and as it arrived.

    ``secret`` is the credential the operator handed to the provider, ``audience`` the
    provider's code. Use :meth:`verify` with the request's method, path (with its query
    string, as received), body and headers; it returns the :class:`SignedCall` or raises
    :class:`SignatureError`. One verifier per provider process: it holds the replay cache.
    """

    def __init__(
        self,
        secret: str,
        audience: str,
        *,
        window: float = DEFAULT_WINDOW,
        max_seen: int = DEFAULT_MAX_SEEN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.audience = audience
        self.window = window
        self._signer = ProviderSigner(secret, audience)
        self._clock = clock
        self.replays = ReplayCache(window, max_seen)

    def verify(
        self,
        method: str,
        target: str | bytes,
        body: bytes,
        headers: Mapping[str, str],
    ) -> SignedCall:
        """Check one call. ``headers`` is looked up by lower-case name (``x-exchange-
        signature``, ``x-request-id``, ``authorization``); pass e.g. Starlette's
        ``request.headers`` or a dict with lower-case keys."""
        return self.verify_values(
            method,
            target,
            body,
            signature=headers.get("x-exchange-signature"),
            request_id=headers.get("x-request-id"),
            authorization=headers.get("authorization"),
        )

    def verify_values(
        self,
        method: str,
        target: str | bytes,
        body: bytes,
        *,
        signature: str | None,
        request_id: str | None,
        authorization: str | None = None,
    ) -> SignedCall:
        """:meth:`verify` with the three header values given one by one."""
        if not signature:
            if authorization:
                raise SignatureError(
                    403,
                    "exchange_only",
                    "this API answers only the exchange's signed calls; an API key does not "
                    "open it: call through the broker (POST /api/v1/exchange/{code}/query)",
                )
            raise SignatureError(
                401,
                "signature_required",
                f"missing {SIGNATURE_HEADER}: this API answers only calls the exchange signed",
            )
        t, nonce, given = parse_signature(signature)
        if not request_id:
            raise SignatureError(401, "signature_invalid", "a signed call carries its X-Request-Id")
        if isinstance(target, str):
            target = target.encode("latin-1")
        expected = self._signer.mac(
            method.upper().encode(),
            target,
            t.encode(),
            nonce.encode(),
            request_id.encode("latin-1", "replace"),
            body,
        )
        if not hmac.compare_digest(expected, given):
            raise SignatureError(
                401,
                "signature_invalid",
                "the signature does not match this call (method, path, body, time, nonce, "
                "request id and provider are all signed)",
            )
        now = self._clock()
        timestamp = int(t)
        if abs(now - timestamp) > self.window:
            raise SignatureError(
                401,
                "signature_expired",
                f"the call was signed {now - timestamp:+.0f} s from now; accepted within "
                f"±{self.window:g} s",
            )
        if not self.replays.add(nonce, timestamp, now):
            raise SignatureError(
                401, "signature_replayed", "this signed call was received before: not again"
            )
        return SignedCall(request_id, timestamp, nonce)
