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

from exchange.provider_auth import ProviderSigner, ProviderVerifier, derive_provider_secret

__all__ = ["ANSWER", "issued_credential", "signer_for", "verifier_for"]

#: the "method" an answer's signature covers (a request's is its HTTP method)
ANSWER = "ANSWER"


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
