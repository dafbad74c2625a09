"""The broker's error codes, which say on which side a fault lies.

``client.*`` the caller (bad key, no grant, bad input); ``broker.*`` the exchange itself;
``provider.*`` the department that holds the data. All render in the one error model.
"""

from __future__ import annotations

from typing import Any

from exchange.errors import ExchangeError

# HTTP status of each authorization denial; anything unlisted is 403.
DENIAL_STATUS = {"quota_exceeded": 429, "topic_retired": 410}


def client_error(
    reason: str, message: str, status: int = 403, detail: dict[str, Any] | None = None
) -> ExchangeError:
    return ExchangeError(
        message,
        code=f"client.{reason}",
        status_code=status,
        detail={"side": "client", **(detail or {})},
    )


def broker_error(reason: str, message: str, status: int = 500) -> ExchangeError:
    return ExchangeError(
        message, code=f"broker.{reason}", status_code=status, detail={"side": "broker"}
    )


class ProviderError(ExchangeError):
    """The providing department failed; ``detail`` names it."""

    status_code = 502
    code = "provider.unavailable"

    def __init__(
        self, provider: str, message: str, *, status_code: int | None = None, **extra: Any
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            detail={"side": "provider", "provider": provider, **extra},
        )
        self.provider = provider


class ProviderTimeout(ProviderError):
    status_code = 504
    code = "provider.timeout"


class ProviderUnavailable(ProviderError):
    """Connection refused, 5xx answers, or the circuit is open (503)."""

    status_code = 502
    code = "provider.unavailable"


class ProviderBadResponse(ProviderError):
    status_code = 502
    code = "provider.bad_response"
