"""运行监测: one reading of the platform's operations for the operator's dashboard.

It joins what already exists rather than counting anything new: the daily volume roll-up
(``audit_volume``), the broker's in-process tallies and circuit breakers, and the review
deadlines and grant validity of authz. Every part is an aggregate over an index or a small
in-memory map, so the dashboard can poll it every few seconds while a load test runs.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from exchange.audit.models import AuditVolume
from exchange.audit.schemas import (
    BreakerOut,
    BrokerNow,
    DayVolume,
    GrantsExpiring,
    OperationsOut,
    ProviderLatency,
    ReviewsDue,
    UnitVolume,
    Volume,
)
from exchange.authz.models import Application, Grant
from exchange.catalog.models import Topic
from exchange.loadruns import service as loadruns
from exchange.loadruns.schemas import LoadRunOut

if TYPE_CHECKING:
    from exchange.broker.service import Broker

DAYS = 14
TOP = 10
DUE_SOON = dt.timedelta(days=2)
EXPIRING = dt.timedelta(days=30)
LOAD_RUN_SHOWN = dt.timedelta(days=1)


def side_of(outcome: str) -> str:
    """``ok`` or the side an error code names (``client.…``, ``broker.…``, ``provider.…``)."""
    return outcome.split(".", 1)[0] if "." in outcome else outcome


def reading(
    session: Session, broker: Broker | None, *, now: dt.datetime, today: dt.date
) -> OperationsOut:
    """Everything the dashboard shows, read once."""
    return OperationsOut(
        at=dt.datetime.now(dt.UTC),
        platform_now=now,
        day=today,
        today=_total(session, today),
        total=_total(session, None),
        days=_days(session, today),
        by_provider=_top(session, AuditVolume.provider, today),
        by_consumer=_top(session, AuditVolume.consumer, today),
        by_group=_groups(session, today),
        broker=_broker(broker),
        slowest_providers=_slowest(broker),
        open_breakers=_breakers(broker),
        reviews=_reviews(session, now),
        grants=_grants(session, today),
        load_run=_load_run(session),
    )


def _load_run(session: Session) -> LoadRunOut | None:
    wall = dt.datetime.now(dt.UTC)
    runs = loadruns.latest(session, wall, limit=1)
    if runs and wall - runs[0].updated_at <= LOAD_RUN_SHOWN:
        return runs[0]
    return None


def _total(session: Session, day: dt.date | None) -> Volume:
    stmt = select(func.sum(AuditVolume.calls), func.sum(AuditVolume.records))
    if day is not None:
        stmt = stmt.where(AuditVolume.day == day)
    calls, records = session.execute(stmt).one()
    return Volume(calls=int(calls or 0), records=int(records or 0))


def _days(session: Session, today: dt.date) -> list[DayVolume]:
    first = today - dt.timedelta(days=DAYS - 1)
    rows = session.execute(
        select(AuditVolume.day, func.sum(AuditVolume.calls), func.sum(AuditVolume.records))
        .where(AuditVolume.day >= first, AuditVolume.day <= today)
        .group_by(AuditVolume.day)
    )
    found = {day: (int(c or 0), int(r or 0)) for day, c, r in rows}
    # Every day of the window, zeros included, so a chart's axis does not skip days.
    days = (first + dt.timedelta(days=i) for i in range(DAYS))
    return [
        DayVolume(day=d, calls=found.get(d, (0, 0))[0], records=found.get(d, (0, 0))[1])
        for d in days
    ]


def _top(session: Session, column: Any, today: dt.date) -> list[UnitVolume]:
    records = func.sum(AuditVolume.records)
    rows = session.execute(
        select(column, func.sum(AuditVolume.calls), records)
        .where(AuditVolume.day == today)
        .group_by(column)
        .order_by(records.desc())
        .limit(TOP)
    )
    return [UnitVolume(code=str(c), calls=int(n or 0), records=int(r or 0)) for c, n, r in rows]


def _groups(session: Session, today: dt.date) -> dict[str, Volume]:
    rows = session.execute(
        select(Topic.group, func.sum(AuditVolume.calls), func.sum(AuditVolume.records))
        .join(Topic, Topic.resource_code == AuditVolume.resource_code)
        .where(AuditVolume.day == today)
        .group_by(Topic.group)
    )
    return {str(g): Volume(calls=int(c or 0), records=int(r or 0)) for g, c, r in rows}


def _broker(broker: Broker | None) -> BrokerNow:
    if broker is None:
        return BrokerNow(
            started_at=dt.datetime.now(dt.UTC),
            calls=0,
            records=0,
            in_flight=0,
            by_side={},
            by_outcome={},
        )
    metrics = broker.metrics
    outcomes = dict(metrics.outcomes)  # a copy: the event loop may add a key meanwhile
    by_side: dict[str, int] = {}
    for outcome, n in outcomes.items():
        by_side[side_of(outcome)] = by_side.get(side_of(outcome), 0) + n
    delivered = sum(list(metrics.records.values()))
    in_flight = sum(s.value for m in metrics.in_flight.collect() for s in m.samples)
    return BrokerNow(
        started_at=dt.datetime.fromtimestamp(metrics.started, dt.UTC),
        calls=sum(outcomes.values()),
        records=int(delivered),
        in_flight=int(in_flight),
        by_side=by_side,
        by_outcome=outcomes,
    )


def _slowest(broker: Broker | None) -> list[ProviderLatency]:
    if broker is None:
        return []
    rows = [
        ProviderLatency(
            code=code,
            calls=t.calls,
            errors=t.errors,
            mean_ms=round(1000 * t.seconds / t.calls, 2),
            slowest_ms=round(1000 * t.slowest, 2),
        )
        for code, t in list(broker.metrics.providers.items())
        if t.calls
    ]
    return sorted(rows, key=lambda r: r.mean_ms, reverse=True)[:TOP]


def _breakers(broker: Broker | None) -> list[BreakerOut]:
    if broker is None:
        return []
    now = time.monotonic()
    return [
        BreakerOut(
            provider=provider,
            state=str(breaker.state),
            retry_after_s=round(breaker.retry_after(now), 1),
        )
        for provider, breaker in sorted(broker.upstream.breakers.items())
        if str(breaker.state) != "closed"
    ]


def _reviews(session: Session, now: dt.datetime) -> ReviewsDue:
    pending = Application.status == "pending_review"
    deadline = Application.review_deadline

    def count(*conds: Any) -> int:
        return int(session.scalar(select(func.count(Application.id)).where(*conds)) or 0)

    return ReviewsDue(
        pending=count(pending),
        due_soon=count(pending, deadline >= now, deadline < now + DUE_SOON),
        overdue=count(pending, deadline < now),
    )


def _grants(session: Session, today: dt.date) -> GrantsExpiring:
    active = Grant.status == "active"

    def count(*conds: Any) -> int:
        return int(session.scalar(select(func.count(Grant.id)).where(and_(*conds))) or 0)

    return GrantsExpiring(
        active=count(active, Grant.valid_until >= today),
        expiring=count(active, Grant.valid_until >= today, Grant.valid_until < today + EXPIRING),
        expired=count(active, Grant.valid_until < today),
    )
