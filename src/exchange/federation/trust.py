"""Trust between the two platforms: the provider-signature protocol of
:mod:`exchange.provider_auth`, used in both directions.

Each operator issues the other platform one credential, once (:func:`issued_credential`,
derived from the issuer's provider master secret, so neither database stores it). A
platform signs every call to its peer with the credential the peer issued it; the peer
re-derives that credential to verify, with the usual time window and replay cache. The
answer comes back signed with the same credential (method ``ANSWER``, audience the caller),
so the caller knows the peer answered, and answered this call: both ways authenticated.
"""

from __future__ import annotations

import hmac

from exchange.provider_auth import (
    SIGNATURE_HEADER,
    ProviderSigner,
    ProviderVerifier,
    SignatureError,
    derive_provider_secret,
    parse_signature,
)

__all__ = ["ANSWER", "AnswerVerifier", "issued_credential", "signer_for", "verifier_for"]

#: the "method" an answer's signature covers (a request's is its HTTP method)
ANSWER = "ANSWER"
_ANSWER = ANSWER.encode()


def issued_credential(master: str, peer_code: str) -> str:
    """The credential a platform (holding ``master``) issues to its peer ``peer_code``.

    It is the provider credential of the peer's unit in this platform's registry: the
    broker signs its lookups of mounted topics with it like any provider call, and the
    federation signs the rest of its calls (feed, revocations, audit) the same way.
    """
    return derive_provider_secret(master, peer_code)


def signer_for(credential: str, audience: str) -> ProviderSigner:
    """Signs calls (or answers) meant for ``audience`` with ``credential``."""
    return ProviderSigner(credential, audience)


def verifier_for(credential: str, audience: str, *, window: float) -> ProviderVerifier:
    """Checks calls (or answers) signed for ``audience`` with ``credential``."""
    return ProviderVerifier(credential, audience, window=window)


class AnswerVerifier:
    """Checks the peer's answer to a call this platform made: signed with ``credential``,
    for ``audience`` (this platform), for this call (its target and request id) and as it
    arrived (its body).

    Unlike a call's verifier it keeps no replay cache and reads no clock: an answer is
    only ever checked against the call in flight that its request id names, and a
    platform never uses a request id for two calls, so an answer replayed, or held back
    and delivered later, matches no call it could be accepted for. Each crossing lookup
    checks one answer on its critical path; the clock, the window arithmetic and the
    cache's bookkeeping were a fifth of that check's code.
    """

    __slots__ = ("_signer",)

    def __init__(self, credential: str, audience: str) -> None:
        self._signer = ProviderSigner(credential, audience)

    def verify(self, target: bytes, body: bytes, signature: str | None, request_id: str) -> None:
        """Raise :class:`SignatureError` unless ``signature`` signs this answer."""
        if not signature:
            raise SignatureError(
                401, "signature_required", f"the answer carries no {SIGNATURE_HEADER}"
            )
        t, nonce, given = parse_signature(signature)
        expected = self._signer.mac(
            _ANSWER, target, t.encode(), nonce.encode(), request_id.encode("latin-1"), body
        )
        if not hmac.compare_digest(expected, given):
            raise SignatureError(
                401,
                "signature_invalid",
                "the answer's signature does not match (call, request id, body and "
                "platform are all signed)",
            )
