"""共享申请: submitting an application (every item decided by its sharing type: granted,
queued for review or refused at once), reading and listing applications."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from exchange.authn import Principal
from exchange.authz.access import ApplicationNotFound, fetch_as_party
from exchange.authz.calendar import CalendarNotCovered, WorkingCalendar
from exchange.authz.events import ApplicationSubmitted
from exchange.authz.grants import grant_items
from exchange.authz.models import Application, ApplicationEvent, ApplicationItem, Dispute
from exchange.authz.outcomes import PLATFORM, check_items_in, items_with, record, settle_status
from exchange.authz.reviews import is_overdue
from exchange.authz.schemas import (
    ApplicationCreate,
    ApplicationOut,
    ApplicationStatus,
    EventOut,
    ItemDecisionOut,
    ItemOutcome,
    Purpose,
    ReasonCode,
)
from exchange.catalog import service as catalog_service
from exchange.catalog.schemas import TopicStatus
from exchange.db.pagination import page
from exchange.db.reactions import emit
from exchange.errors import NotPermitted, Unavailable, ValidationFailed
from exchange.members.models import Department
from exchange.members.schemas import GOVERNMENT_KINDS

MAX_VALIDITY = dt.timedelta(days=5 * 366)


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
    check_items_in(spec.items, list(catalog_items), "unknown_item", "items of the topic")
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
    unit = session.get(Department, consumer)
    government = unit is not None and unit.kind in GOVERNMENT_KINDS
    outcomes = {
        field: _first_outcome(field, catalog_items[field]["sharing_type"], government, sharing)
        for field in spec.items
    }
    review_deadline: dt.datetime | None = None
    if any(o.outcome == ItemOutcome.pending.value for o in outcomes.values()):
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
        outcomes=outcomes,
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
    record(session, app, caller.code, "submitted", now, items=list(spec.items))
    granted = items_with(app, ItemOutcome.granted)
    refused = items_with(app, ItemOutcome.refused)
    pending = items_with(app, ItemOutcome.pending)
    if granted:
        grant = grant_items(
            session,
            app,
            granted,
            valid_until=app.valid_until,
            daily_quota=app.daily_quota,
            actor=PLATFORM,
            now=now,
            today=today,
        )
        record(
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
        record(session, app, PLATFORM, "refused", now, outcomes[refused[0]].reason, items=refused)
    if pending:
        assert review_deadline is not None  # computed above for every pending item
        app.review_deadline = review_deadline
        record(
            session,
            app,
            PLATFORM,
            "review_requested",
            now,
            items=pending,
            provider=app.provider,
            deadline=app.review_deadline.isoformat(),
        )
    settle_status(app)
    session.flush()
    emit(session, ApplicationSubmitted(app))
    return app


def _first_outcome(
    field: str, kind: str, government: bool, sharing: dict[str, Any]
) -> ApplicationItem:
    """An item's outcome at submission, by its sharing type (see :mod:`outcomes`)."""
    if kind == "unconditional" and government:
        outcome, code, reason = ItemOutcome.granted, ReasonCode.unconditional, None
    elif kind == "unconditional":
        # 无条件共享 is "any government department may use it": a bank's or a utility's
        # application for unconditional items goes to the provider's review instead.
        outcome, code, reason = ItemOutcome.pending, ReasonCode.not_government, None
    elif kind == "conditional":
        outcome, code = ItemOutcome.pending, ReasonCode.conditional
        reason = sharing.get("conditions")
    else:
        basis = sharing.get("legal_basis") or "the catalog marks this item 不予共享"
        outcome, code, reason = ItemOutcome.refused, ReasonCode.not_shared, basis
    row = ApplicationItem(item=field, sharing_type=kind)
    row.settle(outcome, code, reason or None)
    return row


def get_application(
    session: Session, app_id: int, caller: Principal, *, for_update: bool = False
) -> Application:
    """An application its consumer, its provider or the operator may see; 403 otherwise.

    ``for_update`` locks the row until the transaction ends, for a change decided on what
    was read (two reviewers at once: the second sees the first's outcome).
    """
    return fetch_as_party(
        session,
        Application,
        app_id,
        caller,
        for_update=for_update,
        not_found=ApplicationNotFound,
        refusal="application {key} is neither from nor addressed to {caller!r}",
        refusal_code="not_your_application",
    )


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
    return page(session, Application, Application.id, conds, offset=offset, limit=limit)


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
    """Written out, not ``model_validate(..., from_attributes=True)``: the fields differ from
    the row's (``topic`` is ``resource_code``, ``purpose`` joins two columns, ``decisions`` are
    the item rows in the order asked) and ``overdue`` depends on ``now``."""
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
                sharing_type=app.outcomes[f].sharing_type,
                outcome=ItemOutcome(app.outcomes[f].outcome),
                reason_code=ReasonCode(app.outcomes[f].code),
                reason=app.outcomes[f].reason,
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
