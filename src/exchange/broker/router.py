"""``/api/v1/exchange``: the broker's API for consumer departments."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from exchange.authz.policy import REASONS
from exchange.broker.errors import client_error
from exchange.broker.inbound import MAX_QUERY_BODY, Inbound
from exchange.broker.schemas import (
    MAX_CHECKS,
    MAX_KEYS,
    QueryAnswer,
    QueryRequest,
    VerifyAnswer,
    VerifyBatchAnswer,
    VerifyBatchRequest,
    VerifyRequest,
)
from exchange.broker.service import Broker
from exchange.context import Ctx, present
from exchange.errors import (
    CORRELATION_ID_HEADER,
    REQUEST_ID_HEADER,
    ExchangeError,
    error_body,
)
from exchange.limits import ClientGone, RequestLimits
from exchange.serving import LeanAnswer, RequestIds, error_answer, json_answer

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/exchange", tags=["exchange"])

Front = Annotated[str, Path(pattern=r"^[123]\d{8}$", description="e.g. 101001001")]
Seq = Annotated[str, Path(pattern=r"^\d{6}$", description="e.g. 000001")]

_DENIALS = "\n".join(
    f"- `client.{code}`: {text}" for code, text in REASONS.items() if code != "granted"
)
_ERRORS = f"""
Errors say on which side the fault lies (`error.detail.side`):

- caller: `client.bad_key` / `client.missing_key` (401), `client.bad_input` (400/422),
  `client.topic_not_found` (404), `client.topic_retired` (410), `client.quota_exceeded` (429),
  and the other grant denials (403):
{_DENIALS}
- provider: `provider.timeout` (504), `provider.unavailable` (502; 503 while the circuit is
  open), `provider.bad_response` (502)
