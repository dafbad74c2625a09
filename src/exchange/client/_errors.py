"""The SDK's exceptions: one class per kind of failure, mirroring the server's codes.

The tree::

    ExchangeError                 anything the SDK raises
    ├── TransportError            no answer: connection refused, reset, timed out
    │   └── ExportInterrupted     an export stream ended early (the broker aborts a
    │                             transfer it cannot finish, so a partial export never
    │                             looks complete)
    └── ExchangeAPIError          the server answered with its error model
        ├── BadRequest            400, 422: client.bad_input, validation_failed …
        ├── AuthenticationFailed  401: client.bad_key, client.missing_key …
        ├── PermissionDenied      403: client.no_grant, client.item_not_granted …
        ├── NotFound              404: client.topic_not_found, not_found …
        ├── Conflict              409: client.not_exportable, conflict …
        ├── Gone                  410: client.topic_retired
        ├── QuotaExceeded         429: client.quota_exceeded
        ├── ProviderError         provider.*: the department holding the data failed
        │   └── ProviderTimeout   provider.timeout
        └── ServerError           5xx otherwise: broker.audit_unavailable, internal …

``ExchangeAPIError.code`` is the server's code verbatim and ``side`` says where the fault
lies (``client``, ``provider`` or ``broker``), as the exchange's error model does.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationFailed",
    "BadRequest",
    "Conflict",
    "ExchangeAPIError",
    "ExchangeError",
    "ExportInterrupted",
    "Gone",
    "NotFound",
    "PermissionDenied",
    "ProviderError",
    "ProviderTimeout",
    "QuotaExceeded",
    "ServerError",
    "TransportError",
    "error_from",
]


class ExchangeError(Exception):
    """Base of every exception the SDK raises."""


class TransportError(ExchangeError):
    """The exchange could not be reached or did not answer in time."""


class ExportInterrupted(TransportError):
    """An export stream ended before the broker completed it; ``records`` were received."""

    def __init__(self, message: str, records: int) -> None:
        super().__init__(message)
        self.records = records


class ExchangeAPIError(ExchangeError):
    """The exchange answered with an error (``{"error": {...}}``)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.detail = detail or {}

    @property
    def side(self) -> str | None:
        """``client``, ``provider`` or ``broker`` for exchange calls; None elsewhere."""
        side = self.detail.get("side")
        if isinstance(side, str):
            return side
        prefix, dot, _ = self.code.partition(".")
        return prefix if dot and prefix in {"client", "provider", "broker"} else None

    @property
    def reason(self) -> str:
        """The code without its side prefix, e.g. ``no_grant`` for ``client.no_grant``."""
        return self.code.partition(".")[2] or self.code


class BadRequest(ExchangeAPIError):
    """400 or 422: the request was malformed or broke a rule."""


class AuthenticationFailed(ExchangeAPIError):
    """401: missing, malformed, unknown or revoked key."""


class PermissionDenied(ExchangeAPIError):
    """403: the caller may not do this (e.g. no grant, item not granted)."""


class NotFound(ExchangeAPIError):
    """404: no such topic, application, grant or route."""


class Conflict(ExchangeAPIError):
    """409: the resource is not in a state that allows this."""


class Gone(ExchangeAPIError):
    """410: the topic is retired (废置)."""


class QuotaExceeded(ExchangeAPIError):
    """429: the grant's daily quota is used up."""


class ProviderError(ExchangeAPIError):
    """The providing department failed (``provider.*``); ``detail["provider"]`` names it."""

    @property
    def provider(self) -> str | None:
        found = self.detail.get("provider")
        return found if isinstance(found, str) else None


class ProviderTimeout(ProviderError):
    """``provider.timeout``: the department did not answer within its budget."""


class ServerError(ExchangeAPIError):
    """A 5xx that is the exchange's own (e.g. ``broker.audit_unavailable``)."""


_BY_STATUS: dict[int, type[ExchangeAPIError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    405: BadRequest,
    409: Conflict,
    410: Gone,
    422: BadRequest,
    429: QuotaExceeded,
}


def error_from(status: int, body: Any) -> ExchangeAPIError:
    """The exception for an error answer (``body`` is its parsed JSON, or anything)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"code": "http_error", "message": f"HTTP {status}"}
    code = str(error.get("code", "http_error"))
    detail = error.get("detail") if isinstance(error.get("detail"), dict) else None
    args = (status, code, str(error.get("message", "")), str(error.get("request_id", "")), detail)
    if code == "provider.timeout":
        return ProviderTimeout(*args)
    if code.startswith("provider."):
        return ProviderError(*args)
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else ExchangeAPIError
    return cls(*args)
