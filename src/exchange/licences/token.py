"""The verification code (核验码), the signed status list, and offline verification.

A licence's **verification code** is what its QR code carries: the licence's claims and the
platform's Ed25519 signature over them::

    LV1.<base64url(claims as a JSON array)>.<base64url(signature, 64 bytes)>

so whoever holds a licence's number and code can check it with nothing but the platform's
public key: the signature proves the claims are the platform's (an altered validity, holder
or number fails), the number must be the one the claims name, and ``valid_until`` is compared
with the platform's day. The licence's items are not in the code (a marriage certificate's
spouse has no place in every QR code); their SHA-256 digest is, so a presented document can
be checked against it too.

Revocation cannot be seen in a code issued before it: the platform publishes a signed
**status list** (every revoked number with reason and time, the platform clock's offset, and
how long a copy may be relied on), which a verifier fetches when it can and keeps a copy of.
Verification against a copy older than its ``max_age`` still answers, and says it is stale.

This module imports only the standard library, ``cryptography``, ``PyNaCl`` and ``orjson``:
the SDK's offline verifier (:mod:`exchange.client`) uses it as it is. Codes are verified
with libsodium (PyNaCl), which checks an Ed25519 signature in about half the CPU time of
OpenSSL's (``bench/results/licences.md``); keys are still read and signatures made with
``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from exchange.days import BEIJING

__all__ = [
    "CODE_PREFIX",
    "REASONS",
    "Claims",
    "LicenceVerifier",
    "StatusList",
    "Verification",
    "content_digest",
    "key_id_of",
    "public_key_from_pem",
    "status_body",
]

CODE_PREFIX = "LV1"
#: Signed bytes are prefixed by a context string, so a licence signature can never be
#: replayed as a status-list signature or anything else the key signs.
CODE_CONTEXT = b"exchange licence v1\n"
STATUS_CONTEXT = b"exchange licence status v1\n"

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


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def content_digest(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a licence's items in canonical form (sorted keys, UTF-8)."""
    return hashlib.sha256(orjson.dumps(dict(content), option=orjson.OPT_SORT_KEYS)).hexdigest()


def public_key_from_pem(pem: bytes | str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def key_id_of(key: Ed25519PublicKey) -> str:
    """Fingerprint of a public key (sha256 of its raw bytes, 16 hex), as the audit's."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Claims:
    """What a licence's code asserts, signed by the platform."""

    number: str
    type_code: str
    type_name: str
    holder_kind: str
    holder_id: str
    holder_name: str
    issuer: str
    issuer_name: str
    issued_on: dt.date
    valid_until: dt.date | None
    digest: str
    key_id: str

    def payload(self) -> bytes:
        # A JSON array in a fixed order: half the size of an object, and one canonical form.
        return orjson.dumps(
            [
                1,
                self.number,
                self.type_code,
                self.type_name,
                self.holder_kind,
                self.holder_id,
                self.holder_name,
                self.issuer,
                self.issuer_name,
                self.issued_on.isoformat(),
                self.valid_until.isoformat() if self.valid_until else None,
                self.digest,
                self.key_id,
            ]
        )

    @classmethod
    def from_payload(cls, raw: bytes) -> Claims:
        """Raises ValueError (or TypeError) unless ``raw`` is a version-1 payload."""
        v = orjson.loads(raw)
        if not isinstance(v, list) or len(v) != 13 or v[0] != 1:
            raise ValueError("not a version-1 claims payload")
        if not all(isinstance(x, str) for x in v[1:10] + v[11:]):
            raise ValueError("claims of the wrong type")
        return cls(
            number=v[1],
            type_code=v[2],
            type_name=v[3],
            holder_kind=v[4],
            holder_id=v[5],
            holder_name=v[6],
            issuer=v[7],
            issuer_name=v[8],
            issued_on=dt.date.fromisoformat(v[9]),
            valid_until=dt.date.fromisoformat(v[10]) if v[10] is not None else None,
            digest=v[11],
            key_id=v[12],
        )

    def signed_bytes(self) -> bytes:
        return CODE_CONTEXT + self.payload()

    def code(self, signature: bytes) -> str:
        return f"{CODE_PREFIX}.{_b64(self.payload())}.{_b64(signature)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "type_code": self.type_code,
            "type_name": self.type_name,
            "holder_kind": self.holder_kind,
            "holder_id": self.holder_id,
            "holder_name": self.holder_name,
            "issuer": self.issuer,
            "issuer_name": self.issuer_name,
            "issued_on": self.issued_on.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "digest": self.digest,
            "key_id": self.key_id,
        }


def status_body(
    *,
    key_id: str,
    issued_at: dt.datetime,
    clock_offset_s: float,
    max_age_s: int,
    revoked: Iterable[tuple[str, str, dt.datetime]],
) -> bytes:
    """The canonical bytes of a status list (what its signature covers)."""
    return orjson.dumps(
        {
            "v": 1,
            "key_id": key_id,
            "issued_at": issued_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
            "clock_offset_s": round(clock_offset_s, 3),
            "max_age_s": max_age_s,
            "revoked": {
                number: [reason, at.astimezone(dt.UTC).isoformat(timespec="seconds")]
                for number, reason, at in sorted(revoked)
            },
        },
        option=orjson.OPT_SORT_KEYS,
    )


@dataclass(frozen=True)
class StatusList:
    """A verified copy of the platform's status list."""

    key_id: str
    issued_at: dt.datetime
    clock_offset_s: float
    max_age_s: int
    revoked: dict[str, tuple[str, str]]
    #: the document as published (``{"body": …, "signature": …}``), to keep a copy of
    document: dict[str, str] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, document: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]) -> StatusList:
        """Check the signature and read the list; ValueError if either fails."""
        body, signature = document.get("body"), document.get("signature")
        if not isinstance(body, str) or not isinstance(signature, str):
            raise ValueError("a status list is {'body': str, 'signature': hex}")
        data = orjson.loads(body)
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("not a version-1 status list")
        key = keys.get(str(data.get("key_id")))
        if key is None:
            raise ValueError("the status list is signed with an unknown key")
        try:
            key.verify(bytes.fromhex(signature), STATUS_CONTEXT + body.encode())
        except (InvalidSignature, ValueError):
            raise ValueError("the status list's signature does not verify") from None
        revoked = {str(n): (str(r[0]), str(r[1])) for n, r in dict(data["revoked"]).items()}
        return cls(
            key_id=str(data["key_id"]),
            issued_at=dt.datetime.fromisoformat(str(data["issued_at"])),
            clock_offset_s=float(data["clock_offset_s"]),
            max_age_s=int(data["max_age_s"]),
            revoked=revoked,
            document={"body": body, "signature": signature},
        )

    def platform_today(self, now: float | None = None) -> dt.date:
        """The platform's day now: local time plus the platform clock's offset (Beijing)."""
        t = (time.time() if now is None else now) + self.clock_offset_s
        return dt.datetime.fromtimestamp(t, BEIJING).date()

    def stale(self, now: float | None = None) -> bool:
        """Older than it may be relied on: fetch a new one when you can."""
        t = time.time() if now is None else now
        # issued_at is platform time; the platform clock runs clock_offset_s ahead of ours.
        return t - (self.issued_at.timestamp() - self.clock_offset_s) > self.max_age_s


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
            payload, signature = _unb64(parts[1]), _unb64(parts[2])
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
