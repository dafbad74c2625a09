"""How a call of the peer platform is taken in: verified (:meth:`Federation.verify`,
through :func:`exchange.federation.lookup.verified_call`: a refused one is audited, kind
``federation``, outcome ``client.signature_*``, and answered 401 unsigned), and answered
signed for the peer, errors included. Shared by the peer's routers (``peer_router``,
``review_router``), with the federation's typed dependency."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from starlette.responses import Response

from exchange.context import AppContext, Ctx, present
from exchange.errors import ExchangeError, error_body
from exchange.federation.lookup import verified_call
from exchange.federation.runtime import Federation
from exchange.openapi import PUBLIC

__all__ = [
    "PEER_ERRORS",
    "SIGNED",
    "PeerCall",
    "TheFederation",
    "federation_of",
    "get_federation",
    "verified",
]

#: The OpenAPI extra of every route only the peer platform calls.
SIGNED = {
    **PUBLIC,
    "description": "Called by the peer platform only: signed with `X-Exchange-Signature` "
    "(exchange.provider_auth, the credential this platform issued the peer); the answer is "
    "signed back for the peer.",
}
#: The answers those routes document besides 200.
PEER_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not a verified call of the peer platform (`client.signature_*`)."},
    403: {"description": "The grant chain does not allow it (`client.*`)."},
    410: {"description": "The topic is retired."},
    429: {"description": "The quota of this platform's grant to the peer is used up."},
    502: {"description": "The provider department failed (`provider.*`)."},
    504: {"description": "The provider department did not answer in time."},
}


def federation_of(ctx: AppContext) -> Federation:
    return present(ctx.federation, "the federation is not running", code="not_federated")


async def get_federation(ctx: Ctx) -> Federation:
    # async: it only reads memory, so FastAPI runs it on the loop, not the threadpool.
    return federation_of(ctx)


#: The federation of this process, or 503 ``not_federated`` where it does not run.
TheFederation = Annotated[Federation, Depends(get_federation)]


def _target(request: Request) -> bytes:
    scope = request.scope
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    return raw + b"?" + query if query else raw


class PeerCall:
    """One verified call of the peer: its request id, and how to answer it signed."""

    def __init__(self, fed: Federation, request: Request, target: bytes, peer_rid: str) -> None:
        self.fed = fed
        self.request = request
        self.target = target
        self.peer_rid = peer_rid
        self.rid = str(request.state.request_id)

    def answer(self, payload: bytes, status: int = 200) -> Response:
        signature = self.fed.sign_answer(self.target, payload, self.peer_rid)
        return Response(
            payload,
            status_code=status,
            media_type="application/json",
            headers={"X-Exchange-Signature": signature, "X-Exchange-Answer-To": self.peer_rid},
        )

    def error(self, exc: ExchangeError) -> Response:
        body = orjson.dumps(error_body(exc.code, exc.message, self.rid, exc.detail))
        return self.answer(body, exc.status_code)


async def verified(
    ctx: AppContext, request: Request, resource: str | None
) -> tuple[PeerCall, bytes]:
    """The peer's call, verified; a forged one is audited and refused (401, unsigned)."""
    fed = federation_of(ctx)
    body = await request.body()
    target = _target(request)
    call = await verified_call(
        ctx,
        fed,
        rid=str(request.state.request_id),
        method=request.method,
        target=target,
        body=body,
        headers=request.headers,
        resource=resource,
        path=request.url.path,
    )
    return PeerCall(fed, request, target, call.request_id), body
