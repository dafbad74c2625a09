"""Distribution's rules, the face other packages import: accept a provider's changes
(:mod:`.publishing`, records checked by :mod:`.records`), manage subscriptions
(:mod:`.subscriptions`) and their dead letters (:mod:`.dead_letters`).

Delivery itself (reading the feed, pushing) is in :mod:`.feed` and :mod:`.delivery`.
"""

from __future__ import annotations

from exchange.distribution.dead_letters import (
    dead_letters,
    discard_dead_letters,
    retry_dead_letters,
)
from exchange.distribution.errors import NotTheSource, SubscriptionNotFound
from exchange.distribution.publishing import CHANGED, Accepted, accept_changes
from exchange.distribution.subscriptions import (
    MAX_PER_CONSUMER,
    backlog,
    create_subscription,
    delete_subscription,
    get_subscription,
    list_subscriptions,
    replay,
    set_status,
    subscription_out,
)

__all__ = [
    "CHANGED",
    "MAX_PER_CONSUMER",
    "Accepted",
    "NotTheSource",
    "SubscriptionNotFound",
    "accept_changes",
    "backlog",
    "create_subscription",
    "dead_letters",
    "delete_subscription",
    "discard_dead_letters",
    "get_subscription",
    "list_subscriptions",
    "replay",
    "retry_dead_letters",
    "set_status",
    "subscription_out",
]
