"""Applications become grants: automatic for unconditional items, reviewed for conditional
ones, refused at once for not-shared ones; disputes, revocation and catalog events.

One application carries an outcome per item (pending, granted, refused, rejected). Granted
items land in the one current grant of the (consumer, topic) pair: the first grant opens
it, later decisions add items and renew its terms (validity, quota, purpose) to the latest
decision's. Every write that changes a grant announces it (:func:`grants_changed`), which is
how every process's grant cache learns of it once the transaction commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from exchange.authz.calendar import CalendarNotCovered, WorkingCalendar
from exchange.authz.models import (
    Application,
    ApplicationEvent,
    Dispute,
    DisputeMessage,
    Grant,
)
from exchange.authz.schemas import (
    ApplicationCreate,
    ApplicationOut,
    ApplicationStatus,
    Approve,
    DisputeCreate,
    DisputeDecide,
    DisputeDecision,
    DisputeOut,
    EventOut,
    GrantOut,
    GrantStatus,
    ItemDecisionOut,
    ItemOutcome,
    MessageOut,
    Purpose,
    ReasonCode,
    reason_code_of,
)
from exchange.catalog import service as catalog_service
from exchange.catalog.models import Topic
from exchange.catalog.schemas import TopicStatus
from exchange.db.freshness import announce
from exchange.db.reactions import emit
from exchange.errors import Conflict, NotFound, NotPermitted, Unavailable, ValidationFailed
from exchange.members.models import Department
from exchange.members.schemas import GOVERNMENT_KINDS
from exchange.members.service import Principal

PLATFORM = "platform"
MAX_VALIDITY = dt.timedelta(days=5 * 366)


class ApplicationNotFound(NotFound):
    code = "application_not_found"


class DisputeNotFound(NotFound):
    code = "dispute_not_found"


class GrantNotFound(NotFound):
    code = "grant_not_found"


def _reason_required(what: str) -> ValidationFailed:
    return ValidationFailed(
        f"reason: {what} must give a reason", field="reason", code="reason_required"
    )


# --- announcing -----------------------------------------------------------------------------


def grants_changed(session: Session, *, narrowed: bool = False) -> None:
    """Grants change in this transaction: every process's grant cache reloads once it
    commits (and the change is acknowledged only then, see :mod:`exchange.db.freshness`).

    ``narrowed``: the change takes something away (revoked, suspended, items removed,
    validity shortened, delivery or purpose changed). Only then do deliveries checked
    against the old grant have to finish before the change is acknowledged; a widening
    (a new grant, more items) does not wait for them.
    """
    announce(session, "authz")
    if narrowed:
        announce(session, "narrowed")


# --- helpers --------------------------------------------------------------------------------


def _event(
    session: Session,
    app: Application,
    actor: str,
    kind: str,
    now: dt.datetime,
    reason: str | None = None,
    **detail: Any,
) -> None:
    session.add(
        ApplicationEvent(
            application_id=app.id, at=now, actor=actor, kind=kind, reason=reason, detail=detail
        )
    )


def _outcomes(app: Application) -> dict[str, dict[str, Any]]:
    # A copy: JSON columns do not track in-place mutation.
    return {k: dict(v) for k, v in app.decisions.items()}


def _items_with(app: Application, *outcomes: ItemOutcome) -> list[str]:
    wanted = {o.value for o in outcomes}
    return [f for f in app.items if app.decisions[f]["outcome"] in wanted]


def _settle_status(app: Application) -> None:
    """Status from the per-item outcomes (a dispute in progress overrides it)."""
    outcomes = [app.decisions[f]["outcome"] for f in app.items]
    granted = outcomes.count(ItemOutcome.granted.value)
    if ItemOutcome.pending.value in outcomes:
        app.status = ApplicationStatus.pending_review.value
    elif granted == len(outcomes):
        app.status = ApplicationStatus.approved.value
    elif granted:
        app.status = ApplicationStatus.partially_approved.value
    else:
        app.status = ApplicationStatus.returned.value


_Row = TypeVar("_Row", Application, Dispute, Grant)


def _get(session: Session, model: type[_Row], key: int, for_update: bool) -> _Row | None:
    """``session.get``, with a row lock (SELECT … FOR UPDATE) when asked.

    Lock order, the same on every path so that two transactions cannot wait for each
    other: dispute, then application, then grant.
    """
    if not for_update:
        return session.get(model, key)
    return session.get(model, key, with_for_update=True, populate_existing=True)


def current_grant(
    session: Session, consumer: str, resource_code: str, *, for_update: bool = False
) -> Grant | None:
    """The newest grant of the pair, the one the check reads (locked with ``for_update``)."""
    stmt = (
        select(Grant)
        .where(Grant.consumer == consumer, Grant.resource_code == resource_code)
        .order_by(Grant.id.desc())
        .limit(1)
    )
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalar(stmt)


def _grant_items(
    session: Session,
    app: Application,
    items: Sequence[str],
    *,
    valid_until: dt.date,
    daily_quota: int | None,
    actor: str,
    now: dt.datetime,
    today: dt.date,
) -> Grant:
    """Put ``items`` into the pair's current grant (opening one if there is none usable)."""
    # Locked: a revocation committed between this read and the write below would leave
    # the approved items in a revoked grant (PostgreSQL; SQLite serialises writers anyway).
    grant = current_grant(session, app.consumer, app.resource_code, for_update=True)
    usable = grant is not None and grant.status == "active" and grant.valid_until >= today
    narrowed = False
    if grant is not None and usable:
        # The grant in force takes the application's terms: anything they take away
        # (shorter validity, a lower quota, another delivery or purpose) is a narrowing.
        narrowed = (
            valid_until < grant.valid_until
            or (
                daily_quota is not None
                and (grant.daily_quota is None or daily_quota < grant.daily_quota)
            )
            or app.delivery != grant.delivery
            or app.purpose_scope != grant.purpose_scope
            or app.valid_from > grant.valid_from
        )
    if grant is None or not usable:
        grant = Grant(
            consumer=app.consumer,
            provider=app.provider,
            resource_code=app.resource_code,
            items=sorted(items),
            status="active",
            created_at=now,
        )
        session.add(grant)
    else:
        grant.items = sorted(set(grant.items) | set(items))
    grant.purpose_scope = app.purpose_scope
    grant.purpose_text = app.purpose_text
    grant.legal_function = app.legal_function
    grant.delivery = app.delivery
    grant.valid_from = app.valid_from
    grant.valid_until = valid_until
    grant.daily_quota = daily_quota
    grant.updated_at = now
    grant.changed_by = actor
    session.flush()
    app.grant_id = grant.id
    grants_changed(session, narrowed=narrowed)
    return grant


