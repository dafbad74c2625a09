"""One error model for every service.

Every failure a caller can cause or meet is an :class:`ExchangeError` with an HTTP status,
a stable machine-readable ``code`` and a human message. A single handler renders them as::

    {"error": {"code": "topic_not_found", "message": "...", "request_id": "...",
               "detail": {...}}}

The tree::

    ExchangeError (500, internal_error)
    ├── BadRequest (400, bad_request)
    ├── ValidationFailed (422, validation_failed)  - carries the offending field(s)
    ├── NotAuthenticated (401, not_authenticated)
    ├── NotPermitted (403, not_permitted)
    ├── NotFound (404, not_found)                  - subclasses name what was missing
    ├── Conflict (409, conflict)                   - e.g. source_conflict
    ├── PayloadTooLarge (413, body_too_large)
    ├── TooManyRequests (429, quota_exceeded)
    └── Unavailable (503, unavailable)

A database error that input slipped past validation into (a unique name taken meanwhile, a
value the column cannot hold, a lost connection) still answers in the model: 409, 422 and
503, never 500.

Domains subclass these or pass their own ``code``; routers never build ``HTTPException``.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import Scope

__all__ = [
    "BadRequest",
    "Conflict",
    "ErrorBody",
    "ExchangeError",
    "NotAuthenticated",
    "NotFound",
    "NotPermitted",
    "PayloadTooLarge",
    "TooManyRequests",
    "Unavailable",
    "ValidationFailed",
    "error_body",
    "install_error_handlers",
    "request_id_of",
]

REQUEST_ID_HEADER = "X-Request-Id"
CORRELATION_ID_HEADER = "X-Correlation-Id"


class ExchangeError(Exception):
    """Base of every error the exchange reports to a caller."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        detail: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.detail = detail or {}
        self.headers = headers or {}


class BadRequest(ExchangeError):
    status_code = 400
    code = "bad_request"


class ValidationFailed(ExchangeError):
    """Input that parses but breaks a rule; ``field`` names where."""

    status_code = 422
    code = "validation_failed"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        detail: dict[str, Any] = {}
        if field is not None:
            detail["field"] = field
        if errors is not None:
            detail["errors"] = errors
        super().__init__(message, code=code, detail=detail)
        self.field = field


class NotAuthenticated(ExchangeError):
    status_code = 401
    code = "not_authenticated"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": "Bearer"})


class NotPermitted(ExchangeError):
    status_code = 403
    code = "not_permitted"


class NotFound(ExchangeError):
    status_code = 404
    code = "not_found"


class Conflict(ExchangeError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(ExchangeError):
    status_code = 413
    code = "body_too_large"


class TooManyRequests(ExchangeError):
    status_code = 429
    code = "quota_exceeded"


class Unavailable(ExchangeError):
    status_code = 503
    code = "unavailable"


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. topic_not_found.")
    message: str = Field(description="What went wrong, for a person.")
    request_id: str = Field(description="The request's id (also the X-Request-Id header).")
    detail: dict[str, Any] | None = Field(
        default=None, description="Structured context: the failing field, limits, side …"
    )


class ErrorBody(BaseModel):
    """The one shape of every error answer (documented in the OpenAPI schema)."""

    error: ErrorDetail


def sane_correlation_id(given: str) -> str:
    """``given`` if it can serve as a correlation id (1–64 printable ASCII characters, so
    nothing a log, a header or a database column could choke on), else ``""``."""
    return given if 0 < len(given) <= 64 and given.isascii() and given.isprintable() else ""


def caller_correlation_id(scope: Scope) -> str:
    """The caller's own ``X-Request-Id`` from an ASGI scope if sane, else ``""``.

    The exchange assigns every request id itself: a caller-chosen one could reuse another
    department's and muddle whose exchange the audit log shows. The caller's value is
    kept as the correlation id (echoed in ``X-Correlation-Id``, stored on audit entries).
    """
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return sane_correlation_id(value.decode("latin-1"))
    return ""


def request_id_of(request: Request) -> str:
    """The request id the exchange assigned (one is made here if no layer did)."""
    rid = getattr(request.state, "request_id", None)
    if isinstance(rid, str):
        return rid
    rid = uuid.uuid4().hex
    request.state.request_id = rid
    return rid


def error_body(
    code: str, message: str, request_id: str, detail: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if detail:
        body["detail"] = detail
    return {"error": body}


def _render(request: Request, exc: ExchangeError) -> Response:
    rid = request_id_of(request)
    headers = {REQUEST_ID_HEADER: rid, **exc.headers}
    return JSONResponse(
        error_body(exc.code, exc.message, rid, exc.detail),
        status_code=exc.status_code,
        headers=headers,
    )


def _loc(loc: tuple[int | str, ...] | list[int | str]) -> str:
    # Drop the "body"/"query" prefix so the field reads as the caller wrote it.
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path, for a 405's ``Allow`` (HTTP requires
    it). Starlette names only the methods of the first route that matched the path."""
    methods = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(methods)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error, including FastAPI's own, in the one error model."""

    async def on_exchange_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ExchangeError)
        return _render(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "field": _loc(e.get("loc", ())),
                "message": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid input"}
        return _render(
            request,
            ValidationFailed(
                f"{first['field']}: {first['message']}", field=first["field"], errors=errors
            ),
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        codes = {400: "malformed_body", 404: "route_not_found", 405: "method_not_allowed"}
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return _render(
            request,
            ExchangeError(
                str(exc.detail),
                status_code=exc.status_code,
                code=codes.get(exc.status_code, "http_error"),
                headers=headers,
            ),
        )

    # Safety nets: validation should stop bad input before the database, but a race (two
    # callers taking one name) or a rule the schema missed must still not answer 500.
    async def on_integrity_error(request: Request, _exc: Exception) -> Response:
        return _render(
            request,
            Conflict("the change conflicts with existing data", code="integrity_conflict"),
        )

    async def on_data_error(request: Request, _exc: Exception) -> Response:
        return _render(
            request,
            ValidationFailed(
                "a value cannot be stored (too long, out of range or invalid characters)",
                code="unstorable_value",
            ),
        )

    async def on_operational_error(request: Request, _exc: Exception) -> Response:
        return _render(
            request, Unavailable("the database is unavailable", code="database_unavailable")
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # The one place a 500 is produced: the body still follows the model.
        return _render(
            request, ExchangeError(f"internal error: {type(exc).__name__}", code="internal_error")
        )

    app.add_exception_handler(ExchangeError, on_exchange_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(IntegrityError, on_integrity_error)
    app.add_exception_handler(DataError, on_data_error)
    app.add_exception_handler(OperationalError, on_operational_error)
    app.add_exception_handler(Exception, on_unexpected)
