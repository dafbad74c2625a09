"""Carrying forwarded applications between the platforms (see
:mod:`exchange.federation.forwarding`): the origin's forwards up, the review side's
states back, each a signed call audited on both sides under the forward's correlation id.

Delivery runs in the federation's sync task (and at once when a forward or a decision
wakes it). A call that does not get through keeps its row pending for the next tick; a
forward the peer refuses by its own rules settles the application here as rejected.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from exchange.audit.writer import AuditUnavailable
from exchange.db.threads import run_joined
from exchange.federation import disputes, forwarding

if TYPE_CHECKING:
    from exchange.federation.runtime import Federation

__all__ = ["APPLICATIONS", "DISPUTES", "STATES", "deliver"]

APPLICATIONS = "/applications"
STATES = "/applications/states"
DISPUTES = "/applications/disputes"


async def deliver(fed: Federation) -> dict[str, int]:
    """Deliver pending forwards and pending states; counts of each delivered."""
    from exchange.federation.runtime import PREFIX

    done = {"forwarded": 0, "states": 0}
    for row_id, correlation, body in await run_joined(_read, fed, _pending_forwards):
        started = time.perf_counter()
        rid = uuid.uuid4().hex
        answer = await fed.client.call(
            "POST", PREFIX + APPLICATIONS, body=orjson.dumps(body), request_id=rid
        )
        outcome, status = "forwarded", answer.status
        if answer.status == 200:
            state = orjson.loads(answer.body)["state"]
            await run_joined(_apply_state, fed, state)
            done["forwarded"] += 1
        elif 400 <= answer.status < 500 and answer.status not in (401, 429):
            # Refused by the peer's own rules: final, the application settles here.
            code, message = _error_of(answer.body)
            outcome = code
            await run_joined(_refused, fed, row_id, code, message)
        else:
            code, _ = _error_of(answer.body)
            await _audit(fed, rid, correlation, body, code, status, started)
            raise ValueError(f"the peer did not take forward {correlation}: HTTP {status}")
        await _audit(fed, rid, correlation, body, outcome, status, started)
    pending = await run_joined(_read, fed, _pending_states)
    if pending:
        started = time.perf_counter()
        rid = uuid.uuid4().hex
        states = [state for _, _, state, _ in pending]
        answer = await fed.client.call(
            "POST", PREFIX + STATES, body=orjson.dumps({"states": states}), request_id=rid
        )
        for _, _, state, app in pending:
            await _audit_state(fed, rid, state, app, answer.status, started)
        if answer.status != 200:
            raise ValueError(f"the peer refused the applications' states: HTTP {answer.status}")
        await run_joined(_mark_sent, fed, [(r, v) for r, v, _, _ in pending])
        done["states"] = len(pending)
    done["disputes"] = await _deliver_disputes(fed)
    return done


async def _deliver_disputes(fed: Federation) -> int:
    """Dispute events of forwarded applications to the peer (see
    :mod:`exchange.federation.disputes`), one call for all; events mirrored from the peer
    are only stepped over. Returns the events delivered."""
    from exchange.federation.runtime import PREFIX

    pending = await run_joined(_read, fed, disputes.pending)
    carried = [body for _, _, body in pending if body["events"]]
    if carried:
        started = time.perf_counter()
        rid = uuid.uuid4().hex
        answer = await fed.client.call(
            "POST", PREFIX + DISPUTES, body=orjson.dumps({"disputes": carried}), request_id=rid
        )
        for body in carried:
            await _audit_dispute(fed, rid, body, answer.status, started)
        if answer.status != 200:
            raise ValueError(f"the peer refused the disputes' events: HTTP {answer.status}")
    if pending:
        await run_joined(_mark_disputes_sent, fed, [(r, e) for r, e, _ in pending])
    return sum(len(body["events"]) for body in carried)


def _mark_disputes_sent(fed: Federation, sent: list[tuple[int, int]]) -> None:
    with fed.db.session() as session:
        disputes.mark_sent(session, sent)


async def _audit_dispute(
    fed: Federation, rid: str, body: dict[str, Any], status: int, started: float
) -> None:
    """This side's record of carrying one application's dispute events to the peer."""
    kinds = ", ".join(e["kind"] for e in body["events"])
    await record(
        fed,
        fed.audit_entry(
            request_id=rid,
            correlation_id=str(body["correlation_id"]),
            consumer=fed.peer_code,
            provider=None,
            resource_code=None,
            items=[],
            case=f"dispute of application {body['application_id']} to the {fed.peer_level} "
            f"platform's application {body['peer_application_id']}: {kinds}"[:500],
            records=0,
            outcome="ok" if status == 200 else f"provider.http_{status}",
            status=status,
            started=started,
        ),
    )


def _read(fed: Federation, fn: Any) -> Any:
    with fed.db.sessions() as session:
        return fn(session)


def _pending_forwards(session: Any) -> list[tuple[int, str, dict[str, Any]]]:
    return forwarding.pending_forwards(session)


def _pending_states(session: Any) -> Any:
    out = forwarding.pending_states(session)
    for *_, app in out:
        session.expunge(app)
    return out


def _apply_state(fed: Federation, state: dict[str, Any]) -> str:
    with fed.db.session() as session:
        return forwarding.apply_state(
            session,
            state,
            peer_code=fed.peer_code,
            peer_level=fed.peer_level,
            now=fed.ctx.clock.now(),
            today=fed.ctx.clock.today(),
        )


def _refused(fed: Federation, row_id: int, code: str, message: str) -> None:
    with fed.db.session() as session:
        now = fed.ctx.clock.now()
        forwarding.apply_refusal(session, row_id, code, message, fed.peer_level, now)


def _mark_sent(fed: Federation, sent: list[tuple[int, int]]) -> None:
    with fed.db.session() as session:
        forwarding.mark_sent(session, sent)


def _error_of(body: bytes) -> tuple[str, str]:
    try:
        error = orjson.loads(body)["error"]
        return str(error["code"])[:48], str(error.get("message") or "")
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "provider.bad_response", "the peer answered outside the error model"


async def _audit(
    fed: Federation,
    rid: str,
    correlation: str,
    body: dict[str, Any],
    outcome: str,
    status: int,
    started: float,
) -> None:
    """The origin's record of forwarding one application."""
    await record(
        fed,
        fed.audit_entry(
            request_id=rid,
            correlation_id=correlation,
            consumer=str(body["consumer"])[:32],
            provider=fed.peer_code,
            resource_code=str(body["origin_topic"]),
            items=list(body["items"]),
            case=f"application {body['origin_application_id']} forwarded to the "
            f"{fed.peer_level} platform ({body['topic']})",
            records=0,
            outcome=outcome,
            status=status,
            started=started,
        ),
    )


async def _audit_state(
    fed: Federation, rid: str, state: dict[str, Any], app: Any, status: int, started: float
) -> None:
    """The review side's record of sending one application's state back."""
    await record(
        fed,
        fed.audit_entry(
            request_id=rid,
            correlation_id=str(state["correlation_id"]),
            consumer=fed.peer_code,
            provider=app.provider,
            resource_code=app.resource_code,
            items=list(app.items),
            case=f"state v{state['version']} of application {app.id} ({state['status']}) "
            f"for {app.on_behalf_of} at the {fed.peer_level} platform",
            records=0,
            outcome="ok" if status == 200 else f"provider.http_{status}",
            status=status,
            started=started,
        ),
    )


async def record(fed: Federation, entry: Any) -> None:
    audit = fed.ctx.audit
    if audit is not None:
        with contextlib.suppress(AuditUnavailable):
            await audit.record(entry)
