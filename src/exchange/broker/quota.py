"""Quota holds: records of a grant's daily quota reserved by the broker's calls in flight.

The grant check counts the records already delivered; a call that has passed it but whose
provider has not answered yet holds its records here, so that concurrent calls cannot
together exceed the quota.
"""

from __future__ import annotations

from exchange.authz.policy import Decision
from exchange.broker.call import BrokerCall
from exchange.broker.errors import DENIAL_STATUS, client_error


class QuotaHolds:
    """grant id → quota records reserved by calls in flight, for one broker."""

    __slots__ = ("by_grant",)

    def __init__(self) -> None:
        self.by_grant: dict[int, int] = {}

    def hold(self, call: BrokerCall, decision: Decision, records: int) -> None:
        """Reserve ``records`` of a grant's daily quota for the call until it ends.

        The grant check counts records already delivered; calls still in flight are
        counted here, so concurrent calls cannot together exceed the quota (the check and
        the count after the provider answers used to let them).
        """
        gid = decision.grant_id
        if decision.remaining_quota is None or gid is None or records <= 0:
            return
        held = self.by_grant.get(gid, 0)
        if held > decision.remaining_quota:
            raise client_error(
                "quota_exceeded",
                f"{call.consumer} may not receive {call.resource_code}: quota_exceeded "
                f"({held} records of today's quota are being fetched by calls in flight)",
                DENIAL_STATUS["quota_exceeded"],
                {"reason": "quota_exceeded", "grant_id": gid},
            )
        self.by_grant[gid] = held + records
        call.held = records

    def release(self, call: BrokerCall, decision: Decision) -> None:
        gid = decision.grant_id
        if not call.held or gid is None:
            return
        left = self.by_grant.get(gid, 0) - call.held
        call.held = 0
        if left > 0:
            self.by_grant[gid] = left
        else:
            self.by_grant.pop(gid, None)
