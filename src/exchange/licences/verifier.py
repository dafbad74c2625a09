"""Offline verification of a licence: its number and verification code checked against the
platform's public key(s) and, when the verifier holds one, the signed status list.

Imports only the standard library, ``cryptography``, ``PyNaCl`` and ``orjson``, as
:mod:`exchange.licences.token` does: the SDK's offline verifier (:mod:`exchange.client`)
uses it as it is. Codes are verified with libsodium (PyNaCl), which checks an Ed25519
signature in about half the CPU time of OpenSSL's (``bench/results/licences.md``); keys are
still read with ``cryptography``.
"""

from __future__ import annotations

import binascii
import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from exchange.days import BEIJING
from exchange.licences.token import (
    CODE_CONTEXT,
    CODE_PREFIX,
    Claims,
    StatusList,
    content_digest,
    key_id_of,
    public_key_from_pem,
    unb64,
)

__all__ = ["REASONS", "LicenceVerifier", "Verification"]

#: Every verification outcome, in the order they are checked.
REASONS: dict[str, str] = {
    "valid": "the licence is the platform's, unaltered, not revoked and within its validity",
    "malformed": "the code is not a verification code (truncated, mistyped, another format)",
    "unknown_key": "the code was signed with a key the verifier does not know",
    "altered": "the signature does not match the code's content: it was altered",
    "number_mismatch": "the code belongs to another licence number",
    "content_altered": "the presented items differ from the ones the licence was issued with",
    "revoked": "the issuing department revoked the licence (per the status list)",
    "expired": "the licence's validity ended before the platform's today",
}


@dataclass(frozen=True, slots=True)
class Verification:
    """The answer of one verification; ``reason`` is a key of :data:`REASONS`."""

    ok: bool
    reason: str
    claims: Claims | None = None
    #: revocation reason and time (status list), for a revoked licence
    revoked: tuple[str, str] | None = None
    #: when the status list consulted was issued (None: no list, revocation unchecked)
    status_as_of: dt.datetime | None = None
    #: the status list was past its max age
    stale: bool = False

    @property
    def message(self) -> str:
        return REASONS[self.reason]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": self.reason,
            "message": self.message,
            "licence": self.claims.as_dict() if self.claims else None,
            "revocation": (
                {"reason": self.revoked[0], "at": self.revoked[1]} if self.revoked else None
            ),
            "status_as_of": self.status_as_of.isoformat() if self.status_as_of else None,
            "stale": self.stale,
        }


class LicenceVerifier:
    """Verifies licences offline: the platform's public key(s) and, optionally, a status list.

    ``keys`` maps key ids to public keys (more than one while a key is being rotated).
    Without a status list, revocation cannot be checked (``status_as_of`` is None) and the
    platform's day is taken as the local day.

    A code whose signature verified is remembered (up to ``memo`` codes, by the exact code
    string): verifying it again skips the Ed25519 check, nearly all of the cost, while the
    number, the items, revocation and expiry are still checked every time. A counter or a
    department's system sees the same licences again and again; ``memo=0`` turns it off.
    """

    def __init__(
        self,
        keys: Iterable[Ed25519PublicKey],
        status: StatusList | None = None,
        *,
        memo: int = 100_000,
    ) -> None:
        self.keys = {key_id_of(k): k for k in keys}
        self._raw = {
            kid: k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            for kid, k in self.keys.items()
        }
        self.status = status
        self.memo = memo
        self._verified: dict[str, Claims] = {}
        # The platform's day and the list's staleness, worked out once per status list
        # and day rather than per verification (two datetimes built per call, where the
        # Python around the signature check is what a verification can still save).
        self._clock_of: StatusList | bool | None = False
        self._day: dt.date = dt.date.min
        self._day_ends = 0.0
        self._stale_at = 0.0

    @classmethod
    def from_pem(cls, *pems: bytes | str) -> LicenceVerifier:
        return cls([public_key_from_pem(p) for p in pems])

    def use_status(self, document: Mapping[str, Any]) -> StatusList:
        """Check and keep a status list (as published, or a cached copy of it)."""
        self.status = StatusList.parse(document, self.keys)
        return self.status

    def verify(
        self,
        number: str,
        code: str,
        *,
        content: Mapping[str, Any] | None = None,
        today: dt.date | None = None,
    ) -> Verification:
        """Check a licence's number and verification code (and its items, if given).

        ``today`` overrides the platform's day (default: from the status list's clock
        offset, else the local day).
        """
        claims = self._verified.get(code)
        if claims is None:
            found = self._check_signature(code)
            if isinstance(found, Verification):
                return found
            claims = found
            if self.memo:
                if len(self._verified) >= self.memo:
                    self._verified.clear()  # a bound, not an LRU: refilling is cheap enough
                self._verified[code] = claims
        if claims.number != number:
            return Verification(False, "number_mismatch", claims)
        status = self.status
        now = time.time()
        if status is not self._clock_of or now >= self._day_ends:
            self._set_clock(status, now)
        as_of = status.issued_at if status is not None else None
        stale = status is not None and now > self._stale_at
        if content is not None and content_digest(content) != claims.digest:
            return Verification(False, "content_altered", claims, None, as_of, stale)
        if status is not None:
            revoked = status.revoked.get(number)
            if revoked is not None:
                return Verification(False, "revoked", claims, revoked, as_of, stale)
        if claims.valid_until is not None:
            day = today or self._day
            if day > claims.valid_until:
                return Verification(False, "expired", claims, None, as_of, stale)
        return Verification(True, "valid", claims, None, as_of, stale)

    def _set_clock(self, status: StatusList | None, now: float) -> None:
        """The platform's day at ``now`` (from the status list's clock offset, else the
        local day in Beijing), when that day ends (local epoch), and when the list goes
        stale (see :meth:`StatusList.stale`)."""
        offset = status.clock_offset_s if status is not None else 0.0
        day = dt.datetime.fromtimestamp(now + offset, BEIJING).date()
        midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), BEIJING)
        self._day, self._day_ends = day, midnight.timestamp() - offset
        if status is not None:
            self._stale_at = status.issued_at.timestamp() - offset + status.max_age_s
        self._clock_of = status

    def _check_signature(self, code: str) -> Claims | Verification:
        """The code's claims if the platform signed them, else the failed verification."""
        parts = code.split(".")
        if len(parts) != 3 or parts[0] != CODE_PREFIX:
            return Verification(False, "malformed")
        try:
            payload, signature = unb64(parts[1]), unb64(parts[2])
            claims = Claims.from_payload(payload)
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
            return Verification(False, "malformed")
        key = self._raw.get(claims.key_id)
        if key is None:
            return Verification(False, "unknown_key", claims)
        if len(signature) != 64:
            return Verification(False, "altered")
        try:
            # libsodium takes the signature and the message as one buffer (NaCl's form).
            crypto_sign_open(signature + CODE_CONTEXT + payload, key)
        except BadSignatureError:
            return Verification(False, "altered")
        return claims
