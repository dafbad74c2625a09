"""``/api/v1/federation/applications``: the peer platform forwards an application for a
topic published to it, and hears back how the review went (see
:mod:`exchange.federation.forwarding`). Signed calls and signed answers, as every way in
of the peer; audited here under the forward's correlation id."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from exchange.authz.router import Calendar
from exchange.broker.errors import client_error
from exchange.context import Ctx
from exchange.errors import ExchangeError
from exchange.federation import disputes, forwarding, relay
from exchange.federation.runtime import PREFIX, Federation
from exchange.federation.signed import PEER_ERRORS, SIGNED, verified

router = APIRouter(prefix=PREFIX, tags=["federation"])

_BAD_FORWARD = 'the body is {"origin_application_id", "correlation_id", "consumer", "topic", ...}'


@router.post(relay.APPLICATIONS, openapi_extra=SIGNED, responses=PEER_ERRORS)
async def forwarded_application(request: Request, ctx: Ctx, calendar: Calendar) -> Response:
    """An application of a department of the peer platform for a topic published to it,
    forwarded for review: filed here as an application of the peer's unit on behalf of
    that department, in the provider department's review queue with its deadline. The
    answer is its state (``{"state": ...}``); forwarding the same one again answers the
    same application."""
    peer, body = await verified(ctx, request, None)
    fed = peer.fed
    started = time.perf_counter()
    correlation: str | None = None
    consumer = "?"
    try:
        try:
            forward = orjson.loads(body)
            if not isinstance(forward, dict):
                raise TypeError
            correlation = str(forward["correlation_id"])[:64]
            consumer = str(forward["consumer"])[:32]
            if not isinstance(forward["items"], list) or not forward["items"]:
                raise ValueError
            int(forward["origin_application_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise client_error("bad_input", _BAD_FORWARD, 422) from None

        def file() -> dict[str, Any]:
            with ctx.db.session() as session:
                return forwarding.receive_forward(
                    session,
                    forward,
                    peer_code=fed.peer_code,
                    now=ctx.clock.now(),
                    today=ctx.clock.today(),
                    calendar=calendar,
                    review_days=ctx.settings.review_days,
                )

        try:
            state = await run_in_threadpool(file)
        except (KeyError, TypeError, ValueError):
            raise client_error("bad_input", _BAD_FORWARD, 422) from None
    except ExchangeError as exc:
        await _audit(fed, peer.rid, correlation, consumer, None, [], exc.code, exc.status_code)
        return peer.error(exc)
    await _audit(
        fed,
        peer.rid,
        correlation,
        consumer,
        state,
        list(state["decisions"]),
        "ok",
        200,
        started=started,
    )
    return peer.answer(orjson.dumps({"state": state}))


@router.post(relay.STATES, openapi_extra=SIGNED, responses=PEER_ERRORS)
async def application_states(request: Request, ctx: Ctx) -> Response:
    """New states of applications this platform forwarded to the peer (a review decided,
    the grant revoked there): each applied once, in order; the decided items are
    mirrored and the grant here follows."""
    peer, body = await verified(ctx, request, None)
    fed = peer.fed
    try:
        states = orjson.loads(body)["states"]
        if not isinstance(states, list) or not all(isinstance(s, dict) for s in states):
            raise TypeError
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return peer.error(client_error("bad_input", 'the body is {"states": [...]}', 422))
    applied: dict[str, int] = {}
    for state in states[:1000]:
        started = time.perf_counter()
        correlation = str(state.get("correlation_id"))[:64]
        try:
            done = await run_in_threadpool(_apply, fed, state)
        except ExchangeError as exc:
            done = exc.code
        except (KeyError, TypeError, ValueError):
            done = "client.bad_input"
        applied[done] = applied.get(done, 0) + 1
        await _audit(
            fed,
            peer.rid,
            correlation,
            None,
            state,
            [],
            "ok" if done in ("decided", "unchanged", "revoked") else done,
            200,
            started=started,
            case=f"state v{state.get('version')} of the {fed.peer_level} platform's "
            f"application {state.get('application_id')}: {done}",
        )
    return peer.answer(orjson.dumps({"applied": applied}))


@router.post(relay.DISPUTES, openapi_extra=SIGNED, responses=PEER_ERRORS)
async def application_disputes(request: Request, ctx: Ctx) -> Response:
    """The events of disputes on forwarded applications (opened, messages, the decision),
    from the peer (see :mod:`exchange.federation.disputes`): each applied once, in order,
    to this platform's side of the application; audited here under its correlation id."""
    peer, body = await verified(ctx, request, None)
    fed = peer.fed
    try:
        items = orjson.loads(body)["disputes"]
        if not isinstance(items, list) or not all(
            isinstance(d, dict) and isinstance(d.get("events"), list) for d in items
        ):
            raise TypeError
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return peer.error(client_error("bad_input", 'the body is {"disputes": [...]}', 422))
    applied: dict[str, int] = {}
    for item in items[:100]:
        started = time.perf_counter()
        correlation = str(item.get("correlation_id"))[:64]
        try:
            done = await run_in_threadpool(_apply_disputes, fed, item)
            outcome = "ok"
        except ExchangeError as exc:
            done, outcome = {exc.code: 1}, exc.code
        except (KeyError, TypeError, ValueError):
            done, outcome = {"client.bad_input": 1}, "client.bad_input"
        for what, n in done.items():
            applied[what] = applied.get(what, 0) + n
        kinds = ", ".join(str(e.get("kind")) for e in item["events"] if isinstance(e, dict))
        await _audit(
            fed,
            peer.rid,
            correlation,
            None,
            None,
            [],
            outcome,
            200,
            started=started,
            case=f"dispute of the {fed.peer_level} platform's application "
            f"{item.get('application_id')}: {kinds}: "
            + ", ".join(f"{k} {v}" for k, v in sorted(done.items())),
        )
    return peer.answer(orjson.dumps({"applied": applied}))


def _apply_disputes(fed: Federation, item: dict[str, Any]) -> dict[str, int]:
    with fed.db.session() as session:
        return disputes.apply_events(
            session,
            item,
            peer_code=fed.peer_code,
            peer_level=fed.peer_level,
            now=fed.ctx.clock.now(),
            today=fed.ctx.clock.today(),
        )


def _apply(fed: Federation, state: dict[str, Any]) -> str:
    with fed.db.session() as session:
        return forwarding.apply_state(
            session,
            state,
            peer_code=fed.peer_code,
            peer_level=fed.peer_level,
            now=fed.ctx.clock.now(),
            today=fed.ctx.clock.today(),
        )


async def _audit(
    fed: Federation,
    rid: str,
    correlation: str | None,
    consumer: str | None,
    state: dict[str, Any] | None,
    items: list[str],
    outcome: str,
    status: int,
    *,
    started: float | None = None,
    case: str | None = None,
) -> None:
    await relay.record(
        fed,
        fed.audit_entry(
            request_id=rid,
            correlation_id=correlation,
            consumer=fed.peer_code,
            provider=(state or {}).get("provider"),
            resource_code=(state or {}).get("topic") if case is None else None,
            items=items,
            case=case
            or (
                f"application forwarded by the {fed.peer_level} platform for {consumer}"
                + (f": application {state['application_id']}" if state else "")
            ),
            records=0,
            outcome=outcome,
            status=status,
            started=started if started is not None else time.perf_counter(),
        ),
    )
