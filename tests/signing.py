"""Calls signed as the exchange signs them, for tests that call a department directly."""

from __future__ import annotations

import uuid
from collections.abc import Generator

import httpx

from exchange.provider_auth import ProviderSigner, derive_provider_secret


class ExchangeSigned(httpx.Auth):
    """httpx auth: sign each call to ``/departments/{code}/…`` for ``code`` with the
    credential derived from ``master``, exactly as the broker does."""

    requires_request_body = True

    def __init__(self, master: str) -> None:
        self.master = master
        self._signers: dict[str, ProviderSigner] = {}

    def signer(self, code: str) -> ProviderSigner:
        found = self._signers.get(code)
        if found is None:
            found = self._signers[code] = ProviderSigner(
                derive_provider_secret(self.master, code), code
            )
        return found

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        parts = request.url.path.split("/")
        if len(parts) > 3 and parts[1] == "departments" and parts[2] != "_faults":
            rid = request.headers.setdefault("X-Request-Id", uuid.uuid4().hex)
            request.headers["X-Exchange-Signature"] = self.signer(parts[2]).sign(
                request.method, request.url.raw_path, request.content, rid
            )
        yield request
