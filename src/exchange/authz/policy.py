"""The access decision: may this consumer read these items of this topic now?

A pure function over an in-memory snapshot of one grant: no I/O, no clock, no locks. The
caller (:class:`exchange.authz.cache.GrantCache`) supplies the grant, the topic's status,
the time and today's usage, so the same inputs always give the same :class:`Decision`.

Reason codes (``Decision.reason``), checked in this order:

``granted``
    Allowed. ``items`` holds what the consumer may receive.
``topic_retired``
    The topic is retired in the catalog (废置); its grants are suspended.
``no_grant``
    The consumer holds no grant for the topic (never applied, or nothing was approved).
``grant_revoked``
    The provider or the operator revoked the grant, or a catalog change removed every
    item it held.
``grant_suspended``
    The grant is suspended for a reason other than retirement.
``grant_not_yet_valid``
    The grant's validity starts later than now.
``grant_expired``
    The grant's ``valid_until`` day has passed (by the platform's simulated clock).
``item_not_granted``
    At least one requested item is not in the grant (or not in the topic at all).
``quota_exceeded``
    Today's records used plus this call's records would pass the grant's daily quota.

Verification (核验, :func:`decide_verification`) adds one:

``purpose_not_verification``
    The grant holds the items but for another purpose than ``data_verification``: data
    is used only for the declared purpose, verification included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "GRANTED",
    "REASONS",
    "Decision",
    "GrantState",
    "decide",
    "decide_verification",
    "denied",
]

GRANTED = "granted"
TOPIC_RETIRED = "topic_retired"
NO_GRANT = "no_grant"
GRANT_REVOKED = "grant_revoked"
GRANT_SUSPENDED = "grant_suspended"
GRANT_NOT_YET_VALID = "grant_not_yet_valid"
GRANT_EXPIRED = "grant_expired"
ITEM_NOT_GRANTED = "item_not_granted"
QUOTA_EXCEEDED = "quota_exceeded"
PURPOSE_NOT_VERIFICATION = "purpose_not_verification"
#: the usage scope (数据校核) a grant needs to verify the items it holds
VERIFICATION_SCOPE = "data_verification"

#: Every reason code with its meaning, for documentation and the OpenAPI text.
REASONS: dict[str, str] = {
    GRANTED: "allowed; `items` holds what the consumer may receive",
    TOPIC_RETIRED: "the topic is retired in the catalog; its grants are suspended",
    NO_GRANT: "the consumer holds no grant for the topic",
    GRANT_REVOKED: "the grant was revoked (by the provider, the operator or a catalog change)",
    GRANT_SUSPENDED: "the grant is suspended",
    GRANT_NOT_YET_VALID: "the grant's validity has not started",
    GRANT_EXPIRED: "the grant's validity has ended (simulated clock)",
    ITEM_NOT_GRANTED: "a requested item is not in the grant",
    QUOTA_EXCEEDED: "today's records plus this call's would pass the daily quota",
    PURPOSE_NOT_VERIFICATION: (
        "verification only: the grant's purpose is not data_verification (数据校核)"
    ),
}

_EMPTY: frozenset[str] = frozenset()
# Distinct item sets remembered per grant; callers ask for few combinations in practice.
MEMO_LIMIT = 64


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one check."""

    allowed: bool
    reason: str  # "granted" or a denial code
    grant_id: int | None
    items: frozenset[str]  # requested ∩ granted; empty when denied
    remaining_quota: int | None  # records left today after this call's; None = unlimited


_new = object.__new__
# The slot descriptors of Decision: setting them directly skips the frozen dataclass's
# __init__, which goes through object.__setattr__ per field and costs twice as much. Used
# only for allowed decisions with a quota, the one answer that cannot be prebuilt.
_set_allowed, _set_reason, _set_grant, _set_items, _set_left = (
    getattr(Decision, name).__set__
    for name in ("allowed", "reason", "grant_id", "items", "remaining_quota")
)


def _granted(grant_id: int, items: frozenset[str], left: int) -> Decision:
    """``Decision(True, "granted", grant_id, items, left)``, built without ``__init__``."""
    decision: Decision = _new(Decision)
    _set_allowed(decision, True)
    _set_reason(decision, GRANTED)
    _set_grant(decision, grant_id)
    _set_items(decision, items)
    _set_left(decision, left)
    return decision


