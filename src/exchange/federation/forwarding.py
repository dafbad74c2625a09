"""Applications forwarded across levels: reviewed by the provider department of the
platform that holds the data, mirrored on the platform that applied.

A department of one platform applies for a topic mounted from the peer (a provincial
department for a city topic). Unconditional items are granted here at once as for any
topic; items that need the provider's review are not reviewed here (the mounted topic's
provider is the peer platform's unit, not a department that can judge): the application
is marked ``forwarded_to`` the peer and forwarded (:func:`on_submitted` queues it in its
own transaction). The peer files it as an application of this platform's unit on behalf
of the department (:func:`receive_forward`), so it lands in its provider department's
normal review queue with its own deadline, and the unit's grant there carries the items
this platform's grant rests on. Every change of that application or of its grant bumps a
version (:func:`on_decided`, :func:`on_grant_revoked`); each state flows back and is
applied here once and in order (:func:`apply_state`): decided items mirrored, the grant
following the peer's terms, a revocation at the peer revoking the grant here.

Both sides keep a :class:`~exchange.federation.models.Forward` row with one correlation
id, under which both audit trails file every call of the exchange.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.authn import Principal
from exchange.authz import service as authz_service
from exchange.authz.calendar import WorkingCalendar
from exchange.authz.models import Application, ApplicationEvent, Grant
from exchange.authz.schemas import ApplicationCreate, ItemOutcome
from exchange.errors import NotFound, ValidationFailed
from exchange.federation.models import Forward, Mount, Publication
from exchange.members.models import Department

__all__ = [
    "apply_refusal",
    "apply_state",
    "forward_payload",
    "on_decided",
    "on_grant_revoked",
    "on_submitted",
    "pending_forwards",
    "pending_states",
    "receive_forward",
    "state_of",
]

ORIGIN, REVIEW = "origin", "review"


def _row(session: Session, role: str, application_id: int) -> Forward | None:
    return session.scalar(
        select(Forward).where(Forward.role == role, Forward.application_id == application_id)
    )


# -- the platform that applied (origin) -------------------------------------------------


def on_submitted(session: Session, app: Application, peer_level: str, now: dt.datetime) -> bool:
    """Queue an application for a mounted topic for the peer's review when it has items
    to review; returns whether it did (the caller then wakes the delivery)."""
    if app.on_behalf_of is not None or app.forwarded_to is not None:
        return False
    mount = session.scalar(select(Mount).where(Mount.resource_code == app.resource_code))
    if mount is None or mount.status != "published":
        return False
    if not any(app.outcomes[f].outcome == ItemOutcome.pending.value for f in app.items):
        return False
    app.forwarded_to = peer_level
    row = Forward(
        role=ORIGIN,
        application_id=app.id,
        correlation_id=uuid.uuid4().hex,
        consumer=app.consumer,
        resource_code=app.resource_code,
        version=1,
        sent_version=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.add(
        ApplicationEvent(
            application_id=app.id,
            at=now,
            actor=authz_service.PLATFORM,
            kind="forwarded",
            reason=None,
            detail={
                "platform": peer_level,
                "peer_topic": mount.peer_resource_code,
                "correlation_id": row.correlation_id,
            },
        )
    )
    session.flush()
    return True


def pending_forwards(session: Session) -> list[tuple[int, str, dict[str, Any]]]:
    """Forwards the peer has not taken yet: (row id, correlation id, body of the call)."""
    rows = session.scalars(
        select(Forward)
        .where(Forward.role == ORIGIN, Forward.sent_version < Forward.version)
        .order_by(Forward.id)
        .limit(100)
    ).all()
    return [(r.id, r.correlation_id, forward_payload(session, r)) for r in rows]


def forward_payload(session: Session, row: Forward) -> dict[str, Any]:
    """What the peer is asked to file: the application's terms, on its own topic code."""
    app = session.get(Application, row.application_id)
    mount = session.scalar(select(Mount).where(Mount.resource_code == row.resource_code))
    assert app is not None
    assert mount is not None
    dept = session.get(Department, app.consumer)
    return {
        "origin_application_id": app.id,
        "origin_topic": app.resource_code,
        "correlation_id": row.correlation_id,
        "consumer": app.consumer,
        "consumer_name": dept.name if dept is not None else None,
        "topic": mount.peer_resource_code,
        # Refused items stay refused here (不予共享): the peer is asked for the others, so
        # its grant to this platform also carries the unconditional ones granted here.
        "items": [f for f in app.items if app.outcomes[f].outcome != ItemOutcome.refused.value],
        "purpose": {"scope": app.purpose_scope, "text": app.purpose_text},
        "legal_function": app.legal_function,
        "valid_from": app.valid_from.isoformat(),
        "valid_until": app.valid_until.isoformat(),
        "daily_quota": app.daily_quota,
        "delivery": app.delivery,
    }