def _check_items_in(items: Iterable[str], allowed: Sequence[str], code: str, what: str) -> None:
    extra = [i for i in items if i not in allowed]
    if extra:
        raise ValidationFailed(
            f"items: {', '.join(extra)} {'is' if len(extra) == 1 else 'are'} not {what} "
            f"(allowed: {', '.join(allowed) or 'none'})",
            field="items",
            code=code,
        )


# --- applications ---------------------------------------------------------------------------


def submit(
    session: Session,
    spec: ApplicationCreate,
    caller: Principal,
    *,
    now: dt.datetime,
    today: dt.date,
    calendar: WorkingCalendar,
    review_days: int,
) -> Application:
    """共享申请: decide every item by its sharing type; grant, queue or refuse at once."""
    if caller.is_operator:
        if spec.consumer is None:
            raise ValidationFailed(
                "consumer: the operator must name the department it applies for",
                field="consumer",
                code="consumer_required",
            )
        consumer = spec.consumer
        if session.get(Department, consumer) is None:
            raise ValidationFailed(
                f"consumer: no department with code {consumer!r}",
                field="consumer",
                code="unknown_consumer",
            )
    else:
        consumer = caller.code
        if spec.consumer is not None and spec.consumer != consumer:
            raise NotPermitted(
                f"department {caller.code!r} may not apply for {spec.consumer!r}",
                code="not_your_department",
            )
    topic = catalog_service.get_topic_by_code(session, spec.topic)
    if topic.status == TopicStatus.retired.value:
        raise catalog_service.TopicRetired(
            f"topic {topic.resource_code} is retired: no new applications"
        )
    if topic.provider == consumer:
        raise ValidationFailed(
            f"topic {topic.resource_code} is {consumer!r}'s own: no application needed",
            field="topic",
            code="own_topic",
        )
    catalog_items = {it["field"]: it for it in topic.data["items"]}
    _check_items_in(spec.items, list(catalog_items), "unknown_item", "items of the topic")
    valid_from = spec.valid_from or today
    if valid_from < today:
        raise ValidationFailed(
            "valid_from: validity cannot start in the past",
            field="valid_from",
            code="invalid_validity",
        )
    if spec.valid_until < valid_from:
        raise ValidationFailed(
            "valid_until: must not be before valid_from",
            field="valid_until",
            code="invalid_validity",
        )
    if spec.valid_until - valid_from > MAX_VALIDITY:
        raise ValidationFailed(
            "valid_until: a grant lasts at most five years",
            field="valid_until",
            code="validity_too_long",
        )
    sharing = topic.data.get("sharing", {})
    offered = sharing.get("usage_scopes")
    if offered and sharing.get("type") != "not_shared" and spec.purpose.scope.value not in offered:
        # The catalog states the uses a provider offers its data for (使用范围); data is
        # used only for the declared purpose, so an application outside them is refused
        # at once rather than left for the provider to reject. A not-shared topic offers
        # no use: its items are refused on their legal basis, and the way on from there
        # is a dispute, whatever the purpose.
        raise ValidationFailed(
            f"purpose.scope: {topic.resource_code} is offered for "
            f"{', '.join(offered)}, not {spec.purpose.scope.value}",
            field="purpose.scope",
            code="purpose_not_offered",
        )
    # 无条件共享 is "any government department may use it": a bank's or a utility's
    # application for unconditional items goes to the provider's review instead.
    unit = session.get(Department, consumer)
    government = unit is not None and unit.kind in GOVERNMENT_KINDS
    decisions: dict[str, dict[str, Any]] = {}
    for field in spec.items:
        kind = catalog_items[field]["sharing_type"]
        if kind == "unconditional" and not government:
            decisions[field] = {
                "sharing_type": kind,
                "outcome": "pending",
                "code": ReasonCode.not_government,
                "reason": None,
            }
        elif kind == "unconditional":
            decisions[field] = {
                "sharing_type": kind,
                "outcome": "granted",
                "code": ReasonCode.unconditional,
                "reason": None,
            }
        elif kind == "conditional":
            decisions[field] = {
                "sharing_type": kind,
                "outcome": "pending",
                "code": ReasonCode.conditional,
                "reason": sharing.get("conditions") or None,
            }
        else:
            basis = sharing.get("legal_basis") or "the catalog marks this item 不予共享"
            decisions[field] = {
                "sharing_type": kind,
                "outcome": "refused",
                "code": ReasonCode.not_shared,
                "reason": basis,
            }
    review_deadline: dt.datetime | None = None
    if any(d["outcome"] == "pending" for d in decisions.values()):
        try:
            review_deadline = calendar.deadline(now, review_days)
        except CalendarNotCovered as exc:
            # The platform cannot say when the review is due: refuse the submission before
            # anything is written, until the year's schedule is supplied.
            raise Unavailable(
                str(exc), code="calendar_not_covered", detail={"year": exc.year}
            ) from exc
    app = Application(
        consumer=consumer,
        provider=topic.provider,
        resource_code=topic.resource_code,
        topic_name=topic.name,
        items=list(spec.items),
        decisions=decisions,
        purpose_scope=spec.purpose.scope.value,
        purpose_text=spec.purpose.text,
        legal_function=spec.legal_function,
        valid_from=valid_from,
        valid_until=spec.valid_until,
        daily_quota=spec.daily_quota,
        delivery=spec.delivery.value,
        status=ApplicationStatus.pending_review.value,
        submitted_at=now,
    )
    session.add(app)
    session.flush()
    _event(session, app, caller.code, "submitted", now, items=list(spec.items))
    granted = _items_with(app, ItemOutcome.granted)
    refused = _items_with(app, ItemOutcome.refused)
    pending = _items_with(app, ItemOutcome.pending)
    if granted:
        grant = _grant_items(
            session,
            app,
            granted,
            valid_until=app.valid_until,
            daily_quota=app.daily_quota,
            actor=PLATFORM,
            now=now,
            today=today,
        )
        _event(
            session,
            app,
            PLATFORM,
            "granted",
            now,
            None,
            items=granted,
            grant_id=grant.id,
        )
    if refused:
        _event(
            session, app, PLATFORM, "refused", now, decisions[refused[0]]["reason"], items=refused
        )
    if pending:
        assert review_deadline is not None  # computed above for every pending item
        app.review_deadline = review_deadline
        _event(
            session,
            app,
            PLATFORM,
            "review_requested",
            now,
            items=pending,
            provider=app.provider,
            deadline=app.review_deadline.isoformat(),
        )
    _settle_status(app)
    session.flush()
    emit(session, ApplicationSubmitted(app))
    return app


