"""Disputes on a forwarded application, kept on both platforms.

A department refused on a forwarded application (:mod:`exchange.federation.forwarding`)
disputes it where it applied: the dispute and its decision are the origin platform's (its
operator coordinates its own departments). The platform that reviewed it holds the data,
so its operator and its provider department must see the dispute and take part in it:

* every event of the dispute at the origin (opened, each message, the decision) is carried
  to the review side's application by a signed call (``POST /applications/disputes``),
  audited on both sides under the forward's correlation id;
* the review side mirrors it as a dispute of its own application (the peer's unit against
  the provider department), which its provider and operator read through the usual
  ``/api/v1/disputes`` API; the provider's messages there travel back the same way into
  the origin's thread (authored ``<platform unit>:<department>``);
* the origin's decision is reflected: the review side's mirror is decided the same way, and
  items granted at the origin are granted to the peer's unit there too (otherwise the
  consumer would hold a grant the data's platform refuses to serve).

The mirror is not opened or decided at the review side itself (409 ``disputed_at_peer``):
one dispute, one decision. Each side keeps two cursors on its
:class:`~exchange.federation.models.Forward` row: its own dispute events delivered
(``dispute_sent``) and the peer's applied (``dispute_received``, the peer's event ids), so
a call delivered twice changes nothing and a platform that was down catches up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.authz.grants import grant_items
from exchange.authz.models import Application, ApplicationEvent, Dispute, DisputeMessage
from exchange.authz.outcomes import items_with, record, settle_status
from exchange.authz.schemas import ApplicationStatus, ItemOutcome, ReasonCode
from exchange.errors import NotFound, ValidationFailed
from exchange.federation.models import Forward

__all__ = ["KINDS", "apply_events", "mark_sent", "pending"]

KINDS = ("dispute_opened", "dispute_message", "dispute_decided")
ORIGIN, REVIEW = "origin", "review"
#: how many events one call carries at most (per application)
BATCH = 200


def _own(event: ApplicationEvent) -> bool:
    """An event that happened here (not one mirrored from the peer)."""
    return "peer_event" not in (event.detail or {})


def pending(session: Session) -> list[tuple[int, int, dict[str, Any]]]:
    """Dispute events of forwarded applications not yet delivered to the peer: (row id,
    the newest event id carried, what the call carries for the application)."""
    rows = session.execute(
        select(Forward, ApplicationEvent)
        .join(ApplicationEvent, ApplicationEvent.application_id == Forward.application_id)
        .where(
            ApplicationEvent.kind.in_(KINDS),
            ApplicationEvent.id > Forward.dispute_sent,
            Forward.peer_application_id.is_not(None),
        )
        .order_by(Forward.id, ApplicationEvent.id)
        .limit(1000)
    ).all()
    by_row: dict[int, tuple[Forward, list[ApplicationEvent]]] = {}
    for row, event in rows:
        by_row.setdefault(row.id, (row, []))[1].append(event)
    out = []
    for row, events in by_row.values():
        events = events[:BATCH]
        own = [e for e in events if _own(e)]
        body = {
            "correlation_id": row.correlation_id,
            "application_id": row.application_id,
            "peer_application_id": row.peer_application_id,
            "events": [
                {
                    "id": e.id,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "kind": e.kind,
                    "reason": e.reason,
                    "detail": e.detail or {},
                }
                for e in own
            ],
        }
        out.append((row.id, events[-1].id, body))
    return out


def mark_sent(session: Session, sent: list[tuple[int, int]]) -> None:
    for row_id, event_id in sent:
        row = session.get(Forward, row_id)
        if row is not None and row.dispute_sent < event_id:
            row.dispute_sent = event_id


def apply_events(
    session: Session,
    body: dict[str, Any],
    *,
    peer_code: str,
    peer_level: str,
    now: dt.datetime,
    today: dt.date,
) -> dict[str, int]:
    """Apply the peer's dispute events on one forwarded application (in the caller's
    transaction); counts by what each did. Events applied before are skipped."""
    row = session.scalar(
        select(Forward).where(Forward.correlation_id == str(body["correlation_id"]))
    )
    if row is None:
        raise NotFound(
            f"no forwarded application under correlation id {body['correlation_id']}",
            code="forward_not_found",
        )
    if row.peer_application_id != int(body["application_id"]) or row.application_id != int(
        body["peer_application_id"]
    ):
        raise ValidationFailed(
            "the dispute names other applications than the forward's", code="forward_mismatch"
        )
    app = session.get(Application, row.application_id, with_for_update=True)
    assert app is not None
    done: dict[str, int] = {}
    for event in sorted(body["events"], key=lambda e: int(e["id"])):
        event_id = int(event["id"])
        if event_id <= row.dispute_received:
            what = "unchanged"
        else:
            what = _apply_one(session, row, app, event, peer_code, peer_level, now, today)
            row.dispute_received = event_id
        done[what] = done.get(what, 0) + 1
    session.flush()
    return done


def _apply_one(
    session: Session,
    row: Forward,
    app: Application,
    event: dict[str, Any],
    peer_code: str,
    peer_level: str,
    now: dt.datetime,
    today: dt.date,
) -> str:
    kind = str(event["kind"])
    actor = f"{peer_code}:{event['actor']}"[:32]
    reason = None if event.get("reason") is None else str(event["reason"])
    detail = dict(event.get("detail") or {})
    mirrored = {"peer_event": int(event["id"]), "platform": peer_level}
    dispute = session.scalar(select(Dispute).where(Dispute.application_id == app.id))
    if kind == "dispute_message":
        if dispute is None or dispute.status != "open":
            return "ignored"
        session.add(DisputeMessage(dispute_id=dispute.id, at=now, author=actor, body=reason or ""))
        record(session, app, actor, kind, now, reason, dispute_id=dispute.id, **mirrored)
        return "message"
    if row.role != REVIEW:
        # Only the origin opens and decides: the review side never sends either.
        return "ignored"
    if kind == "dispute_opened":
        if dispute is not None:
            return "unchanged"
        items = [i for i in detail.get("items") or [] if i in app.items]
        dispute = Dispute(
            application_id=app.id,
            consumer=app.consumer,
            provider=app.provider,
            items=items,
            status="open",
            opened_at=now,
            reason=reason or "",
        )
        session.add(dispute)
        app.status = ApplicationStatus.disputed.value
        session.flush()
        record(
            session, app, actor, kind, now, reason, items=items, dispute_id=dispute.id, **mirrored
        )
        return "opened"
    if kind == "dispute_decided":
        if dispute is None or dispute.status != "open":
            return "ignored"
        granted = [i for i in detail.get("items") or [] if i in dispute.items]
        for item in granted:
            app.outcomes[item].settle(ItemOutcome.granted, ReasonCode.dispute_granted, reason)
        extra: dict[str, Any] = {"decision": detail.get("decision"), "items": granted}
        if granted:
            grant = grant_items(
                session,
                app,
                items_with(app, ItemOutcome.granted),
                valid_until=app.valid_until,
                daily_quota=app.daily_quota,
                actor=actor,
                now=now,
                today=today,
            )
            extra["grant_id"] = grant.id
        dispute.status = "decided"
        dispute.decision = str(detail.get("decision") or "uphold")
        dispute.decided_items = granted
        dispute.decided_at, dispute.decided_by, dispute.decision_reason = now, actor, reason
        settle_status(app)
        record(session, app, actor, kind, now, reason, **extra, **mirrored)
        return "decided"
    return "ignored"
