"""The exchange pipeline: authenticate → check the grant → route → forward → filter →
count → audit (durably) → answer; here its three ways in (lookup, verification, export).

The hot path opens no database session: keys come from the Authenticator's cache, grants
from the in-memory GrantCache, routes from :class:`~exchange.broker.routes.RouteCache`,
and the audit entry goes to the group-committing writer. Every outcome, denials included,
is audited. The steps the ways in share are in :mod:`exchange.broker.pipeline`; quota
holds in :mod:`~exchange.broker.quota`; the grant filters in :mod:`~exchange.broker.filtering`;
what is read of a call in :mod:`~exchange.broker.inbound`. Other packages import the
broker from here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from exchange.audit.writer import AuditWriter
from exchange.authz.policy import Decision
from exchange.broker.call import BrokerCall
from exchange.broker.errors import ProviderBadResponse, client_error
from exchange.broker.filtering import checked_lines, filter_records
from exchange.broker.inbound import MAX_QUERY_BODY, Inbound
from exchange.broker.metrics import BrokerMetrics
from exchange.broker.pipeline import Pipeline
from exchange.broker.routes import ROUTE_CACHE, Route
from exchange.broker.schemas import MAX_KEYS
from exchange.broker.upstream import Upstream, UpstreamConfig
from exchange.context import AppContext
from exchange.provider_auth import derive_provider_secret

# What other packages import from here (the broker's face).
__all__ = [
    "MAX_QUERY_BODY",
    "ROUTE_CACHE",
    "Broker",
    "Inbound",
    "build_broker",
]

MAX_EXPORT = 1_000_000
DEFAULT_EXPORT = 10_000
EXPORT_BATCH = 1024 * 1024


def _str_list(value: Any, field: str, *, limit: int) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise client_error(
            "bad_input", f"{field}: a list of non-empty strings", 422, {"field": field}
        )
    if not 1 <= len(value) <= limit:
        raise client_error(
            "bad_input",
            f"{field}: between 1 and {limit} values ({len(value)} given)",
            422,
            {"field": field, "count": len(value)},
        )
    return value


class Broker(Pipeline):
    """The exchange: one per app, held in ``ctx.broker``."""

    # -- query ----------------------------------------------------------------------------

    async def query(self, inbound: Inbound, front: str, seq: str) -> bytes:
        """Single or batch lookup; see the router for the contract. Returns the JSON
        answer; failures raise :class:`ExchangeError` (audited)."""
        call: BrokerCall | None = None
        try:
            call = self._begin(inbound, "query")
            try:
                body = orjson.loads(inbound.body)
            except orjson.JSONDecodeError:
                raise client_error("bad_input", "the body is not valid JSON", 400) from None
            if not isinstance(body, dict) or set(body) - {"keys", "items"}:
                raise client_error(
                    "bad_input", 'the body is {"keys": [...], "items": [...] (optional)}', 422
                )
            keys = _str_list(body.get("keys"), "keys", limit=MAX_KEYS)
            wanted = body.get("items")
            items = None if wanted is None else _str_list(wanted, "items", limit=500)
            call.items = items
            route = await self._route(call, front, seq)
            decision = await self._check(call, items, len(keys))
            call.items = sorted(decision.items)
            self._endpoint(route)
            self.holds.hold(call, decision, len(keys))
            try:
                federation = self._ctx.federation
                if route.federated and federation is not None:
                    # The peer platform is the provider: it is told who asks, under which
                    # grant and for which items, and checks its own side of the chain.
                    answer = await federation.forward(
                        request_id=call.request_id,
                        consumer=call.consumer,
                        grant_id=decision.grant_id,
                        items=call.items,
                        case=call.case,
                        provider=route.provider,
                        api_path=route.api_path,
                        keys=keys,
                    )
                else:
                    answer = await self.lookups.lookup(
                        route.provider, route.url("/query"), keys, call.request_id, route.key_item
                    )
            finally:
                self.holds.release(call, decision)
            try:
                records = filter_records(answer.records, decision.items)
            except TypeError as exc:
                raise ProviderBadResponse(
                    route.provider,
                    f"provider {route.provider!r} sent a malformed answer: {exc}",
                ) from None
            not_found, invalid = answer.not_found, answer.invalid
            call.records = len(records)
            if records and decision.grant_id is not None:
                self.grants.consume(decision.grant_id, len(records))
            out: dict[str, Any] = {
                "request_id": call.request_id,
                "records": records,
                "not_found": not_found,
            }
            if invalid:
                out["invalid"] = invalid
            payload = orjson.dumps(out)
            await self._finish(call, "ok", 200)
            self.metrics.delivered(route.provider, len(records))
            return payload
        except Exception as exc:
            if call is None:
                call = BrokerCall(
                    inbound.request_id, "query", time.perf_counter(), inbound.correlation_id
                )
            raise await self._fail(call, exc) from None

    # -- verify (核验) ----------------------------------------------------------------------

    async def verify(self, inbound: Inbound, front: str, seq: str) -> bytes:
        """Verification without disclosure; see :mod:`exchange.broker.verification`."""
        from exchange.broker.verification import verify

        return await verify(self, inbound, front, seq)

    # -- export ---------------------------------------------------------------------------

    async def export(self, request: Request, front: str, seq: str) -> Response:
        """Bulk export of a table-type topic, streamed as NDJSON."""
        call: BrokerCall | None = None
        decision: Decision | None = None
        inbound = Inbound.of_scope(request.scope)
        try:
            call = self._begin(inbound, "export")
            params = request.query_params
            try:
                offset = int(params.get("offset", "0"))
                limit = int(params.get("limit", str(DEFAULT_EXPORT)))
            except ValueError:
                raise client_error("bad_input", "offset and limit are integers", 422) from None
            if offset < 0 or not 1 <= limit <= MAX_EXPORT:
                raise client_error("bad_input", f"offset ≥ 0 and 1 ≤ limit ≤ {MAX_EXPORT}", 422)
            items = None
            if params.get("items"):
                items = [i for i in params["items"].split(",") if i]
            call.items = items
            route = await self._route(call, front, seq)
            if route.resource_type != "table":
                raise client_error(
                    "not_exportable",
                    f"{route.resource_code} is an {route.resource_type} topic; "
                    "only table topics are exported in bulk",
                    409,
                )
            decision = await self._check(call, items, 1)
            call.items = sorted(decision.items)
            if decision.remaining_quota is not None and decision.grant_id is not None:
                # The check reserved one record; the rest of today's quota, less what
                # exports and lookups in flight hold, caps the export.
                limit = min(
                    limit,
                    decision.remaining_quota + 1 - self.holds.by_grant.get(decision.grant_id, 0),
                )
                self.holds.hold(call, decision, max(limit, 1))
            federation = self._ctx.federation
            if route.federated and federation is not None:
                # The peer platform's topic: exported from what it provided in bulk and
                # this platform stored (回流), filtered and audited like any export.
                upstream = federation.stored_export(
                    route.resource_code, route.key_item, offset, limit
                )
            else:
                self._endpoint(route)
                # The granted items go to the department (in the signed path): it sends
                # only those, and the relay checks each record instead of rebuilding it.
                upstream = self.upstream.stream(
                    route.provider,
                    route.url("/export"),
                    {
                        "offset": str(offset),
                        "limit": str(limit),
                        "fields": ",".join(call.items),
                    },
                    call.request_id,
                )
            resp = await upstream.__aenter__()
        except Exception as exc:
            if call is None:
                call = BrokerCall(
                    inbound.request_id, "export", time.perf_counter(), inbound.correlation_id
                )
            elif decision is not None:
                self.holds.release(call, decision)
            raise await self._fail(call, exc) from None
        headers = {
            k: resp.headers[k] for k in ("X-Total-Rows", "X-Next-Offset") if k in resp.headers
        }
        return StreamingResponse(
            self._relay(call, route, decision, resp, upstream),
            media_type="application/x-ndjson",
            headers=headers,
        )

    async def _relay(
        self,
        call: BrokerCall,
        route: Route,
        decision: Decision,
        resp: aiohttp.ClientResponse,
        upstream: Any,
    ) -> AsyncGenerator[bytes, None]:
        """Filter the provider's NDJSON; end the body only after the audit commit.

        A stream cannot change its status once started: a provider failure mid-stream (or
        an audit failure at the end) aborts the response, so the consumer sees a truncated
        transfer, never a complete-looking partial export.
        """
        wanted = tuple(sorted(decision.items))
        carry = b""
        outcome, status = "ok", 200
        error: BaseException | None = None
        try:
            pending: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_any():
                pending.append(chunk)
                size += len(chunk)
                if size < EXPORT_BATCH:
                    continue  # filter in large batches: the per-batch cost is fixed
                # One copy per batch: join once, hand the parser a view, keep only the
                # unfinished line (copies of ~1 MB batches were a third of export time).
                data = b"".join([carry, *pending])
                pending, size = [], 0
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1 :]
                out, count = checked_lines(route.provider, data, cut, wanted)
                call.records += count
                yield out
            if pending:
                data = b"".join([carry, *pending])
                cut = data.rfind(b"\n")
                carry = data[cut + 1 :]
                if cut >= 0:
                    out, count = checked_lines(route.provider, data, cut, wanted)
                    call.records += count
                    yield out
            if carry.strip():
                raise ProviderBadResponse(
                    route.provider, "the provider's export ended in the middle of a record"
                )
        except ProviderBadResponse as exc:
            outcome, status, error = exc.code, exc.status_code, exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            outcome, status = "provider.unavailable", 502
            if isinstance(exc, TimeoutError):
                outcome, status = "provider.timeout", 504
            error = exc
        except (GeneratorExit, asyncio.CancelledError) as exc:
            # The consumer disconnected (the server closes or cancels the body iterator):
            # count what was sent against the quota and audit it, then let teardown go on.
            error = exc
            if call.records and decision.grant_id is not None:
                self.grants.consume(decision.grant_id, call.records)
            self.metrics.delivered(route.provider, call.records)
            self.holds.release(call, decision)
            self._abandoned(call)
            raise
        finally:
            await upstream.__aexit__(
                type(error) if error else None, error, error.__traceback__ if error else None
            )
        if call.records and decision.grant_id is not None:
            self.grants.consume(decision.grant_id, call.records)
        self.holds.release(call, decision)
        self.metrics.delivered(route.provider, call.records)
        await self._finish(call, outcome, status)
        if error is not None:
            raise error


def _path_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)


def build_broker(ctx: AppContext, audit: AuditWriter) -> Broker:
    """The broker of one app, with its upstream client, metrics and route cache, its
    lookups audited by ``audit``.

    ``ctx.broker_config`` overrides timeouts, retries and breaker settings, e.g. in tests.
    Provider calls are signed with credentials derived from ``ctx.provider_secret``; the
    settings' ``upstream_*`` add mTLS.
    """
    config = ctx.broker_config or UpstreamConfig()
    settings = ctx.settings
    if settings.upstream_client_cert or settings.upstream_ca:
        config = dataclasses.replace(
            config,
            client_cert=_path_or_none(settings.upstream_client_cert),
            client_key=_path_or_none(settings.upstream_client_key),
            ca_file=_path_or_none(settings.upstream_ca),
        )
    upstream = Upstream(
        config, credentials=functools.partial(derive_provider_secret, ctx.provider_secret)
    )
    metrics = BrokerMetrics()
    broker = Broker(
        db=ctx.db,
        auth=ctx.auth,
        clock=ctx.clock,
        ctx=ctx,
        upstream=upstream,
        audit=audit,
        metrics=metrics,
        self_url=(settings.builtin_departments_url or settings.self_url)
        if settings.mock_departments
        else None,
    )
    metrics.watch(audit, upstream, broker.lookups)
    return broker