- broker: `broker.audit_unavailable` (503), `broker.internal` (500)
"""


async def get_broker(ctx: Ctx) -> Broker:
    return present(ctx.broker, "the broker does not run in this part")


TheBroker = Annotated[Broker, Depends(get_broker)]


_QUERY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": QueryRequest.model_json_schema()}},
    }
}


@router.post(
    "/{front}/{seq}/query",
    response_model=QueryAnswer,
    openapi_extra=_QUERY_BODY,
    description=(
        "Look up to 1,000 records of a topic by key, through the broker.\n\n"
        "The broker authenticates the caller, checks its grant (items, validity, daily "
        "quota), forwards the keys to the provider's API, keeps only granted items "
        "(whatever the provider sends), counts the records against the quota, commits the "
        "audit entry and only then answers. Send `X-Exchange-Case` to name the business "
        "case the call serves; it is kept in the audit log.\n" + _ERRORS
    ),
)
async def query(request: Request, front: Front, seq: Seq, broker: TheBroker) -> Response:
    """Single or batch lookup."""
    inbound = Inbound.of_scope(request.scope)
    await inbound.read_body(request.receive)
    return Response(await broker.query(inbound, front, seq), media_type=_JSON)


def _verify_body() -> dict[str, Any]:
    """The verify body's schema, inline like the lookup's: one check or a batch."""
    single = VerifyRequest.model_json_schema()
    batch = VerifyBatchRequest.model_json_schema()
    batch.pop("$defs", None)
    batch["properties"]["checks"]["items"] = single
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [single, batch]}}},
        }
    }


@router.post(
    "/{front}/{seq}/verify",
    response_model=VerifyAnswer | VerifyBatchAnswer,
    openapi_extra=_verify_body(),
    description=(
        "Verification without disclosure (核验): does the source hold these values? "
        "Answers `match`, `mismatch` or `unknown` per claimed item, **never the value**.\n\n"
        'One key: `{"key": "…", "claims": {"name": "张三", "registered_address": "…"}}`; '
        'a batch: `{"checks": [{"key": …, "claims": {…}}, …]}` (1 to 1,000 checks, '
        "each 1 to 100 claims). A claim on an integer, decimal, date or datetime item may be "
        'a range `{"min": …, "max": …}` (inclusive; either bound optional).\n\n'
        "An item may be verified under a current grant for it whose purpose is "
        "`data_verification` (one record of its daily quota per key verified), or without "
        "any grant when the provider's catalog marks the item `verifiable`. Anything else "
        "is refused: `client.no_grant`, `client.item_not_granted`, "
        "`client.purpose_not_verification` (403), the grant's own denials, "
        "`client.quota_exceeded` (429). An item not in the topic, or a claim that cannot be "
        "a value of its item, is `client.bad_input` (422), naming the item only; a topic "
        "mounted from the peer platform is `client.not_verifiable` (409).\n\n"
        "Comparison: strings after Unicode NFKC (full-width → ordinary), case folding and "
        "whitespace normalisation (spaces inside Chinese text ignored); numbers "
        "numerically; dates as days (`2024-03-01` = `2024年3月1日`); datetimes as instants "
        "(Beijing time unless an offset is given). A key with several records matches an "
        "item when any record holds the value. `unknown`: no record for the key, or none "
        "with a value for the item. The audit records the items and how many keys answered "
        "each outcome, never a value.\n" + _ERRORS
    ),
)
async def verify(request: Request, front: Front, seq: Seq, broker: TheBroker) -> Response:
    """Verification without disclosure."""
    inbound = Inbound.of_scope(request.scope)
    await inbound.read_body(request.receive)
    return Response(await broker.verify(inbound, front, seq), media_type=_JSON)


@router.get(
    "/{front}/{seq}/export",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}}},
    description=(
        "Stream a table-type topic as NDJSON, one record per line, granted items only.\n\n"
        "Query parameters: `offset` (default 0), `limit` (default 10,000, at most "
        "1,000,000; capped by the grant's remaining daily quota), `items` (comma-separated; "
        "default every granted item). `X-Next-Offset` gives where the next page starts. "
        "The body ends only after the audit entry is committed; a failure mid-stream "
        "aborts the transfer.\n" + _ERRORS
    ),
)
async def export(request: Request, front: Front, seq: Seq, broker: TheBroker) -> Response:
    """Bulk export."""
    return await broker.export(request, front, seq)


_EXCHANGE_PATH = re.compile(r"^/api/v1/exchange/([123]\d{8})/(\d{6})/(query|export|verify)$")
_METHODS = {"query": "POST", "export": "GET", "verify": "POST"}
_RID_HEADER = REQUEST_ID_HEADER.lower().encode()
_CID_HEADER = CORRELATION_ID_HEADER.lower().encode()
_JSON = "application/json"


class ExchangeDispatch:
    """Serve the exchange endpoints straight from the ASGI scope, ahead of FastAPI.

    FastAPI's middleware stack, route matching over every router and dependency solving
    cost about as much CPU per lookup as the whole broker pipeline (profiled), so the hot
    path skips them and does the request-id middleware's job itself. The app's front
    (:class:`exchange.front.Front`) asks :meth:`match` and hands matching calls to
    :meth:`serve`, after the request limits and the freshness check. The FastAPI routes
    above stay registered: they document the endpoints in OpenAPI and answer anything this
    does not take (a malformed resource code gets FastAPI's 422, a wrong method its 405),
    so callers see one API. Errors render in the same model as the error handlers'.
    """

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        #: the exchange assigns each call's request id (the caller's own is its
        #: correlation id)
        self.request_id = RequestIds()
        #: calls answered by the lean path (:meth:`lean`)
        self.lean_served = 0

    @staticmethod
    def match(scope: Scope) -> tuple[str, str, str] | None:
        """(front, seq, "query", "verify" or "export") when this serves the request."""
        path: str = scope["path"]
        if not path.startswith("/api/v1/exchange/"):
            return None
        match = _EXCHANGE_PATH.match(path)
        if match is None or scope["method"] != _METHODS[match.group(3)]:
            return None
        front, seq, action = match.groups()
        return front, seq, action

    async def serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        target: tuple[str, str, str],
        limits: RequestLimits,
    ) -> None:
        """Answer one call :meth:`match` took; a lookup's body is read under ``limits``."""
        rid = self.request_id()
        front, seq, action = target
        inbound = Inbound.of_headers(scope["headers"], rid)
        if action != "export":
            too_large = _too_many_keys if action == "query" else _too_many_checks
            try:
                inbound.body = await limits.read_body(receive, MAX_QUERY_BODY, too_large)
            except ClientGone:
                error = client_error("bad_input", "the client went away before its body arrived")
                status, headers, body = error_answer(rid, inbound.correlation_id, error)
            except ExchangeError as exc:
                status, headers, body = error_answer(rid, inbound.correlation_id, exc)
            else:
                status, headers, body = await self._answer(inbound, front, seq, action)
            # A lookup's answer goes out as two raw ASGI messages: no Response object.
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        correlation = inbound.correlation_id
        if correlation:
            state["correlation_id"] = correlation
        try:
            response = await self.broker.export(Request(scope, receive), front, seq)
        except ExchangeError as exc:
            response = _error_response(rid, exc)
        except Exception as exc:  # the broker converts its failures; this is a bug
            log.exception("exchange dispatch failed on %s", rid)
            response = _error_response(rid, ExchangeError(f"internal error: {type(exc).__name__}"))
        response.raw_headers.append((_RID_HEADER, rid.encode()))
        if correlation:
            response.raw_headers.append((_CID_HEADER, correlation.encode()))
        await response(scope, receive, send)

    async def lean(
        self,
        target: tuple[str, str, str],
        admits: Callable[[Scope, int], bool],
        scope: Scope,
        body: bytes,
    ) -> LeanAnswer | None:
        """A lookup or verification whose body has arrived whole, answered as bytes
        (:class:`exchange.serving.CoalescingProtocol`'s lean path: same answers, same
        request ids, same errors as :meth:`serve`), or None when the front's rules
        (``admits``) refuse it: the ordinary path then refuses it in their words.

        One coroutine from the protocol's task to the broker's (each level of awaiting
        is paid again at every resumption of the call).
        """
        if not admits(scope, len(body)):
            return None
        rid = self.request_id()
        front, seq, action = target
        inbound = Inbound.of_headers(scope["headers"], rid)
        if len(body) > MAX_QUERY_BODY:
            too_large = _too_many_keys if action == "query" else _too_many_checks
            return error_answer(rid, inbound.correlation_id, too_large())
        inbound.body = body
        self.lean_served += 1
        return await self._answer(inbound, front, seq, action)

    async def _answer(self, inbound: Inbound, front: str, seq: str, action: str) -> LeanAnswer:
        """The broker's answer to a lookup or verification with its body read: status,
        headers, body."""
        rid = inbound.request_id
        try:
            if action == "query":
                payload = await self.broker.query(inbound, front, seq)
            else:
                payload = await self.broker.verify(inbound, front, seq)
        except ExchangeError as exc:
            return error_answer(rid, inbound.correlation_id, exc)
        except Exception as exc:  # the broker converts its failures; this is a bug
            log.exception("exchange dispatch failed on %s", rid)
            error = ExchangeError(f"internal error: {type(exc).__name__}")
            return error_answer(rid, inbound.correlation_id, error)
        return json_answer(200, payload, rid, inbound.correlation_id)


def _too_many_keys() -> ExchangeError:
    return client_error(
        "bad_input",
        f"the body is larger than {MAX_QUERY_BODY:,} bytes: send at most {MAX_KEYS:,} keys "
        "per call",
        413,
        {"limit_bytes": MAX_QUERY_BODY},
    )


def _too_many_checks() -> ExchangeError:
    return client_error(
        "bad_input",
        f"the body is larger than {MAX_QUERY_BODY:,} bytes: send at most {MAX_CHECKS:,} "
        "checks per call, fewer when claims are long",
        413,
        {"limit_bytes": MAX_QUERY_BODY},
    )


def _error_response(rid: str, exc: ExchangeError) -> Response:
    return Response(
        orjson.dumps(error_body(exc.code, exc.message, rid, exc.detail)),
        status_code=exc.status_code,
        media_type=_JSON,
        headers=exc.headers,
    )
