"""The authz domain's public face: applications become grants.

Automatic for unconditional items, reviewed for conditional ones, refused at once for
not-shared ones; disputes, revocation and the reactions to catalog changes. Each idea lives
in its own module; other packages import them from here:

- :mod:`~exchange.authz.applications`: submitting, reading and listing applications;
- :mod:`~exchange.authz.reviews`: the provider's review and its deadline;
- :mod:`~exchange.authz.disputes`: disputes, their thread and the operator's decision;
- :mod:`~exchange.authz.grants`: the current grant of a pair, reading, listing, revoking;
- :mod:`~exchange.authz.reactions`: following the catalog's retirements and removals;
- :mod:`~exchange.authz.outcomes`: per-item outcomes and the application's timeline;
- :mod:`~exchange.authz.access`: reaching a row as one of its parties (404, 403);
- :mod:`~exchange.authz.events`: the events other domains react to, and the announcement.
"""

from __future__ import annotations

from exchange.authz.access import ApplicationNotFound, DisputeNotFound, GrantNotFound
from exchange.authz.applications import (
    MAX_VALIDITY,
    application_out,
    dispute_ids,
    events_of,
    get_application,
    list_applications,
    submit,
)
from exchange.authz.disputes import (
    decide_dispute,
    dispute_out,
    get_dispute,
    open_dispute,
    post_message,
)
from exchange.authz.events import (
    ApplicationDecided,
    ApplicationSubmitted,
    GrantRevoked,
    grants_changed,
)
from exchange.authz.grants import (
    current_grant,
    get_grant,
    grant_out,
    grant_status,
    list_grants,
    revoke,
)
from exchange.authz.outcomes import PLATFORM
from exchange.authz.reactions import on_catalog_event
from exchange.authz.reviews import approve, is_overdue, mirror_review, reject

__all__ = [
    "MAX_VALIDITY",
    "PLATFORM",
    "ApplicationDecided",
    "ApplicationNotFound",
    "ApplicationSubmitted",
    "DisputeNotFound",
    "GrantNotFound",
    "GrantRevoked",
    "application_out",
    "approve",
    "current_grant",
    "decide_dispute",
    "dispute_ids",
    "dispute_out",
    "events_of",
    "get_application",
    "get_dispute",
    "get_grant",
    "grant_out",
    "grant_status",
    "grants_changed",
    "is_overdue",
    "list_applications",
    "list_grants",
    "mirror_review",
    "on_catalog_event",
    "open_dispute",
    "post_message",
    "reject",
    "revoke",
    "submit",
]
