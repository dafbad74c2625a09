"""Offline licence verification (电子证照核验) for anybody holding a number and a code.

    from exchange.client import fetch_licence_verifier

    verifier = fetch_licence_verifier("http://127.0.0.1:8000", cache=".licence-trust.json")
    result = verifier.verify(number, code)
    if not result.ok:
        print(result.reason, result.message)      # revoked / expired / altered …

What a verifier needs is public and small: the platform's licence public key and its signed
status list (revocations, the platform clock's offset). :func:`fetch_licence_verifier`
fetches both (no key needed) and, with ``cache``, keeps a copy: when the exchange cannot be
reached it verifies from the copy, and every answer says when its status list was issued and
whether it is past the list's ``max_age`` (``stale``). Signatures and expiry are checked
locally; no licence data leaves the verifier.

:func:`verify_many` spreads a large batch over processes (Ed25519 verification is CPU-bound
and each process verifies independently); :class:`VerifierPool` keeps those processes for
every batch a long-running verifier checks, so their start-up is paid once:

    with VerifierPool(verifier, processes=2) as pool:
        for batch in batches:
            results = pool.verify_many(batch)    # [(ok, reason), …] in order
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from exchange.client._errors import TransportError, error_from
from exchange.licences.token import StatusList, public_key_from_pem
from exchange.licences.verifier import LicenceVerifier

__all__ = ["VerifierPool", "fetch_licence_verifier", "load_licence_verifier", "verify_many"]

PUBLIC_KEY_PATH = "/api/v1/licences/public-key"
STATUS_PATH = "/api/v1/licences/status-list"


def _get(client: httpx.Client, path: str) -> httpx.Response:
    response = client.get(path)
    if not response.is_success:
        try:
            body = response.json()
        except ValueError:
            body = None
        raise error_from(response.status_code, body)
    return response


def load_licence_verifier(cache: str | os.PathLike[str]) -> LicenceVerifier:
    """A verifier from a kept copy (``{"public_keys": [PEM…], "status": {…}}``).

    Raises ValueError if the copy is unreadable or its status list does not verify.
    """
    try:
        kept = json.loads(Path(cache).read_text(encoding="utf-8"))
        verifier = LicenceVerifier.from_pem(*kept["public_keys"])
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{cache}: not a licence trust copy ({exc})") from None
    if kept.get("status") is not None:
        verifier.use_status(kept["status"])
    return verifier


def fetch_licence_verifier(
    base_url: str,
    *,
    cache: str | os.PathLike[str] | None = None,
    timeout: float = 5.0,
    transport: httpx.BaseTransport | None = None,
) -> LicenceVerifier:
    """The platform's public key and current status list, as a verifier.

    With ``cache``: the copy is rewritten after a successful fetch, and used instead when
    the exchange cannot be reached (:class:`~exchange.client.TransportError` only when
    there is no copy either). An answer from the exchange that is an error is raised.
    """
    try:
        with httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        ) as client:
            pem = _get(client, PUBLIC_KEY_PATH).text
            status = _get(client, STATUS_PATH).json()
    except httpx.TransportError as exc:
        if cache is not None and Path(cache).exists():
            return load_licence_verifier(cache)
        raise TransportError(f"cannot reach {base_url}: {exc}") from exc
    verifier = LicenceVerifier.from_pem(pem)
    verifier.use_status(status)
    if cache is not None:
        path = Path(cache)
        aside = path.with_name(f".{path.name}.{os.getpid()}")
        aside.write_text(json.dumps({"public_keys": [pem], "status": status}), encoding="utf-8")
        aside.replace(path)  # whole or not at all: a reader never sees half a copy
    return verifier


# -- batches over processes -----------------------------------------------------------------

_WORKER: LicenceVerifier | None = None


def _init_worker(pems: list[str], status: dict[str, str] | None, memo: int) -> None:
    global _WORKER
    _WORKER = LicenceVerifier([public_key_from_pem(p) for p in pems], memo=memo)
    if status is not None:
        _WORKER.use_status(status)


def _verify_chunk(chunk: Sequence[tuple[str, str]]) -> list[tuple[bool, str]]:
    assert _WORKER is not None
    verify = _WORKER.verify
    return [(r.ok, r.reason) for r in (verify(n, c) for n, c in chunk)]


class VerifierPool:
    """Worker processes, each with a copy of a verifier's keys and status list, started
    once and used for every batch until :meth:`close` (or the ``with`` block ends).

    Each worker remembers verified codes as ``verifier`` does (its ``memo``). The copies
    are those of the moment the pool starts: after fetching a new status list,
    start a new pool. Batches are cut in a few chunks per process, so the processes end
    together whatever the batch's size.
    """

    def __init__(self, verifier: LicenceVerifier, processes: int = 2) -> None:
        if processes < 1:
            raise ValueError("processes must be >= 1")
        status: StatusList | None = verifier.status
        self.processes = processes
        self._pool = ProcessPoolExecutor(
            processes,
            initializer=_init_worker,
            initargs=(
                [_pem(k) for k in verifier.keys.values()],
                status.document if status is not None else None,
                verifier.memo,
            ),
        )

    def verify_many(
        self, licences: Iterable[tuple[str, str]], *, chunk: int | None = None
    ) -> list[tuple[bool, str]]:
        """(ok, reason) for each (number, code), in order."""
        pairs = list(licences)
        size = chunk or max(1, -(-len(pairs) // (4 * self.processes)))
        chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
        out: list[tuple[bool, str]] = []
        for part in self._pool.map(_verify_chunk, chunks):
            out.extend(part)
        return out

    def close(self) -> None:
        self._pool.shutdown()

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def verify_many(
    verifier: LicenceVerifier,
    licences: Iterable[tuple[str, str]],
    *,
    processes: int = 1,
    chunk: int | None = None,
) -> list[tuple[bool, str]]:
    """(ok, reason) for each (number, code), in order; ``processes`` > 1 verifies chunks in
    that many worker processes started for this batch (see :class:`VerifierPool` to keep
    them for the next)."""
    pairs = list(licences)
    if processes <= 1:
        verify = verifier.verify
        return [(r.ok, r.reason) for r in (verify(n, c) for n, c in pairs)]
    with VerifierPool(verifier, processes) as pool:
        return pool.verify_many(pairs, chunk=chunk)


def _pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    pem: bytes = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()
