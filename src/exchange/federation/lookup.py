"""The peer platform's lookups, answered here: verification, the grant chain, the provider,
the signed answer. One implementation for both ways a lookup arrives:

* the lean path (:class:`FederationDispatch`, claimed by the app's front like the broker's
  own lookups, see :class:`exchange.serving.CoalescingProtocol`): no FastAPI middleware,
  route matching or dependency solving. Profiled, that stack cost about as much CPU per
  call as the broker's whole pipeline, and a crossing lookup paid it on top of the
  broker's (the throughput target of a crossing is 40 % of a single lookup's);
* the FastAPI route (:func:`exchange.federation.router.peer_query`), which documents the
  endpoint in OpenAPI and answers what the lean path does not take.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from exchange.audit.writer import AuditUnavailable
from exchange.broker.errors import client_error
from exchange.broker.filtering import filter_records
from exchange.broker.routes import NOT_CACHED
from exchange.context import AppContext, present
from exchange.errors import ExchangeError, error_body, sane_correlation_id
from exchange.provider_auth import SignatureError, SignedCall
from exchange.serving import RequestIds

if TYPE_CHECKING:
    from exchange.federation.runtime import Federation
    from exchange.serving import LeanAnswer

__all__ = ["FederationDispatch", "answer_query", "verified_call"]

_QUERY_PATH = re.compile(r"^/api/v1/federation/topics/([1-3]\d{8})/(\d{6})/query$")
_JSON = (b"content-type", b"application/json")
#: the request headers a peer's call is verified by (see ProviderVerifier.verify)
_VERIFIED = frozenset((b"x-exchange-signature", b"x-request-id", b"authorization"))


async def verified_call(
    ctx: AppContext,
    fed: Federation,
    *,
    rid: str,
    method: str,
    target: bytes,
    body: bytes,
    headers: Mapping[str, str],
    resource: str | None,
    path: str,
) -> SignedCall:
    """The peer's call, verified; a forged one is audited and refused (401, unsigned) as
    an :class:`ExchangeError`."""
    started = time.perf_counter()
    try:
        return fed.verify(method, target, body, headers)
    except SignatureError as exc:
        entry = fed.audit_entry(
            request_id=rid,
            correlation_id=(headers.get("x-request-id") or "")[:64] or None,
            consumer="anonymous",
            provider=None,
            resource_code=resource,
            items=[],
            case=f"refused call to {path}"[:200],
            records=0,
            outcome=f"client.{exc.code}",
            status=exc.status,
            started=started,
        )
        audit = ctx.audit
        if audit is not None:
            with contextlib.suppress(AuditUnavailable):
                await audit.record(entry)
        raise ExchangeError(
            exc.message,
            code=f"client.{exc.code}",
            status_code=exc.status,
            detail={"side": "client"},
        ) from None


async def answer_query(
    ctx: AppContext, fed: Federation, rid: str, peer_rid: str, code: str, body: bytes
) -> tuple[int, bytes]:
    """A verified lookup by a consumer of the peer platform, routed here by the peer's
    broker: (status, the answer's JSON, to be signed for the peer).

    Checked here again, whatever the peer checked: the topic is published to the peer,
    this platform's grant to the peer covers the items, the peer's grant was not revoked;
    then the provider is asked and only the granted items leave. Audited either way.
    """
    started = time.perf_counter()
    consumer_there = "?"
    items: list[str] = []
    provider: str | None = None
    broker = present(ctx.broker, "the broker does not run in this part")
    records = 0
    case: str | None = None
    try:
        try:
            req = orjson.loads(body)
            keys = [str(k) for k in req["keys"]][:1000]
            wanted = req.get("items")
            consumer_there = str(req.get("consumer") or "?")[:32]
            grant_there = req.get("grant_id")
            case = f"{fed.peer_code}:{consumer_there}" + (
                f" {req['case']}" if req.get("case") else ""
            )
            if not keys:
                raise ValueError
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise client_error(
                "bad_input", 'the body is {"keys": [...], "items": [...], ...}', 422
            ) from None
        if isinstance(grant_there, int) and grant_there in fed.revoked:
            raise client_error(
                "grant_revoked",
                f"the {fed.peer_level} platform revoked grant {grant_there} of {consumer_there}",
                403,
                {"reason": "grant_revoked", "platform": fed.level},
            )
        # Both from memory without a coroutine of their own in the common case (loaded
        # once per change), as the broker's pipeline reads its routes.
        published = fed.published_now()
        if published is None:
            published = await fed.published()
        if code not in published:
            raise client_error(
                "not_published", f"{code} is not published to the {fed.peer_level} platform", 404
            )
        route = broker.routes.cached(code, NOT_CACHED)
        if route is NOT_CACHED:
            front, seq = code.split("/")
            route = await broker.routes.get(front, seq)
        if route is None:
            raise client_error("topic_not_found", f"no topic {code}", 404)
        provider = route.provider
        if route.status == "retired":
            raise client_error("topic_retired", f"topic {code} is retired (废置)", 410)
        grants = broker.grants
        asked = wanted if isinstance(wanted, list) else None
        if grants.fresh:  # from memory, as the broker does; a due reload reads the database
            decision = grants.check(fed.peer_code, code, asked, records=len(keys))
        else:
            decision = await run_in_threadpool(
                grants.check, fed.peer_code, code, asked, records=len(keys)
            )
        if not decision.allowed:
            raise client_error(
                decision.reason,
                f"the {fed.peer_level} platform may not receive {code}: {decision.reason}",
                429 if decision.reason == "quota_exceeded" else 403,
                {"reason": decision.reason, "platform": fed.level},
            )
        items = sorted(decision.items)
        broker._endpoint(route)
        answer = await broker.lookups.lookup(
            route.provider, route.url("/query"), keys, rid, route.key_item
        )
        out_records = filter_records(answer.records, decision.items)
        records = len(out_records)
        if records and decision.grant_id is not None:
            grants.consume(decision.grant_id, records)
        broker.metrics.delivered(route.provider, records)
        payload: dict[str, Any] = {"records": out_records, "not_found": answer.not_found}
        if answer.invalid:
            payload["invalid"] = answer.invalid
        entry = fed.audit_entry(
            request_id=rid,
            correlation_id=peer_rid,
            consumer=fed.peer_code,
            provider=provider,
            resource_code=code,
            items=items,
            case=case,
            records=records,
            outcome="ok",
            status=200,
            started=started,
        )
        # Durable before the answer leaves; with a journal, without a coroutine.
        if not broker.audit.record_now(entry):
            await broker.audit.record(entry)
        fed.provided(code, records)
        return 200, orjson.dumps(payload)
    except ExchangeError as exc:
        with contextlib.suppress(AuditUnavailable):
            await broker.audit.record(
                fed.audit_entry(
                    request_id=rid,
                    correlation_id=peer_rid,
                    consumer=fed.peer_code,
                    provider=provider,
                    resource_code=code,
                    items=items,
                    case=case,
                    records=0,
                    outcome=exc.code,
                    status=exc.status_code,
                    started=started,
                )
            )
        return exc.status_code, orjson.dumps(error_body(exc.code, exc.message, rid, exc.detail))


class FederationDispatch:
    """The peer's lookups (``POST /api/v1/federation/topics/{code}/query``) on the lean
    path: same verification, answers, audit and request ids as the FastAPI route."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        #: lookups answered by the lean path
        self.lean_served = 0
        #: request ids, made as the broker's lean path makes them
        self.request_id = RequestIds()

    @staticmethod
    def match(scope: Scope) -> str | None:
        """The resource code of a peer lookup this serves, or None."""
        if scope["method"] != "POST":
            return None
        found = _QUERY_PATH.match(scope["path"])
        return None if found is None else f"{found.group(1)}/{found.group(2)}"

    async def lean(
        self,
        code: str,
        admits: Callable[[Scope, int], bool],
        scope: Scope,
        body: bytes,
    ) -> LeanAnswer | None:
        """The answer as bytes, or None for the ordinary path (the front's rules refuse
        the request, or the federation is not running: the route words either)."""
        fed = self.ctx.federation
        if fed is None or not admits(scope, len(body)):
            return None
        self.lean_served += 1
        rid = self.request_id()
        # Only what the verifier reads, in one pass (uvicorn gives names in lower case).
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in _VERIFIED:
                headers[name.decode("latin-1")] = value.decode("latin-1")
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        target = raw + b"?" + query if query else raw
        ids = [(b"x-request-id", rid.encode())]
        if correlation := sane_correlation_id(headers.get("x-request-id", "")):
            ids.append((b"x-correlation-id", correlation.encode("latin-1")))
        try:
            call = await verified_call(
                self.ctx,
                fed,
                rid=rid,
                method="POST",
                target=target,
                body=body,
                headers=headers,
                resource=code,
                path=scope["path"],
            )
        except ExchangeError as exc:
            out = orjson.dumps(error_body(exc.code, exc.message, rid, exc.detail))
            return exc.status_code, [_JSON, (b"content-length", b"%d" % len(out)), *ids], out
        status, payload = await answer_query(self.ctx, fed, rid, call.request_id, code, body)
        signature = fed.sign_answer(target, payload, call.request_id)
        return (
            status,
            [
                _JSON,
                (b"content-length", b"%d" % len(payload)),
                (b"x-exchange-signature", signature.encode()),
                (b"x-exchange-answer-to", call.request_id.encode()),
                *ids,
            ],
            payload,
        )
