"""The exchange SDK for department developers: typed, sync and async, over httpx.

    from exchange.client import ExchangeClient, PermissionDenied

    with ExchangeClient("http://127.0.0.1:8000", key) as ex:
        page = ex.search_topics("户籍")
        answer = ex.query("101001001/000001", ["440104199001011234"], case="低保核对")

    verifier = fetch_licence_verifier("http://127.0.0.1:8000", cache="trust.json")
    verifier.verify(number, code)         # offline: valid / revoked / expired / altered …

A department's own API accepts the exchange's calls and nothing else with
:class:`ProviderVerifier` (any framework) or :class:`ExchangeSignatureMiddleware` (ASGI);
see the README's "Your own API".

It imports nothing of the server but the pydantic-only ``schemas`` modules, so it stays
light enough for load generators. The exception tree is in :mod:`exchange.client._errors`.
"""

from exchange.client._client import (
    DEFAULT_URL,
    AsyncExchangeClient,
    ExchangeClient,
    PlatformClock,
)
from exchange.client._errors import (
    AuthenticationFailed,
    BadRequest,
    Conflict,
    ExchangeAPIError,
    ExchangeError,
    ExportInterrupted,
    Gone,
    NotFound,
    PermissionDenied,
    ProviderError,
    ProviderTimeout,
    QuotaExceeded,
    ServerError,
    TransportError,
)
from exchange.client._licences import (
    VerifierPool,
    fetch_licence_verifier,
    load_licence_verifier,
    verify_many,
)
from exchange.client._provider import ExchangeSignatureMiddleware
from exchange.client._receiver import PushReceiver
from exchange.licences.token import StatusList
from exchange.licences.verifier import LicenceVerifier, Verification
from exchange.provider_auth import ProviderSigner, ProviderVerifier, SignatureError, SignedCall

__all__ = [
    "DEFAULT_URL",
    "AsyncExchangeClient",
    "AuthenticationFailed",
    "BadRequest",
    "Conflict",
    "ExchangeAPIError",
    "ExchangeClient",
    "ExchangeError",
    "ExchangeSignatureMiddleware",
    "ExportInterrupted",
    "Gone",
    "LicenceVerifier",
    "NotFound",
    "PermissionDenied",
    "PlatformClock",
    "ProviderError",
    "ProviderSigner",
    "ProviderTimeout",
    "ProviderVerifier",
    "PushReceiver",
    "QuotaExceeded",
    "ServerError",
    "SignatureError",
    "SignedCall",
    "StatusList",
    "TransportError",
    "Verification",
    "VerifierPool",
    "fetch_licence_verifier",
    "load_licence_verifier",
    "verify_many",
]