def get_application(
    session: Session, app_id: int, caller: Principal, *, for_update: bool = False
) -> Application:
    """An application its consumer, its provider or the operator may see; 403 otherwise.

    ``for_update`` locks the row until the transaction ends, for a change decided on what
    was read (two reviewers at once: the second sees the first's outcome).
    """
    app = _get(session, Application, app_id, for_update)
    if app is None:
        raise ApplicationNotFound(f"no application {app_id}")
    if not caller.is_operator and caller.code not in (app.consumer, app.provider):
        raise NotPermitted(
            f"application {app_id} is neither from nor addressed to {caller.code!r}",
            code="not_your_application",
        )
    return app


def list_applications(
    session: Session,
    caller: Principal,
    *,
    role: str,
    status: str | None,
    overdue: bool | None,
    topic: str | None,
    now: dt.datetime,
    offset: int,
    limit: int,
) -> tuple[int, Sequence[Application]]:
    """Consumer's own (role=consumer), those addressed to it (role=provider), or all (operator)."""
    conds: list[ColumnElement[bool]] = []
    if not caller.is_operator:
        column = Application.provider if role == "provider" else Application.consumer
        conds.append(column == caller.code)
    if status:
        conds.append(Application.status == status)
    if topic:
        conds.append(Application.resource_code == topic)
    late = and_(
        Application.status == ApplicationStatus.pending_review.value,
        Application.review_deadline < now,
    )
    if overdue is True:
        conds.append(late)
    elif overdue is False:
        conds.append(~late)
    where = and_(*conds) if conds else and_(Application.id.is_not(None))
    total = session.scalar(select(func.count(Application.id)).where(where)) or 0
    rows = session.scalars(
        select(Application).where(where).order_by(Application.id).offset(offset).limit(limit)
    ).all()
    return total, rows


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


