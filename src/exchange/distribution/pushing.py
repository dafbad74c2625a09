"""The HTTP side of a push: one connection pool per process, a signer per consumer, and
the POST of one batch whose 2xx is the acknowledgement."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import aiohttp
import orjson
import yarl

from exchange.distribution.batches import Step
from exchange.provider_auth import SIGNATURE_HEADER, ProviderSigner, derive_provider_secret

__all__ = ["MAX_ANSWER", "SUBSCRIPTION_HEADER", "Outcome", "Pusher"]

SUBSCRIPTION_HEADER = "X-Exchange-Subscription"
#: bytes of an endpoint's answer read (and ignored) at most
MAX_ANSWER = 64 * 1024


@dataclass(slots=True)
class Outcome:
    ok: bool
    status: int
    error: str
    started: float
    ended: float
    request_id: str


class Pusher:
    """POSTs batches to consumers' endpoints, signed for each consumer."""

    def __init__(self, master_secret: str, *, timeout: float) -> None:
        self._master = master_secret
        self._timeout = timeout
        self._signers: dict[str, ProviderSigner] = {}
        self._http: aiohttp.ClientSession | None = None

    def open(self) -> None:
        """Create the connection pool (on the running loop)."""
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300),
            json_serialize=lambda v: orjson.dumps(v).decode(),
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _signer(self, consumer: str) -> ProviderSigner:
        signer = self._signers.get(consumer)
        if signer is None:
            secret = derive_provider_secret(self._master, consumer)
            signer = self._signers[consumer] = ProviderSigner(secret, consumer)
        return signer

    async def post(self, step: Step) -> Outcome:
        """POST the batch, signed for the consumer; 2xx is the acknowledgement."""
        assert self._http is not None
        body = orjson.dumps(
            {"subscription": step.sub_id, "consumer": step.consumer, "events": step.batch.events}
        )
        rid = uuid.uuid4().hex
        url = yarl.URL(step.endpoint)
        headers = {
            "Content-Type": "application/json",
            "X-Request-Id": rid,
            SUBSCRIPTION_HEADER: str(step.sub_id),
            SIGNATURE_HEADER: self._signer(step.consumer).sign(
                "POST", url.raw_path_qs.encode(), body, rid
            ),
        }
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with self._http.post(url, data=body, headers=headers, timeout=timeout) as resp:
                await resp.content.read(MAX_ANSWER)
                status = resp.status
        except TimeoutError:
            return Outcome(False, 504, "consumer.timeout", started, time.perf_counter(), rid)
        except (aiohttp.ClientError, OSError) as exc:
            error = f"consumer.unreachable: {type(exc).__name__}"
            return Outcome(False, 502, error, started, time.perf_counter(), rid)
        ok = 200 <= status < 300
        error = "ok" if ok else f"consumer.http_{status}"
        return Outcome(ok, status, error, started, time.perf_counter(), rid)