def denied(reason: str, grant_id: int | None = None) -> Decision:
    """A denial with the given reason code."""
    return Decision(False, reason, grant_id, _EMPTY, None)


NO_GRANT_DECISION = denied(NO_GRANT)
TOPIC_RETIRED_DECISION = denied(TOPIC_RETIRED)


@dataclass(frozen=True, slots=True)
class GrantState:
    """What the decision needs of one grant; times are POSIX seconds, ``valid_until``
    exclusive (the end of the last valid day)."""

    id: int
    status: str  # active | suspended | revoked
    items: frozenset[str]
    valid_from: float
    valid_until: float
    daily_quota: int | None
    #: the grant's usage scope (purpose), e.g. data_verification
    purpose: str = VERIFICATION_SCOPE
    # Decisions that do not depend on the call, built once so the hot path allocates
    # nothing for the commonest answers.
    allow_all: Decision = field(init=False, compare=False, repr=False)
    status_denial: Decision | None = field(init=False, compare=False, repr=False)
    # Allowed decisions of an unlimited grant by requested items: they depend on nothing
    # else once status and validity are checked, and building a frozen dataclass costs
    # about as much as the rest of the check.
    memo: dict[tuple[str, ...] | frozenset[str], Decision] = field(
        init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow_all", Decision(True, GRANTED, self.id, self.items, None))
        object.__setattr__(self, "memo", {})
        denial = None
        if self.status == "revoked":
            denial = denied(GRANT_REVOKED, self.id)
        elif self.status != "active":
            denial = denied(GRANT_SUSPENDED, self.id)
        object.__setattr__(self, "status_denial", denial)


def decide(
    grant: GrantState | None,
    items: Iterable[str] | None,
    *,
    now: float,
    used: int = 0,
    records: int = 1,
    topic_retired: bool = False,
) -> Decision:
    """Decide one check.

    ``items`` None (or empty) asks for every granted item. ``used`` is the records already
    counted against today's quota, ``records`` those this call would return; ``now`` is
    POSIX seconds of the platform clock.
    """
    if topic_retired:
        return TOPIC_RETIRED_DECISION if grant is None else denied(TOPIC_RETIRED, grant.id)
    if grant is None:
        return NO_GRANT_DECISION
    if grant.status_denial is not None:
        return grant.status_denial
    if now < grant.valid_from:
        return denied(GRANT_NOT_YET_VALID, grant.id)
    if now >= grant.valid_until:
        return denied(GRANT_EXPIRED, grant.id)
    quota = grant.daily_quota
    if items is None:
        if quota is None:
            return grant.allow_all
        wanted = grant.items
    else:
        key = items if isinstance(items, tuple | frozenset) else tuple(items)
        if quota is None:
            hit = grant.memo.get(key)
            if hit is not None:
                return hit
        wanted = key if isinstance(key, frozenset) else frozenset(key)
        if not wanted:
            wanted = grant.items
        elif not wanted <= grant.items:
            return denied(ITEM_NOT_GRANTED, grant.id)
        if quota is None:
            decision = (
                grant.allow_all
                if wanted == grant.items
                else Decision(True, GRANTED, grant.id, wanted, None)
            )
            if len(grant.memo) < MEMO_LIMIT:
                grant.memo[key] = decision
            return decision
    left = quota - used - records
    if left < 0:
        return denied(QUOTA_EXCEEDED, grant.id)
    return _granted(grant.id, wanted, left)


def decide_verification(
    grant: GrantState | None,
    items: Iterable[str],
    *,
    now: float,
    used: int = 0,
    records: int = 1,
    topic_retired: bool = False,
) -> Decision:
    """May the consumer verify (not receive) ``items`` under its grant?

    As :func:`decide`, and the grant's purpose must be ``data_verification``. Items the
    provider's catalog marks verifiable need no grant; the caller leaves them out.
    """
    decision = decide(
        grant, items, now=now, used=used, records=records, topic_retired=topic_retired
    )
    if decision.allowed and grant is not None and grant.purpose != VERIFICATION_SCOPE:
        return denied(PURPOSE_NOT_VERIFICATION, grant.id)
    return decision
