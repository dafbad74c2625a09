"""The library unit's access to its sources, as any consumer's: an application for each
source's items (unconditional items are granted at once, conditional ones wait for the
provider's review), the grant checked before each pass, and a pull subscription to the
source's change events for the incremental passes."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from exchange.authn import Principal
from exchange.authz import service as authz_service
from exchange.authz.models import Application
from exchange.authz.schemas import ApplicationCreate
from exchange.catalog.models import Topic
from exchange.context import AppContext
from exchange.db.engine import Database
from exchange.db.threads import run_joined
from exchange.distribution import service as distribution_service
from exchange.distribution.schemas import SubscriptionCreate
from exchange.errors import ExchangeError
from exchange.libraries.models import LibrarySource

__all__ = ["SourceAccess"]

log = logging.getLogger(__name__)

_PURPOSE = "基础信息库汇集:人口、法人基础信息按一数一源从责任部门汇集,供各部门无条件共享"
_LEGAL = "《广州市政务数据管理条例》:市政务服务数据管理部门统筹建设人口、法人等基础数据库"
_SCOPES = ("data_verification", "business_collaboration", "administrative_basis", "work_reference")


class SourceAccess:
    """Applications, grants and subscriptions, for :class:`~exchange.libraries.gather.Gatherer`."""

    ctx: AppContext
    db: Database
    unit: str

    def _apply(self, source: LibrarySource) -> int:
        """File the library unit's application for a source's items; its id."""
        ctx = self.ctx
        with self.db.sessions() as session:
            topic = session.scalar(select(Topic).where(Topic.resource_code == source.resource_code))
            offered = (topic.data.get("sharing", {}).get("usage_scopes") if topic else None) or []
            scope = next((s for s in _SCOPES if s in offered), _SCOPES[0])
        today = ctx.clock.today()
        spec = ApplicationCreate.model_validate(
            {
                "topic": source.resource_code,
                "items": [source.key_field, *(f[0] for f in source.fields)],
                "purpose": {"scope": scope, "text": _PURPOSE},
                "legal_function": _LEGAL,
                "valid_until": (today + dt.timedelta(days=5 * 365)).isoformat(),
                # One grant covers both ways in: the full load by bulk export, then the
                # source's change events by subscription.
                "delivery": "subscription",
            }
        )
        with self.db.session() as session:
            app = authz_service.submit(
                session,
                spec,
                Principal(self.unit),
                now=ctx.clock.now(),
                today=today,
                calendar=ctx.calendar,
                review_days=ctx.settings.review_days,
            )
            return app.id

    def _pending_application(self, app_id: int | None) -> bool:
        """Whether the library's last application still stands: under review or disputed,
        or granted already (the grant cache has not yet caught up with it). Only a
        returned application, or none, is filed again."""
        if app_id is None:
            return False
        with self.db.sessions() as session:
            app = session.get(Application, app_id)
            if app is None:
                return False
            if app.status in ("pending_review", "disputed"):
                return True
            return app.status in ("approved", "partially_approved") and app.grant_id is not None

    async def _granted_items(self, source: LibrarySource) -> frozenset[str] | None:
        """The items the library may gather from ``source`` now, or None (no grant)."""
        cache = self.ctx.grants
        decision = await run_joined(cache.check, self.unit, source.resource_code, None)
        if decision.allowed and source.key_field in decision.items:
            return decision.items
        return None

    def _subscribe(self, source: LibrarySource, items: list[str]) -> int | None:
        """The library unit's pull subscription to the source's change events (None when
        the exchange runs no distribution or the grant's delivery is not subscription:
        the source is then refreshed by export passes only)."""
        if self.ctx.distribution is None:
            return None
        body = SubscriptionCreate.model_validate(
            {"topic": source.resource_code, "items": items, "delivery": "pull"}
        )
        try:
            with self.db.session() as session:
                sub = distribution_service.create_subscription(
                    session, body, Principal(self.unit), today=self.ctx.clock.today()
                )
                cursor = sub.cursor
                sub_id = sub.id
                row = session.get(LibrarySource, source.id)
                if row is not None:
                    row.subscription_id, row.event_cursor = sub_id, cursor
        except ExchangeError as exc:
            log.warning("library source %s: no subscription (%s)", source.resource_code, exc)
            return None
        source.event_cursor = cursor
        return sub_id
