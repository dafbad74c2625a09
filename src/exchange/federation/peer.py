"""Calls to the peer platform: signed going out, the answer's signature checked coming back.

Both directions use :mod:`exchange.provider_auth` (see :mod:`exchange.federation.trust`):
this platform signs with the credential it issued the peer (derived from its own master
secret, the very credential its broker signs provider calls to the peer's unit with), and
the peer signs its answer with the same credential for this platform's code. An answer
that is not signed, signed for another call or altered is refused as the peer's fault.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp

from exchange.broker._h1 import ConnectionFailed, H1Pool, KeepingConn
from exchange.federation.trust import AnswerVerifier, signer_for
from exchange.provider_auth import SIGNATURE_HEADER, SignatureError

__all__ = ["PeerAnswer", "PeerClient", "PeerUnreachable"]

REQUEST_ID_HEADER = "X-Request-Id"


class PeerUnreachable(Exception):
    """The peer did not answer (connection refused, timeout)."""


@dataclass(frozen=True, slots=True)
class PeerAnswer:
    status: int
    body: bytes
    request_id: str


class PeerClient:
    """One platform's client of its peer. ``credential`` is the one this platform issued
    the peer (``derive_provider_secret(own master, peer code)``)."""

    def __init__(
        self,
        base_url: str,
        *,
        credential: str,
        own_code: str,
        peer_code: str,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.peer_code = peer_code
        self._signer = signer_for(credential, peer_code)
        self._answers = AnswerVerifier(credential, own_code)
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 3.0))
        self._session: aiohttp.ClientSession | None = None
        # POSTs (lookups, forwarded applications: small bodies, answers read whole) go
        # through the broker's lean HTTP/1.1 client: aiohttp's request machinery cost
        # ~150 µs of CPU a call (profiled for the broker), paid on every crossing lookup.
        # aiohttp keeps the GETs (feed, provision pages of megabytes) and https peers.
        self._h1: H1Pool | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=300),
                timeout=self._timeout,
            )

    async def close(self) -> None:
        if self._h1 is not None:
            self._h1.close()
            self._h1 = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        params: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> PeerAnswer:
        """One signed call; returns the verified answer (any status), raises
        :class:`PeerUnreachable` or :class:`~exchange.provider_auth.SignatureError`."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        rid = request_id or uuid.uuid4().hex
        target = path + (f"?{urlencode(params)}" if params else "")
        signature = self._signer.sign(method, target.encode(), body, rid)
        if method == "POST" and (answer := await self._post(target, body, rid, signature)):
            payload, status, kept = answer
            return self._verified(
                rid,
                target,
                payload,
                status,
                kept.get("x-exchange-signature"),
                kept.get("x-exchange-answer-to"),
            )
        headers = {REQUEST_ID_HEADER: rid, SIGNATURE_HEADER: signature}
        if body:
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method, self.base_url + target, data=body or None, headers=headers
            ) as resp:
                payload = await resp.read()
                status = resp.status
                signed = resp.headers.get(SIGNATURE_HEADER)
                answered_for = resp.headers.get("X-Exchange-Answer-To")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PeerUnreachable(f"{type(exc).__name__}: {exc}") from None
        return self._verified(rid, target, payload, status, signed, answered_for)

    async def _post(
        self, target: str, body: bytes, rid: str, signature: str
    ) -> tuple[bytes, int, dict[str, str]] | None:
        """A POST through the lean client: (body, status, the answer's X-Exchange-*
        headers), or None when the peer's URL is not one it serves (https)."""
        if self._h1 is None:
            self._h1 = H1Pool(256, KeepingConn)
        url = self.base_url + target
        where = self._h1.target(url)
        if where is None:
            return None
        headers = (
            f"{REQUEST_ID_HEADER}: {rid}\r\n{SIGNATURE_HEADER}: {signature}\r\n"
            + ("Content-Type: application/json\r\n" if body else "")
        ).encode("latin-1")
        kept: dict[str, str] = {}
        total = self._timeout.total or 10.0
        try:
            status, payload = await self._h1.post(
                where,
                body,
                headers,
                budget=total,
                connect_budget=self._timeout.connect or total,
                kept=kept,
            )
        except (ConnectionFailed, TimeoutError) as exc:
            raise PeerUnreachable(f"{type(exc).__name__}: {exc}") from None
        return payload, status, kept

    def _verified(
        self,
        rid: str,
        target: str,
        payload: bytes,
        status: int,
        signature: str | None,
        answered_for: str | None,
    ) -> PeerAnswer:
        if answered_for != rid:
            raise SignatureError(
                401, "answer_unsigned", "the peer's answer is not for this call (no signed answer)"
            )
        self._answers.verify(target.encode(), payload, signature, rid)
        return PeerAnswer(status, payload, rid)
