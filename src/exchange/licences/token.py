"""The two documents the platform signs for offline checks: the verification code (核验码)
and the status list (:mod:`exchange.licences.verifier` checks them).

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

This module imports only the standard library, ``cryptography`` and ``orjson``: the SDK's
offline verifier (:mod:`exchange.client`) uses it as it is.
"""

from __future__ import annotations

import base64
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

from exchange.days import BEIJING

__all__ = [
    "CODE_CONTEXT",
    "CODE_PREFIX",
    "STATUS_CONTEXT",
    "Claims",
    "StatusList",
    "content_digest",
    "key_id_of",
    "public_key_from_pem",
    "status_body",
    "unb64",
]

CODE_PREFIX = "LV1"
#: Signed bytes are prefixed by a context string, so a licence signature can never be
#: replayed as a status-list signature or anything else the key signs.
CODE_CONTEXT = b"exchange licence v1\n"
STATUS_CONTEXT = b"exchange licence status v1\n"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
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
