"""争议: a refused consumer's dispute, its negotiation thread and the operator's decision."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.authn import Principal
from exchange.authz.access import DisputeNotFound, fetch_as_party, load
from exchange.authz.events import ApplicationDecided
from exchange.authz.grants import grant_items
from exchange.authz.models import Application, Dispute, DisputeMessage
from exchange.authz.outcomes import (
    check_items_in,
    items_with,
    reason_required,
    record,
    settle_status,
)
from exchange.authz.reviews import live_topic
from exchange.authz.schemas import (
    ApplicationStatus,
    DisputeCreate,
    DisputeDecide,
    DisputeDecision,
    DisputeOut,
    DisputeRecord,
    ItemOutcome,
    MessageOut,
    ReasonCode,
)
from exchange.db.reactions import emit
from exchange.errors import Conflict, NotPermitted, ValidationFailed


def open_dispute(
    session: Session, app: Application, body: DisputeCreate, caller: Principal, *, now: dt.datetime
) -> Dispute:
    """争议: the refused consumer asks for coordination of its refused items."""
    if caller.code != app.consumer:
        raise NotPermitted(
            f"only the applicant {app.consumer!r} may dispute application {app.id}",
            code="not_your_application",
        )
    _not_a_mirror(app)
    if session.scalar(select(Dispute.id).where(Dispute.application_id == app.id)):
        raise Conflict(f"application {app.id} already has a dispute", code="dispute_exists")
    refused = items_with(app, ItemOutcome.refused, ItemOutcome.rejected)
    if app.status == ApplicationStatus.pending_review.value or not refused:
        raise Conflict(
            f"application {app.id} has no refused items to dispute (status {app.status})",
            code="nothing_refused",
        )
    if not body.reason:
        raise reason_required("a dispute")
    items = list(body.items) if body.items is not None else refused
    check_items_in(items, refused, "item_not_refused", "refused")
    dispute = Dispute(
        application_id=app.id,
        consumer=app.consumer,
        provider=app.provider,
        items=items,
        status="open",
        opened_at=now,
        reason=body.reason,
    )
    session.add(dispute)
    app.status = ApplicationStatus.disputed.value
    session.flush()
    record(
        session,
        app,
        caller.code,
        "dispute_opened",
        now,
        body.reason,
        items=items,
        dispute_id=dispute.id,
    )
    return dispute


def _not_a_mirror(app: Application) -> None:
    """An application filed here for the peer platform's department (``on_behalf_of``) is
    disputed where that department applied; its dispute here mirrors that one and is
    decided there (exchange.federation.disputes): one dispute, one decision."""
    if app.on_behalf_of is not None:
        raise Conflict(
            f"application {app.id} was forwarded by the peer platform for "
            f"{app.on_behalf_of}: its dispute is opened and decided there",
            code="disputed_at_peer",
        )


def get_dispute(
    session: Session, dispute_id: int, caller: Principal, *, for_update: bool = False
) -> Dispute:
    """A dispute both sides and the operator may see; 403 otherwise (``for_update``: as
    :func:`get_application`)."""
    return fetch_as_party(
        session,
        Dispute,
        dispute_id,
        caller,
        for_update=for_update,
        not_found=DisputeNotFound,
        refusal="dispute {key} is not between {caller!r} and another party",
        refusal_code="not_your_dispute",
    )


def _require_open(dispute: Dispute) -> None:
    if dispute.status != "open":
        raise Conflict(f"dispute {dispute.id} is already decided", code="dispute_closed")


def post_message(
    session: Session, dispute: Dispute, body: str, caller: Principal, *, now: dt.datetime
) -> DisputeMessage:
    """协商: one message of the negotiation thread (either side, or the operator)."""
    _require_open(dispute)
    message = DisputeMessage(dispute_id=dispute.id, at=now, author=caller.code, body=body)
    session.add(message)
    app = session.get(Application, dispute.application_id)
    assert app is not None  # the foreign key guarantees it
    record(session, app, caller.code, "dispute_message", now, body, dispute_id=dispute.id)
    session.flush()
    return message


def decide_dispute(
    session: Session,
    dispute: Dispute,
    body: DisputeDecide,
    caller: Principal,
    *,
    now: dt.datetime,
    today: dt.date,
) -> Dispute:
    """协调决定: the operator grants all, part, or upholds the refusal, with a reason."""
    caller.require_operator()
    _require_open(dispute)
    if not body.reason:
        raise reason_required("a dispute decision")
    if body.decision is DisputeDecision.grant:
        granted = list(dispute.items)
    elif body.decision is DisputeDecision.partial:
        if not body.items:
            raise ValidationFailed(
                "items: a partial grant names the disputed items it grants",
                field="items",
                code="items_required",
            )
        check_items_in(body.items, dispute.items, "item_not_disputed", "disputed")
        granted = list(body.items)
    else:
        granted = []
    # Locked after the dispute (the order every path takes: dispute, application, grant).
    app = load(session, Application, dispute.application_id, for_update=True)
    assert app is not None  # the foreign key guarantees it
    _not_a_mirror(app)
    if granted:
        topic = live_topic(session, app)
        in_catalog = {it["field"] for it in topic.data["items"]}
        granted = [i for i in granted if i in in_catalog]
    for item in granted:
        app.outcomes[item].settle(ItemOutcome.granted, ReasonCode.dispute_granted, body.reason)
    detail: dict[str, Any] = {"decision": body.decision.value, "items": granted}
    if granted:
        grant = grant_items(
            session,
            app,
            items_with(app, ItemOutcome.granted),
            valid_until=app.valid_until,
            daily_quota=app.daily_quota,
            actor=caller.code,
            now=now,
            today=today,
        )
        detail["grant_id"] = grant.id
    dispute.status = "decided"
    dispute.decision = body.decision.value
    dispute.decided_items = granted
    dispute.decided_at, dispute.decided_by, dispute.decision_reason = now, caller.code, body.reason
    settle_status(app)
    record(session, app, caller.code, "dispute_decided", now, body.reason, **detail)
    session.flush()
    emit(session, ApplicationDecided(app))
    return dispute


def dispute_out(session: Session, dispute: Dispute) -> DisputeOut:
    """The row's columns are the schema's fields, read by attribute; only the messages, kept
    in their own table, are fetched here."""
    messages = session.scalars(
        select(DisputeMessage)
        .where(DisputeMessage.dispute_id == dispute.id)
        .order_by(DisputeMessage.id)
    )
    record = DisputeRecord.model_validate(dispute, from_attributes=True)
    return DisputeOut(
        **dict(record),
        messages=[MessageOut.model_validate(m, from_attributes=True) for m in messages],
    )
