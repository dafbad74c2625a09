"""One broker call as it goes: what is known of it so far, for its audit entry."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BrokerCall"]


@dataclass(slots=True)
class BrokerCall:
    """What is known about one call so far, for its audit entry."""

    request_id: str
    kind: str
    started: float
    #: the caller's own X-Request-Id, kept on its audit entry
    correlation_id: str | None = None
    consumer: str = "anonymous"
    provider: str | None = None
    resource_code: str | None = None
    items: list[str] | None = None
    case: str | None = None
    records: int = 0
    #: quota records reserved for this call while it is in flight
    held: int = 0
    #: a verification's outcomes by item (audited; never the values)
    verdicts: dict[str, dict[str, int]] | None = None
