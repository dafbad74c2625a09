"""The refusals distribution raises beyond the shared ones of :mod:`exchange.errors`."""

from __future__ import annotations

from typing import Any

from exchange.errors import NotFound, NotPermitted, ValidationFailed

__all__ = ["NotTheSource", "SubscriptionNotFound", "invalid"]


class NotTheSource(NotPermitted):
    """一数一源: only the topic's provider may publish its changes."""

    code = "not_the_source"


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"


def invalid(message: str, *, code: str, detail: dict[str, Any] | None = None) -> ValidationFailed:
    """A 422 with the details a caller needs to find its mistake (index, items)."""
    error = ValidationFailed(message, code=code)
    error.detail.update(detail or {})
    return error