def apply_state(
    session: Session,
    state: dict[str, Any],
    *,
    peer_code: str,
    peer_level: str,
    now: dt.datetime,
    today: dt.date,
) -> str:
    """Apply one state of the peer's application (in the caller's transaction): the
    decided items mirrored, the grant following; returns what it did."""
    row = session.scalar(
        select(Forward).where(
            Forward.role == ORIGIN, Forward.correlation_id == str(state["correlation_id"])
        )
    )
    if row is None:
        raise NotFound(
            f"no application forwarded under correlation id {state['correlation_id']}",
            code="forward_not_found",
        )
    peer_app = int(state["application_id"])
    if row.peer_application_id not in (None, peer_app):
        raise ValidationFailed(
            "the state names another application than the one the forward became",
            code="forward_mismatch",
        )
    version = int(state["version"])
    row.sent_version = max(row.sent_version, row.version)  # the peer has it, it answers
    row.peer_application_id = peer_app
    if version <= row.peer_version:
        return "unchanged"
    app = session.get(Application, row.application_id)
    assert app is not None
    deadline = state.get("review_deadline")
    if deadline and app.status == "pending_review":
        app.review_deadline = dt.datetime.fromisoformat(str(deadline))
    reviewer = f"{peer_code}:{state.get('reviewed_by') or authz_service.PLATFORM}"
    decided = authz_service.mirror_review(
        session,
        app,
        {str(k): dict(v) for k, v in dict(state["decisions"]).items()},
        reviewer=reviewer,
        reason=state.get("review_reason"),
        valid_until=dt.date.fromisoformat(str(state["valid_until"])),
        daily_quota=None if state.get("daily_quota") is None else int(state["daily_quota"]),
        platform=peer_level,
        now=now,
        today=today,
    )
    done = "decided" if decided else "unchanged"
    grant_state = state.get("grant") or {}
    if grant_state.get("status") == "revoked" and app.grant_id is not None:
        grant = session.get(Grant, app.grant_id)
        if grant is not None and grant.status != "revoked":
            reason = (
                f"the {peer_level} platform revoked its grant: {grant_state.get('reason') or ''}"
            ).strip()
            authz_service.revoke(session, grant, reason, Principal(grant.provider), now=now)
            done = "revoked"
    row.peer_version, row.updated_at = version, now
    return done


def apply_refusal(
    session: Session, row_id: int, code: str, message: str, peer_level: str, now: dt.datetime
) -> None:
    """The peer refused to file the forward (its own rules: a retired topic, a purpose
    it does not offer): the items waiting for its review are rejected with its reason."""
    row = session.get(Forward, row_id)
    if row is None or row.sent_version >= row.version:
        return
    row.sent_version, row.updated_at = row.version, now
    app = session.get(Application, row.application_id)
    assert app is not None
    outcomes = {
        f: {"outcome": "rejected", "code": "rejected", "reason": f"{code}: {message}"[:500]}
        for f in app.items
    }
    authz_service.mirror_review(
        session,
        app,
        outcomes,
        reviewer=f"{peer_level} platform",
        reason=message[:500],
        valid_until=app.valid_until,
        daily_quota=app.daily_quota,
        platform=peer_level,
        now=now,
        today=now.date(),
    )


# -- the platform that reviews (review) ---------------------------------------------------