def _live_topic(session: Session, app: Application) -> Topic:
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
    pending = _items_with(app, ItemOutcome.pending)
    approved = list(body.items) if body.items is not None else pending
    _check_items_in(approved, pending, "item_not_pending", "pending review")
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
        raise _reason_required("an approval that leaves items out")
    topic = _live_topic(session, app)
    # The catalog may have dropped an item while the application waited.
    in_catalog = {it["field"] for it in topic.data["items"]}
    gone = [i for i in approved if i not in in_catalog]
    approved = [i for i in approved if i in in_catalog]
    decisions = _outcomes(app)
    # A reason given for leaving items out belongs to those items only: the granted ones
    # carry the reviewer's reason only when the whole request was approved.
    for item in approved:
        decisions[item].update(
            outcome="granted",
            code=ReasonCode.approved,
            reason=None if left_out else body.reason or None,
        )
    for item in left_out:
        decisions[item].update(outcome="rejected", code=ReasonCode.left_out, reason=body.reason)
    for item in gone:
        decisions[item].update(
            outcome="rejected", code=ReasonCode.removed_from_catalog, reason=None
        )
    app.decisions = decisions
    app.reviewed_at, app.reviewed_by, app.review_reason = now, caller.code, body.reason or None
    detail: dict[str, Any] = {"items": approved, "rejected": left_out + gone}
    if approved:
        granted_now = _items_with(app, ItemOutcome.granted)
        grant = _grant_items(
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
    _event(session, app, caller.code, "approved", now, body.reason or None, **detail)
    _settle_status(app)
    session.flush()
    emit(session, ApplicationDecided(app))
    return app


def reject(
    session: Session, app: Application, reason: str, caller: Principal, *, now: dt.datetime
) -> Application:
    """The provider rejects every pending item; a refusal must give its reason."""
    caller.require(app.provider)
    if not reason:
        raise _reason_required("a rejection")
    _require_pending(app)
    _require_reviewed_here(app)
    pending = _items_with(app, ItemOutcome.pending)
    decisions = _outcomes(app)
    for item in pending:
        decisions[item].update(outcome="rejected", code=ReasonCode.rejected, reason=reason)
    app.decisions = decisions
    app.reviewed_at, app.reviewed_by, app.review_reason = now, caller.code, reason
    _event(session, app, caller.code, "rejected", now, reason, items=pending)
    _settle_status(app)
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
    pending = _items_with(app, ItemOutcome.pending)
    final = {ItemOutcome.granted.value, ItemOutcome.refused.value, ItemOutcome.rejected.value}
    decided = [i for i in pending if (outcomes.get(i) or {}).get("outcome") in final]
    if not decided:
        return []
    decisions = _outcomes(app)
    for item in decided:
        peer = outcomes[item]
        code = peer.get("code")
        decisions[item].update(
            outcome=peer["outcome"],
            code=code if code in ReasonCode.__members__ else None,
            reason=peer.get("reason"),
        )
    app.decisions = decisions
    app.reviewed_at, app.reviewed_by, app.review_reason = now, reviewer[:32], reason
    granted = [i for i in decided if decisions[i]["outcome"] == ItemOutcome.granted.value]
    rejected = [i for i in decided if i not in granted]
    detail: dict[str, Any] = {"items": granted, "rejected": rejected, "platform": platform}
    if granted:
        grant = _grant_items(
            session,
            app,
            _items_with(app, ItemOutcome.granted),
            valid_until=min(valid_until, app.valid_until),
            daily_quota=daily_quota
            if app.daily_quota is None or daily_quota is None
            else min(daily_quota, app.daily_quota),
            actor=reviewer[:32],
            now=now,
            today=today,
        )
        detail["grant_id"] = grant.id
    _event(
        session, app, reviewer[:32], "approved" if granted else "rejected", now, reason, **detail
    )
    _settle_status(app)
    session.flush()
    return decided


def is_overdue(app: Application, now: dt.datetime) -> bool:
    return (
        app.status == ApplicationStatus.pending_review.value
        and app.review_deadline is not None
        and now > app.review_deadline
    )


def events_of(session: Session, app: Application) -> list[EventOut]:
    rows = session.scalars(
        select(ApplicationEvent)
        .where(ApplicationEvent.application_id == app.id)
        .order_by(ApplicationEvent.id)
    )
    return [
        EventOut(at=e.at, actor=e.actor, kind=e.kind, reason=e.reason, detail=e.detail)
        for e in rows
    ]


def dispute_ids(session: Session, app_ids: Sequence[int]) -> dict[int, int]:
    if not app_ids:
        return {}
    rows = session.execute(
        select(Dispute.application_id, Dispute.id).where(Dispute.application_id.in_(app_ids))
    )
    return {r.application_id: r.id for r in rows}


def application_out(
    app: Application,
    now: dt.datetime,
    *,
    dispute_id: int | None = None,
    events: list[EventOut] | None = None,
) -> ApplicationOut:
    return ApplicationOut(
        id=app.id,
        consumer=app.consumer,
        provider=app.provider,
        topic=app.resource_code,
        topic_name=app.topic_name,
        items=list(app.items),
        decisions=[
            ItemDecisionOut(
                field=f,
                sharing_type=app.decisions[f]["sharing_type"],
                outcome=ItemOutcome(app.decisions[f]["outcome"]),
                reason_code=reason_code_of(app.decisions[f]),
                reason=app.decisions[f].get("reason"),
            )
            for f in app.items
        ],
        purpose=Purpose.model_validate({"scope": app.purpose_scope, "text": app.purpose_text}),
        legal_function=app.legal_function,
        valid_from=app.valid_from,
        valid_until=app.valid_until,
        daily_quota=app.daily_quota,
        delivery=app.delivery,
        status=ApplicationStatus(app.status),
        submitted_at=app.submitted_at,
        review_deadline=app.review_deadline,
        overdue=is_overdue(app, now),
        reviewed_at=app.reviewed_at,
        reviewed_by=app.reviewed_by,
        review_reason=app.review_reason,
        grant_id=app.grant_id,
        forwarded_to=app.forwarded_to,
        on_behalf_of=app.on_behalf_of,
        dispute_id=dispute_id,
        events=events,
    )


# --- disputes -------------------------------------------------------------------------------


def open_dispute(
    session: Session, app: Application, body: DisputeCreate, caller: Principal, *, now: dt.datetime
) -> Dispute:
    """争议: the refused consumer asks for coordination of its refused items."""
    if caller.code != app.consumer:
        raise NotPermitted(
            f"only the applicant {app.consumer!r} may dispute application {app.id}",
            code="not_your_application",
        )
    if session.scalar(select(Dispute.id).where(Dispute.application_id == app.id)):
        raise Conflict(f"application {app.id} already has a dispute", code="dispute_exists")
    refused = _items_with(app, ItemOutcome.refused, ItemOutcome.rejected)
    if app.status == ApplicationStatus.pending_review.value or not refused:
        raise Conflict(
            f"application {app.id} has no refused items to dispute (status {app.status})",
            code="nothing_refused",
        )
    if not body.reason:
        raise _reason_required("a dispute")
    items = list(body.items) if body.items is not None else refused
    _check_items_in(items, refused, "item_not_refused", "refused")
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
    _event(
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


def get_dispute(
    session: Session, dispute_id: int, caller: Principal, *, for_update: bool = False
) -> Dispute:
    """A dispute both sides and the operator may see; 403 otherwise (``for_update``: as
    :func:`get_application`)."""
    dispute = _get(session, Dispute, dispute_id, for_update)
    if dispute is None:
        raise DisputeNotFound(f"no dispute {dispute_id}")
    if not caller.is_operator and caller.code not in (dispute.consumer, dispute.provider):
        raise NotPermitted(
            f"dispute {dispute_id} is not between {caller.code!r} and another party",
            code="not_your_dispute",
        )
    return dispute


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
    _event(session, app, caller.code, "dispute_message", now, body, dispute_id=dispute.id)
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
        raise _reason_required("a dispute decision")
    if body.decision is DisputeDecision.grant:
        granted = list(dispute.items)
    elif body.decision is DisputeDecision.partial:
        if not body.items:
            raise ValidationFailed(
                "items: a partial grant names the disputed items it grants",
                field="items",
                code="items_required",
            )
        _check_items_in(body.items, dispute.items, "item_not_disputed", "disputed")
        granted = list(body.items)
    else:
        granted = []
    # Locked after the dispute (the order every path takes: dispute, application, grant).
    app = _get(session, Application, dispute.application_id, for_update=True)
    assert app is not None  # the foreign key guarantees it
    if granted:
        topic = _live_topic(session, app)
        in_catalog = {it["field"] for it in topic.data["items"]}
        granted = [i for i in granted if i in in_catalog]
    decisions = _outcomes(app)
    for item in granted:
        decisions[item].update(
            outcome="granted", code=ReasonCode.dispute_granted, reason=body.reason
        )
    app.decisions = decisions
    detail: dict[str, Any] = {"decision": body.decision.value, "items": granted}
    if granted:
        grant = _grant_items(
            session,
            app,
            _items_with(app, ItemOutcome.granted),
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
    _settle_status(app)
    _event(session, app, caller.code, "dispute_decided", now, body.reason, **detail)
    session.flush()
    emit(session, ApplicationDecided(app))
    return dispute


def dispute_out(session: Session, dispute: Dispute) -> DisputeOut:
    messages = session.scalars(
        select(DisputeMessage)
        .where(DisputeMessage.dispute_id == dispute.id)
        .order_by(DisputeMessage.id)
    )
    return DisputeOut(
        id=dispute.id,
        application_id=dispute.application_id,
        consumer=dispute.consumer,
        provider=dispute.provider,
        items=list(dispute.items),
        status=dispute.status,
        opened_at=dispute.opened_at,
        reason=dispute.reason,
        decision=DisputeDecision(dispute.decision) if dispute.decision else None,
        decided_items=dispute.decided_items,
        decided_at=dispute.decided_at,
        decided_by=dispute.decided_by,
        decision_reason=dispute.decision_reason,
        messages=[MessageOut(at=m.at, author=m.author, body=m.body) for m in messages],
    )


# --- grants ---------------------------------------------------------------------------------


def grant_status(grant: Grant, today: dt.date) -> GrantStatus:
    """Stored status, with an active grant past its last day read as expired."""
    if grant.status == "active" and grant.valid_until < today:
        return GrantStatus.expired
    return GrantStatus(grant.status)


def grant_out(grant: Grant, today: dt.date) -> GrantOut:
    return GrantOut(
        id=grant.id,
        consumer=grant.consumer,
        provider=grant.provider,
        topic=grant.resource_code,
        items=list(grant.items),
        purpose=Purpose.model_validate({"scope": grant.purpose_scope, "text": grant.purpose_text}),
        legal_function=grant.legal_function,
        delivery=grant.delivery,
        valid_from=grant.valid_from,
        valid_until=grant.valid_until,
        daily_quota=grant.daily_quota,
        status=grant_status(grant, today),
        status_reason=grant.status_reason,
        created_at=grant.created_at,
        updated_at=grant.updated_at,
    )


def get_grant(
    session: Session, grant_id: int, caller: Principal, *, for_update: bool = False
) -> Grant:
    """A grant its consumer, its provider or the operator may see; 403 otherwise
    (``for_update``: as :func:`get_application`)."""
    grant = _get(session, Grant, grant_id, for_update)
    if grant is None:
        raise GrantNotFound(f"no grant {grant_id}")
    if not caller.is_operator and caller.code not in (grant.consumer, grant.provider):
        raise NotPermitted(
            f"grant {grant_id} neither names nor comes from {caller.code!r}", code="not_your_grant"
        )
    return grant


def list_grants(
    session: Session,
    caller: Principal,
    *,
    consumer: str | None,
    provider: str | None,
    topic: str | None,
    status: GrantStatus | None,
    today: dt.date,
    offset: int,
    limit: int,
) -> tuple[int, Sequence[Grant]]:
    """Grants the caller holds or gives (all, for the operator), filtered."""
    conds: list[ColumnElement[bool]] = []
    if not caller.is_operator:
        conds.append(or_(Grant.consumer == caller.code, Grant.provider == caller.code))
    if consumer:
        conds.append(Grant.consumer == consumer)
    if provider:
        conds.append(Grant.provider == provider)
    if topic:
        conds.append(Grant.resource_code == topic)
    if status is GrantStatus.expired:
        conds.append(and_(Grant.status == "active", Grant.valid_until < today))
    elif status is GrantStatus.active:
        conds.append(and_(Grant.status == "active", Grant.valid_until >= today))
    elif status is not None:
        conds.append(Grant.status == status.value)
    where = and_(*conds) if conds else and_(Grant.id.is_not(None))
    total = session.scalar(select(func.count(Grant.id)).where(where)) or 0
    rows = session.scalars(
        select(Grant).where(where).order_by(Grant.id).offset(offset).limit(limit)
    ).all()
    return total, rows


def revoke(
    session: Session, grant: Grant, reason: str, caller: Principal, *, now: dt.datetime
) -> Grant:
    """The provider (or the operator) revokes a grant, with a reason."""
    caller.require(grant.provider)
    if not reason:
        raise _reason_required("a revocation")
    if grant.status == "revoked":
        raise Conflict(f"grant {grant.id} is already revoked", code="grant_revoked")
    grant.status = "revoked"
    grant.status_reason = reason
    grant.updated_at = now
    grant.changed_by = caller.code
    grants_changed(session, narrowed=True)
    session.flush()
    emit(session, GrantRevoked(grant))
    return grant


@dataclass(frozen=True)
class ApplicationSubmitted:
    """An application was submitted (other domains react in its transaction)."""

    application: Application


@dataclass(frozen=True)
class ApplicationDecided:
    """A provider (or the platform) decided items of an application."""

    application: Application


@dataclass(frozen=True)
class GrantRevoked:
    """A grant was revoked (other domains react in the revocation's transaction)."""

    grant: Grant


# --- catalog events -------------------------------------------------------------------------


def on_catalog_event(session: Session, event: catalog_service.CatalogEvent) -> None:
    """Follow the catalog inside its transaction: retirement suspends the topic's grants and
    closes its pending reviews; removing items narrows the grants that held them."""
    topic = event.topic
    now = topic.updated_at
    if event.kind == "retired":
        for grant in session.scalars(
            select(Grant).where(
                Grant.resource_code == topic.resource_code, Grant.status == "active"
            )
        ):
            grant.status = "suspended"
            grant.status_reason = f"topic retired: {topic.retire_reason or ''}".strip()
            grant.updated_at = now
            grant.changed_by = PLATFORM
        for app in _pending_for(session, topic.resource_code):
            decisions = _outcomes(app)
            pending = _items_with(app, ItemOutcome.pending)
            for item in pending:
                decisions[item].update(
                    outcome="rejected",
                    code=ReasonCode.topic_retired,
                    reason=topic.retire_reason or None,
                )
            app.decisions = decisions
            _settle_status(app)
            _event(session, app, PLATFORM, "topic_retired", now, topic.retire_reason, items=pending)
            emit(session, ApplicationDecided(app))
        # The catalog announces the retirement itself; the grants suspended here are ours.
        grants_changed(session, narrowed=True)
    elif event.kind == "changed" and event.removed_items:
        removed = event.removed_items
        touched = False
        for grant in session.scalars(
            select(Grant).where(
                Grant.resource_code == topic.resource_code, Grant.status != "revoked"
            )
        ):
            if removed.isdisjoint(grant.items):
                continue
            grant.items = [i for i in grant.items if i not in removed]
            if not grant.items:
                grant.status = "revoked"
                grant.status_reason = "the catalog removed every item of the grant"
            grant.updated_at = now
            grant.changed_by = PLATFORM
            touched = True
        for app in _pending_for(session, topic.resource_code):
            decisions = _outcomes(app)
            gone = [i for i in _items_with(app, ItemOutcome.pending) if i in removed]
            if not gone:
                continue
            for item in gone:
                decisions[item].update(
                    outcome="rejected", code=ReasonCode.removed_from_catalog, reason=None
                )
            app.decisions = decisions
            _settle_status(app)
            _event(session, app, PLATFORM, "items_removed", now, None, items=gone)
            emit(session, ApplicationDecided(app))
        if touched:
            grants_changed(session, narrowed=True)
    session.flush()


def _pending_for(session: Session, resource_code: str) -> Sequence[Application]:
    return session.scalars(
        select(Application).where(
            Application.resource_code == resource_code,
            Application.status == ApplicationStatus.pending_review.value,
        )
    ).all()
