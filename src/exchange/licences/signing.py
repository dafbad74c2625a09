"""The platform's licence signing key: Ed25519, kept in a file outside the database.

A key of its own, not the audit's: licences are verified by anybody for years, the audit
key only by the operator's auditors, and either may have to be rotated without the other.
It is kept the way the audit key is (:mod:`exchange.audit.keys`): generated on first start,
mode 0600, beside the operator key unless ``EXCHANGE_LICENCE_KEY_FILE`` names a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exchange.audit import keys
from exchange.audit.keys import Signer
from exchange.config import Settings
from exchange.licences.token import STATUS_CONTEXT, Claims, key_id_of
from exchange.security import state_dir


def licence_key_path(settings: Settings) -> Path:
    return settings.licence_key_file or state_dir(settings) / "licence-signing.key"


@dataclass(frozen=True)
class LicenceSigner:
    signer: Signer
    key_id: str

    @classmethod
    def of(cls, settings: Settings) -> LicenceSigner:
        signer, _ = keys.load_or_create(licence_key_path(settings))
        return cls(signer, key_id_of(signer.private.public_key()))

    def code(self, claims: Claims) -> str:
        """The verification code of ``claims`` (whose ``key_id`` must be this key's)."""
        if claims.key_id != self.key_id:
            raise ValueError("claims name another key")
        return claims.code(self.signer.private.sign(claims.signed_bytes()))

    def sign_status(self, body: bytes) -> str:
        return self.signer.private.sign(STATUS_CONTEXT + body).hex()

    def public_pem(self) -> str:
        return self.signer.verifier.pem()
