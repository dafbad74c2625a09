"""The provider's review of pending items and its deadline: approve, reject, the mirror of a
peer platform's review for forwarded applications, and whether a review is overdue."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from exchange.authn import Principal
from exchange.authz.events import ApplicationDecided
from exchange.authz.grants import grant_items
from exchange.authz.models import Application
from exchange.authz.outcomes import (
    check_items_in,
    items_with,
    reason_required,
    record,
    settle_status,
)
from exchange.authz.schemas import (
    PLAIN_CODE,
    ApplicationStatus,
    Approve,
    ItemOutcome,
    ReasonCode,
)
from exchange.catalog import service as catalog_service
from exchange.catalog.models import Topic
from exchange.catalog.schemas import TopicStatus
from exchange.db.reactions import emit
from exchange.errors import Conflict, ValidationFailed


def _require_pending(app: Application) -> None:
    if app.status != ApplicationStatus.pending_review.value:
        raise Conflict(
            f"application {app.id} is {app.status}, not pending review", code="not_pending"
        )


def _require_reviewed_here(app: Application) -> None:
    if app.forwarded_to is not None:
        raise Conflict(
            f"application {app.id} is reviewed by the provider department at the "
            f"{app.forwarded_to} platform; its decision is mirrored here",
            code="reviewed_at_peer",
            detail={"platform": app.forwarded_to},
        )


def live_topic(session: Session, app: Application) -> Topic:
    topic = catalog_service.get_topic_by_code(session, app.resource_code)
    if topic.status == TopicStatus.retired.value:
        raise catalog_service.TopicRetired(f"topic {topic.resource_code} is retired")
    return topic


def approve(
    session: Session,
    app: Application,
    body: Approve,
    caller: Principal,
    *,
    now: dt.datetime,
    today: dt.date,
) -> Application:
    """The provider approves pending items, possibly fewer, shorter or with a lower quota."""
    caller.require(app.provider)
    _require_pending(app)
    _require_reviewed_here(app)
    pending = items_with(app, ItemOutcome.pending)
    approved = list(body.items) if body.items is not None else pending
    check_items_in(approved, pending, "item_not_pending", "pending review")
    valid_until = body.valid_until or app.valid_until
    if valid_until > app.valid_until or valid_until < app.valid_from:
        raise ValidationFailed(
            f"valid_until: must lie between {app.valid_from} and the requested {app.valid_until}",
            field="valid_until",
            code="validity_exceeds_request",
        )
    quota = body.daily_quota if body.daily_quota is not None else app.daily_quota
    if app.daily_quota is not None and quota is not None and quota > app.daily_quota:
        raise ValidationFailed(
            f"daily_quota: must not exceed the requested {app.daily_quota}",
            field="daily_quota",
            code="quota_exceeds_request",
        )
    left_out = [i for i in pending if i not in approved]
    if left_out and not body.reason:
        raise reason_required("an approval that leaves items out")
    topic = live_topic(session, app)
    # The catalog may have dropped an item while the application waited.
    in_catalog = {it["field"] for it in topic.data["items"]}
    gone = [i for i in approved if i not in in_catalog]
    approved = [i for i in approved if i in in_catalog]
    # A reason given for leaving items out belongs to those items only: the granted ones
    # carry the reviewer's reason only when the whole request was approved.
    for item in approved:
        app.outcomes[item].settle(
            ItemOutcome.granted, ReasonCode.approved, None if left_out else body.reason or None
        )
    for item in left_out:
        app.outcomes[item].settle(ItemOutcome.rejected, ReasonCode.left_out, body.reason)
    for item in gone:
        app.outcomes[item].settle(ItemOutcome.rejected, ReasonCode.removed_from_catalog, None)
    app.reviewed_at, app.reviewed_by, app.review_reason = now, caller.code, body.reason or None
    detail: dict[str, Any] = {"items": approved, "rejected": left_out + gone}
    if approved:
        granted_now = items_with(app, ItemOutcome.granted)
        grant = grant_items(
            session,
            app,
            granted_now,
            valid_until=valid_until,
            daily_quota=quota,
            actor=caller.code,
            now=now,
            today=today,
        )
        detail.update(grant_id=grant.id, valid_until=valid_until.isoformat(), daily_quota=quota)
    record(session, app, caller.code, "approved", now, body.reason or None, **detail)
    settle_status(app)
    session.flush()
    emit(session, ApplicationDecided(app))
    return app


def reject(
    session: Session, app: Application, reason: str, caller: Principal, *, now: dt.datetime
) -> Application:
    """The provider rejects every pending item; a refusal must give its reason."""
    caller.require(app.provider)
    if not reason:
        raise reason_required("a rejection")
    _require_pending(app)
    _require_reviewed_here(app)
    pending = items_with(app, ItemOutcome.pending)
    for item in pending:
        app.outcomes[item].settle(ItemOutcome.rejected, ReasonCode.rejected, reason)
    app.reviewed_at, app.reviewed_by, app.review_reason = now, caller.code, reason
    record(session, app, caller.code, "rejected", now, reason, items=pending)
    settle_status(app)
    session.flush()
    emit(session, ApplicationDecided(app))
    return app


def mirror_review(
    session: Session,
    app: Application,
    outcomes: dict[str, dict[str, Any]],
    *,
    reviewer: str,
    reason: str | None,
    valid_until: dt.date,
    daily_quota: int | None,
    platform: str,
    now: dt.datetime,
    today: dt.date,
) -> list[str]:
    """A forwarded application's pending items take the outcomes the peer platform's
    provider decided (``outcomes``: item → ``{"outcome", "code", "reason"}``); the granted
    ones join the consumer's grant here on the peer's terms, never wider than requested.
    Items the peer has not decided stay pending. Returns the items decided now."""
    pending = items_with(app, ItemOutcome.pending)
    final = {ItemOutcome.granted.value, ItemOutcome.refused.value, ItemOutcome.rejected.value}
    decided = [i for i in pending if (outcomes.get(i) or {}).get("outcome") in final]
    if not decided:
        return []
    for item in decided:
        peer = outcomes[item]
        outcome = ItemOutcome(peer["outcome"])
        code = peer.get("code")
        app.outcomes[item].settle(
            outcome,
            # A code this platform does not know reads as the outcome's plain one.
            ReasonCode(code)
            if isinstance(code, str) and code in ReasonCode.__members__
            else PLAIN_CODE[outcome],
            peer.get("reason"),
        )
    app.reviewed_at, app.reviewed_by, app.review_reason = now, reviewer[:32], reason
    granted = [i for i in decided if app.outcomes[i].outcome == ItemOutcome.granted.value]
    rejected = [i for i in decided if i not in granted]
    detail: dict[str, Any] = {"items": granted, "rejected": rejected, "platform": platform}
    if granted:
        grant = grant_items(
            session,
            app,
            items_with(app, ItemOutcome.granted),
            valid_until=min(valid_until, app.valid_until),
            daily_quota=daily_quota
            if app.daily_quota is None or daily_quota is None
            else min(daily_quota, app.daily_quota),
            actor=reviewer[:32],
            now=now,
            today=today,
        )
        detail["grant_id"] = grant.id
    record(
        session, app, reviewer[:32], "approved" if granted else "rejected", now, reason, **detail
    )
    settle_status(app)
    session.flush()
    return decided


def is_overdue(app: Application, now: dt.datetime) -> bool:
    return (
        app.status == ApplicationStatus.pending_review.value
        and app.review_deadline is not None
        and now > app.review_deadline
    )
