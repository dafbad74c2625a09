"""An application's per-item outcomes and its timeline, the vocabulary every decision uses.

One application carries an outcome per item (pending, granted, refused, rejected: rows
of ``authz_application_item``, changed in place through ``ApplicationItem.settle``); its
status follows from them (:func:`settle_status`), and every step is one timeline event
(:func:`record`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from exchange.authz.models import Application, ApplicationEvent
from exchange.authz.schemas import ApplicationStatus, ItemOutcome
from exchange.errors import ValidationFailed

PLATFORM = "platform"


def reason_required(what: str) -> ValidationFailed:
    return ValidationFailed(
        f"reason: {what} must give a reason", field="reason", code="reason_required"
    )


def record(
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


def items_with(app: Application, *outcomes: ItemOutcome) -> list[str]:
    wanted = {o.value for o in outcomes}
    return [f for f in app.items if app.outcomes[f].outcome in wanted]


def settle_status(app: Application) -> None:
    """Status from the per-item outcomes (a dispute in progress overrides it)."""
    outcomes = [app.outcomes[f].outcome for f in app.items]
    granted = outcomes.count(ItemOutcome.granted.value)
    if ItemOutcome.pending.value in outcomes:
        app.status = ApplicationStatus.pending_review.value
    elif granted == len(outcomes):
        app.status = ApplicationStatus.approved.value
    elif granted:
        app.status = ApplicationStatus.partially_approved.value
    else:
        app.status = ApplicationStatus.returned.value


def check_items_in(items: Iterable[str], allowed: Sequence[str], code: str, what: str) -> None:
    extra = [i for i in items if i not in allowed]
    if extra:
        raise ValidationFailed(
            f"items: {', '.join(extra)} {'is' if len(extra) == 1 else 'are'} not {what} "
            f"(allowed: {', '.join(allowed) or 'none'})",
            field="items",
            code=code,
        )
