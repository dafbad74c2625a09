"""Following the catalog: retirement suspends a topic's grants and closes its pending
reviews; removing items narrows the grants that held them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from exchange.authz.events import ApplicationDecided, grants_changed
from exchange.authz.models import Application, Grant
from exchange.authz.outcomes import PLATFORM, items_with, record, settle_status
from exchange.authz.schemas import ApplicationStatus, ItemOutcome, ReasonCode
from exchange.catalog import service as catalog_service
from exchange.db.reactions import emit


def on_catalog_event(session: Session, event: catalog_service.CatalogEvent) -> None:
    """Follow the catalog inside its transaction: retirement suspends the topic's grants and
    closes its pending reviews; removing items narrows the grants that held them.

    Rows are locked in the order every other path takes (application, then grant: see
    :func:`exchange.authz.access.load`): the pending applications first, then the grants.
    Taken the other way round, a retirement holding a grant and waiting for an application
    deadlocks with an approval holding that application and waiting for the grant.
    """
    topic = event.topic
    now = topic.updated_at
    if event.kind == "retired":
        pending_apps = _pending_for(session, topic.resource_code)
        for grant in _grants_of(session, topic.resource_code, Grant.status == "active"):
            grant.status = "suspended"
            grant.status_reason = f"topic retired: {topic.retire_reason or ''}".strip()
            grant.updated_at = now
            grant.changed_by = PLATFORM
        for app in pending_apps:
            pending = items_with(app, ItemOutcome.pending)
            for item in pending:
                app.outcomes[item].settle(
                    ItemOutcome.rejected, ReasonCode.topic_retired, topic.retire_reason or None
                )
            settle_status(app)
            record(session, app, PLATFORM, "topic_retired", now, topic.retire_reason, items=pending)
            emit(session, ApplicationDecided(app))
        # The catalog announces the retirement itself; the grants suspended here are ours.
        grants_changed(session, narrowed=True)
    elif event.kind == "changed" and event.removed_items:
        removed = event.removed_items
        touched = False
        pending_apps = _pending_for(session, topic.resource_code)
        for grant in _grants_of(session, topic.resource_code, Grant.status != "revoked"):
            if removed.isdisjoint(grant.items):
                continue
            grant.items = [i for i in grant.items if i not in removed]
            if not grant.items:
                grant.status = "revoked"
                grant.status_reason = "the catalog removed every item of the grant"
            grant.updated_at = now
            grant.changed_by = PLATFORM
            touched = True
        for app in pending_apps:
            gone = [i for i in items_with(app, ItemOutcome.pending) if i in removed]
            if not gone:
                continue
            for item in gone:
                app.outcomes[item].settle(
                    ItemOutcome.rejected, ReasonCode.removed_from_catalog, None
                )
            settle_status(app)
            record(session, app, PLATFORM, "items_removed", now, None, items=gone)
            emit(session, ApplicationDecided(app))
        if touched:
            grants_changed(session, narrowed=True)
    session.flush()


def _pending_for(session: Session, resource_code: str) -> Sequence[Application]:
    """The topic's applications pending review, locked (re-read after a wait: one a
    reviewer decided meanwhile is no longer pending and is left as decided)."""
    return session.scalars(
        select(Application)
        .where(
            Application.resource_code == resource_code,
            Application.status == ApplicationStatus.pending_review.value,
        )
        .order_by(Application.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def _grants_of(
    session: Session, resource_code: str, condition: ColumnElement[bool]
) -> Sequence[Grant]:
    """The topic's grants meeting ``condition``, locked (after the applications)."""
    return session.scalars(
        select(Grant)
        .where(Grant.resource_code == resource_code, condition)
        .order_by(Grant.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