def receive_forward(
    session: Session,
    body: dict[str, Any],
    *,
    peer_code: str,
    now: dt.datetime,
    today: dt.date,
    calendar: WorkingCalendar,
    review_days: int,
) -> dict[str, Any]:
    """File the peer's forward as an application of the peer's unit on behalf of its
    department (once: a forward delivered twice answers the same application); returns
    its state, which the answer carries back."""
    origin_id = int(body["origin_application_id"])
    found = session.scalar(
        select(Forward).where(Forward.role == REVIEW, Forward.peer_application_id == origin_id)
    )
    if found is not None:
        return state_of(session, found)
    correlation = str(body["correlation_id"])[:64]
    topic_code = str(body["topic"])
    if session.get(Publication, topic_code) is None:
        raise NotFound(f"{topic_code} is not published to the peer platform", code="not_published")
    valid_from = max(dt.date.fromisoformat(str(body["valid_from"])), today)
    try:
        spec = ApplicationCreate.model_validate(
            {
                "topic": topic_code,
                "items": body["items"],
                "purpose": body["purpose"],
                "legal_function": body["legal_function"],
                "valid_from": valid_from.isoformat(),
                "valid_until": body["valid_until"],
                "daily_quota": body.get("daily_quota"),
                "delivery": body.get("delivery") or "api",
            }
        )
    except ValidationError as exc:
        raise ValidationFailed(
            f"the forwarded application is not valid here: {exc.errors()[0]['msg']}",
            code="bad_forward",
        ) from None
    app = authz_service.submit(
        session,
        spec,
        Principal(peer_code),
        now=now,
        today=today,
        calendar=calendar,
        review_days=review_days,
    )
    app.on_behalf_of = str(body["consumer"])[:64]
    row = Forward(
        role=REVIEW,
        application_id=app.id,
        peer_application_id=origin_id,
        correlation_id=correlation,
        consumer=str(body["consumer"])[:32],
        resource_code=app.resource_code,
        # The state in the answer is version 1: the peer holds it once it answers.
        version=1,
        sent_version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return state_of(session, row)


def state_of(session: Session, row: Forward) -> dict[str, Any]:
    """The review side's application as the origin mirrors it."""
    app = session.get(Application, row.application_id)
    assert app is not None
    grant = session.get(Grant, app.grant_id) if app.grant_id is not None else None
    return {
        "origin_application_id": row.peer_application_id,
        "application_id": app.id,
        "correlation_id": row.correlation_id,
        "version": row.version,
        "status": app.status,
        "topic": app.resource_code,
        "provider": app.provider,
        "decisions": {
            f: {
                "outcome": app.outcomes[f].outcome,
                "code": app.outcomes[f].code,
                "reason": app.outcomes[f].reason,
            }
            for f in app.items
        },
        "review_deadline": app.review_deadline.isoformat() if app.review_deadline else None,
        "reviewed_by": app.reviewed_by,
        "review_reason": app.review_reason,
        # The terms in force: the grant's once there is one (the reviewer may have
        # shortened them), the request's before.
        "valid_until": (grant.valid_until if grant is not None else app.valid_until).isoformat(),
        "daily_quota": grant.daily_quota if grant is not None else app.daily_quota,
        "grant": None
        if grant is None
        else {"id": grant.id, "status": grant.status, "reason": grant.status_reason},
    }


def on_decided(session: Session, app: Application, now: dt.datetime) -> bool:
    """A forwarded application was decided here: its new state is due to the peer."""
    if app.on_behalf_of is None:
        return False
    row = _row(session, REVIEW, app.id)
    if row is None:
        return False
    row.version += 1
    row.updated_at = now
    return True


def on_grant_revoked(session: Session, grant: Grant, peer_code: str, now: dt.datetime) -> bool:
    """A grant to the peer's unit was revoked: every forwarded application it carried
    owes the peer a new state (whose grant is revoked there in turn)."""
    if grant.consumer != peer_code:
        return False
    rows = session.scalars(
        select(Forward)
        .join(Application, Application.id == Forward.application_id)
        .where(Forward.role == REVIEW, Application.grant_id == grant.id)
    ).all()
    for row in rows:
        row.version += 1
        row.updated_at = now
    return bool(rows)


def pending_states(session: Session) -> list[tuple[int, int, dict[str, Any], Application]]:
    """States the peer has not acknowledged: (row id, version, state, application)."""
    rows = session.scalars(
        select(Forward)
        .where(Forward.role == REVIEW, Forward.sent_version < Forward.version)
        .order_by(Forward.id)
        .limit(100)
    ).all()
    out = []
    for r in rows:
        app = session.get(Application, r.application_id)
        assert app is not None
        out.append((r.id, r.version, state_of(session, r), app))
    return out


def mark_sent(session: Session, sent: list[tuple[int, int]]) -> None:
    for row_id, version in sent:
        row = session.get(Forward, row_id)
        if row is not None and row.sent_version < version:
            row.sent_version = version
