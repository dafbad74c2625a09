"""Grants: opening and widening the pair's current grant, reading, listing and revoking.

Granted items land in the one current grant of the (consumer, topic) pair: the first grant
opens it, later decisions add items and renew its terms (validity, quota, purpose, delivery)
to the latest decision's, recording on that application what changed
(``grant_terms_changed``). Every write that changes a grant announces it
(:func:`exchange.authz.events.grants_changed`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from exchange.authn import Principal
from exchange.authz.access import GrantNotFound, fetch_as_party
from exchange.authz.events import GrantRevoked, grants_changed
from exchange.authz.models import Application, Grant
from exchange.authz.outcomes import reason_required, record
from exchange.authz.schemas import GrantOut, GrantStatus, Purpose
from exchange.db.pagination import page
from exchange.db.reactions import emit
from exchange.errors import Conflict


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


def grant_items(
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
        changed = terms_changed(grant, app, valid_until=valid_until, daily_quota=daily_quota)
        if changed:
            # One grant per consumer and topic: its terms become this decision's. Said on
            # the application, so a department whose subscription became a query grant (or
            # whose quota fell) reads why and when in the application's history.
            record(
                session,
                app,
                actor,
                "grant_terms_changed",
                now,
                None,
                grant_id=grant.id,
                changes=changed,
            )
        grant.items = sorted(set(grant.items) | set(items))
    else:
        grant = Grant(
            consumer=app.consumer,
            provider=app.provider,
            resource_code=app.resource_code,
            items=sorted(items),
            status="active",
            created_at=now,
        )
        session.add(grant)
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


#: The grant's terms a decision sets (the items only ever widen).
TERMS = ("delivery", "purpose_scope", "purpose_text", "legal_function", "valid_from")


def terms_changed(
    grant: Grant, app: Application, *, valid_until: dt.date, daily_quota: int | None
) -> dict[str, dict[str, Any]]:
    """What a decision on ``app`` changes of ``grant``'s terms: ``{term: {from, to}}``."""

    def plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, dt.date) else value

    pairs = [(t, getattr(grant, t), getattr(app, t)) for t in TERMS]
    pairs += [
        ("valid_until", grant.valid_until, valid_until),
        ("daily_quota", grant.daily_quota, daily_quota),
    ]
    return {t: {"from": plain(a), "to": plain(b)} for t, a, b in pairs if a != b}


def grant_status(grant: Grant, today: dt.date) -> GrantStatus:
    """Stored status, with an active grant past its last day read as expired."""
    if grant.status == "active" and grant.valid_until < today:
        return GrantStatus.expired
    return GrantStatus(grant.status)


def grant_out(grant: Grant, today: dt.date) -> GrantOut:
    """Written out, not ``model_validate(..., from_attributes=True)``: the fields differ from
    the row's (``topic`` is ``resource_code``, ``purpose`` joins two columns) and ``status``
    depends on ``today``."""
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
    return fetch_as_party(
        session,
        Grant,
        grant_id,
        caller,
        for_update=for_update,
        not_found=GrantNotFound,
        refusal="grant {key} neither names nor comes from {caller!r}",
        refusal_code="not_your_grant",
    )


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
    return page(session, Grant, Grant.id, conds, offset=offset, limit=limit)


def revoke(
    session: Session, grant: Grant, reason: str, caller: Principal, *, now: dt.datetime
) -> Grant:
    """The provider (or the operator) revokes a grant, with a reason."""
    caller.require(grant.provider)
    if not reason:
        raise reason_required("a revocation")
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
